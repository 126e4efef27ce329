"""Regenerate the demo's bundled images from scikit-image's sample data.

Every image comes from `skimage.data` (public domain or CC0; see README.md for each one's origin and
licence), is shrunk to at most 320 px on its long side and saved as JPEG under a COCO-2017-style name
(`000000000001.jpg`: the zero-padded image id that every annotation file uses). The ScienceQA
problems with a picture get a smaller PNG copy at `scienceqa/{split}/{pid}/image.png`, the real
ScienceQA layout. Deterministic: same inputs, same Pillow, same bytes.

Run from anywhere: `python examples/demo/make_images.py [--out DIR]`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
#: Long side of the demo photos, in pixels.
MAX_SIDE = 320
#: Long side of the ScienceQA copies (PNG, so kept smaller to stay light).
SQA_MAX_SIDE = 160
JPEG_QUALITY = 85


@dataclass(frozen=True)
class DemoImage:
    """One bundled photo: its COCO-style id and the `skimage.data` function that loads it."""

    id: int
    loader: str

    @property
    def file_name(self) -> str:
        return f"{self.id:012d}.jpg"


#: The bundled photos, in id order. README.md has one row per entry.
IMAGES: tuple[DemoImage, ...] = (
    DemoImage(1, "astronaut"),
    DemoImage(2, "coffee"),
    DemoImage(3, "chelsea"),
    DemoImage(4, "rocket"),
    DemoImage(5, "camera"),
    DemoImage(6, "coins"),
    DemoImage(7, "hubble_deep_field"),
    DemoImage(8, "retina"),
    DemoImage(9, "horse"),
    DemoImage(10, "clock"),
    DemoImage(11, "brick"),
    DemoImage(12, "text"),
)

#: ScienceQA problems that have a picture: (split, pid, skimage loader).
SCIENCEQA_IMAGES: tuple[tuple[str, str, str], ...] = (
    ("train", "1", "chelsea"),
    ("train", "2", "rocket"),
    ("val", "3", "coffee"),
)


def load(loader: str) -> Image.Image:
    """Load one `skimage.data` image as an 8-bit RGB PIL image (grey and binary images are expanded)."""
    import skimage.data

    arr = np.asarray(getattr(skimage.data, loader)())
    if arr.dtype == bool:
        arr = np.where(arr, 255, 0).astype(np.uint8)
    if arr.dtype != np.uint8:
        raise ValueError(f"skimage.data.{loader}() returned {arr.dtype}; expected uint8 or bool")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return Image.fromarray(arr).convert("RGB")


def shrunk_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size after scaling the long side down to `max_side` (never up), aspect ratio kept."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def shrink(img: Image.Image, max_side: int) -> Image.Image:
    size = shrunk_size(img.width, img.height, max_side)
    return img if size == img.size else img.resize(size, Image.Resampling.LANCZOS)


def make(out_dir: Path) -> list[tuple[str, str, tuple[int, int], tuple[int, int]]]:
    """Write every demo image under `out_dir`; return (file, loader, original size, new size) rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in IMAGES:
        img = load(item.loader)
        small = shrink(img, MAX_SIDE)
        # No EXIF or other metadata, fixed quality: the bytes depend only on the pixels and Pillow.
        small.save(out_dir / item.file_name, format="JPEG", quality=JPEG_QUALITY)
        rows.append((item.file_name, item.loader, img.size, small.size))
    for split, pid, loader in SCIENCEQA_IMAGES:
        img = load(loader)
        small = shrink(img, SQA_MAX_SIDE)
        rel = Path("scienceqa") / split / pid / "image.png"
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        small.save(out_dir / rel, format="PNG", optimize=True)
        rows.append((rel.as_posix(), loader, img.size, small.size))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images", help="folder to write (default: images/)")
    args = parser.parse_args(argv)
    total = 0
    for rel, loader, (w0, h0), (w1, h1) in make(args.out):
        size = (args.out / rel).stat().st_size
        total += size
        print(f"{rel:34s} skimage.data.{loader:18s} {w0}x{h0} -> {w1}x{h1}  {size / 1024:.1f} KiB")
    print(f"total {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
