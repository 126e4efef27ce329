"""TRL vision SFT data: `messages` of content blocks plus an `images` column of `Image()` features.

Each turn's text becomes a list of blocks in reading order: every `<image>` placeholder is the block
`{"type": "image"}` at its position and the text around it a `{"type": "text", "text": ...}` block
(whitespace at a placeholder's side, like the `\\n` after a leading `<image>`, is dropped). An image
block is exactly `{"type": "image"}`: TRL's `prepare_multimodal_messages` counts only image blocks
WITHOUT an `"image"` key as slots for the `images` column, so a block carrying one, even null, breaks
its count check. System turns stay `system` messages (TRL passes them to the chat template).

Read back through Arrow, an image block also shows the struct's other field as `"text": None`;
TRL ignores it. The files are written like the `hf` output (outputs/hf_dataset.py): parquet shards
and a `save_to_disk` folder, images embedded as bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from outputs.base import Writer, render_text
from outputs.hf_dataset import hf_usage, require_datasets, write_hf_dataset
from outputs.shards import DEFAULT_SHARD_BYTES, DEFAULT_SHARD_ROWS
from schemas.sample import IMAGE_TOKEN, Sample

if TYPE_CHECKING:
    from datasets import Features


def trl_features() -> "Features":
    """The dataset's columns and types; content blocks are structs of (type, text)."""
    from datasets import Features, Image, List, Value

    return Features({
        "id": Value("string"),
        "images": List(Image()),
        "messages": List({"role": Value("string"),
                          "content": List({"type": Value("string"), "text": Value("string")})}),
    })


def content_blocks(text: str) -> list[dict[str, str]]:
    """`text` as TRL content blocks: `{"type": "image"}` per placeholder, in place, text blocks between."""
    parts = text.split(IMAGE_TOKEN)
    blocks: list[dict[str, str]] = []
    for k, part in enumerate(parts):
        if k > 0:
            blocks.append({"type": "image"})
            part = part.lstrip()
        if k < len(parts) - 1:
            part = part.rstrip()
        if part:
            blocks.append({"type": "text", "text": part})
    return blocks


class TrlWriter(Writer):
    """Writes `data/<name>-*.parquet` and `arrow/<name>/` (save_to_disk) for TRL's SFTTrainer."""

    kind: ClassVar[str] = "trl"

    def to_record(self, sample: Sample) -> dict[str, Any]:
        bf = self.fmt.box_format
        return {
            "id": sample.id,
            "images": [im.path for im in sample.images],
            "messages": [{"role": t.role, "content": content_blocks(render_text(t.text, sample, bf))}
                         for t in sample.turns],
        }

    def write(self, rows: list[str], out_dir: str | os.PathLike[str], image_root: str) -> list[Path]:
        require_datasets(self.kind)
        return write_hf_dataset(rows, trl_features(), out_dir, self.name, image_root, self.kind,
                                self.fmt.shard_rows or DEFAULT_SHARD_ROWS, DEFAULT_SHARD_BYTES)

    def usage(self, out_dir: str | os.PathLike[str], image_root: str) -> str:
        """How to load what `write` produced (then pass it to SFTTrainer as `train_dataset`)."""
        return hf_usage(self.kind, Path(out_dir), self.name)
