"""Hugging Face datasets output: parquet shards and a `save_to_disk` folder, images embedded as bytes.

Columns, in order:
- `id`: the sample id.
- `images`: a list of `Image()` (the file bytes, with the path relative to the image root).
- `messages`: [{"role": "system" | "user" | "assistant", "content": text}], the text as built, with
  `<image>` placeholders (one per image) and `<box:N>` markers written in the format's box convention.
- `task`, `source`: strings.
- `lineage`: the sample's lineage as a JSON string (its fields vary with the sample's origin).

Rows from the workers are JSON text with image PATHS; `write` reads the image bytes from the image
root. Layout and loading: see outputs/hf_dataset.py and `usage()`. Loads offline with
`datasets.load_dataset("parquet", data_files=...)` and `datasets.load_from_disk`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from outputs.base import Writer, render_text
from outputs.hf_dataset import hf_usage, require_datasets, write_hf_dataset
from outputs.shards import DEFAULT_SHARD_BYTES, DEFAULT_SHARD_ROWS
from schemas.sample import Sample

if TYPE_CHECKING:
    from datasets import Features


def hf_features() -> "Features":
    """The dataset's columns and types (fixed, so every shard and an empty output share one schema)."""
    from datasets import Features, Image, List, Value

    return Features({
        "id": Value("string"),
        "images": List(Image()),
        "messages": List({"role": Value("string"), "content": Value("string")}),
        "task": Value("string"),
        "source": Value("string"),
        "lineage": Value("string"),
    })


class HfWriter(Writer):
    """Writes `data/<name>-*.parquet` and `arrow/<name>/` (save_to_disk) with embedded images."""

    kind: ClassVar[str] = "hf"

    def to_record(self, sample: Sample) -> dict[str, Any]:
        bf = self.fmt.box_format
        return {
            "id": sample.id,
            "images": [im.path for im in sample.images],
            "messages": [{"role": t.role, "content": render_text(t.text, sample, bf)} for t in sample.turns],
            "task": sample.task,
            "source": sample.source,
            "lineage": sample.lineage.model_dump_json(exclude_none=True),
        }

    def write(self, rows: list[str], out_dir: str | os.PathLike[str], image_root: str) -> list[Path]:
        require_datasets(self.kind)
        return write_hf_dataset(rows, hf_features(), out_dir, self.name, image_root, self.kind,
                                self.fmt.shard_rows or DEFAULT_SHARD_ROWS, DEFAULT_SHARD_BYTES)

    def usage(self, out_dir: str | os.PathLike[str], image_root: str) -> str:
        """How to load what `write` produced."""
        return hf_usage(self.kind, Path(out_dir), self.name)
