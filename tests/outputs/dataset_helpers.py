"""Helpers for the HF-dataset writer tests: tiny images under an image root, and loading what was written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

#: The images `writer_samples` refers to, made in each test's tmp_path: (path, size, colour).
IMAGES = [("img/a.png", (8, 6), (200, 30, 30)), ("img/b.png", (6, 8), (30, 30, 200))]


def make_image_root(tmp_path: Path) -> Path:
    """An image root holding `IMAGES`, as PNG files written by Pillow."""
    root = tmp_path / "images"
    for rel, size, colour in IMAGES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, colour).save(root / rel)
    return root


def load_parquet(files: list[Path], cache: Path) -> Any:
    """The train split of `datasets.load_dataset("parquet", ...)` on `files`, cached under `cache`."""
    from datasets import load_dataset

    return load_dataset("parquet", data_files=[str(f) for f in files], split="train", cache_dir=str(cache))


def undecoded(ds: Any) -> Any:
    """`ds` with its images as {"bytes", "path"} storage instead of PIL images."""
    from datasets import Image as ImageFeature
    from datasets import List

    return ds.cast_column("images", List(ImageFeature(decode=False)))


def folder_listing(folder: Path) -> list[str]:
    """Every file and folder under `folder`, relative, sorted (temporary leftovers would show here)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
