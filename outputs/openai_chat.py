"""OpenAI chat fine-tuning data: JSON Lines of {"messages": [{"role", "content"}...]}, text-only samples.

The format is the one OpenAI's fine-tuning API and most chat SFT loaders read. It holds only
text-only samples (`accepts_images = False`: the export stage gives samples with images no row
here; they stay in the other formats). System turns are `system` messages; `<box:N>` markers are
written in the format's box convention. Rows carry nothing but `messages` (the API's loader
wants no other keys).

A large output is sharded (`shard_rows`, default 50,000 rows, and at most 512 MiB a file, under the
API's upload limit): `<name>.jsonl` when it fits in one file, else `<name>-00000-of-00003.jsonl`, ...
Each file is written atomically; files of an earlier write of the same name are removed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from outputs.base import Writer, atomic_write_text, render_text
from outputs.errors import WriterError
from outputs.shards import DEFAULT_SHARD_BYTES, DEFAULT_SHARD_ROWS, plan_shards, remove_stale_shards, shard_name
from schemas.sample import Sample


class OpenAIChatWriter(Writer):
    """Writes `<name>.jsonl` (or its shards) with the text-only samples."""

    kind: ClassVar[str] = "openai_chat"
    accepts_images: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (rows, files) of the last `write`, for `usage`.
        self.written: tuple[int, list[Path]] | None = None

    def to_record(self, sample: Sample) -> dict[str, Any]:
        if sample.images:
            raise WriterError(f"openai_chat: sample {sample.id!r} has {len(sample.images)} image(s); this format "
                              "holds text-only samples (the export stage leaves samples with images out of it): "
                              "use the llava, llamafactory, hf or trl output for them")
        bf = self.fmt.box_format
        return {"messages": [{"role": t.role, "content": render_text(t.text, sample, bf)} for t in sample.turns]}

    def write(self, rows: list[str], out_dir: str | os.PathLike[str], image_root: str) -> list[Path]:
        out = Path(out_dir)
        ranges = plan_shards([len(r) + 1 for r in rows], self.fmt.shard_rows or DEFAULT_SHARD_ROWS,
                             DEFAULT_SHARD_BYTES)
        names = ([f"{self.name}.jsonl"] if len(ranges) == 1
                 else [shard_name(self.name, k, len(ranges), "jsonl") for k in range(len(ranges))])
        files = [atomic_write_text(out / n, "".join(r + "\n" for r in rows[a:b])) for n, (a, b) in zip(names, ranges)]
        remove_stale_shards(out, self.name, "jsonl", files)
        if len(ranges) > 1 and (out / f"{self.name}.jsonl").exists():
            os.unlink(out / f"{self.name}.jsonl")
        self.written = (len(rows), files)
        return files

    def usage(self, out_dir: str | os.PathLike[str], image_root: str) -> str:
        """Where the rows are, and that samples with images are not among them."""
        n, files = self.written or (None, [Path(out_dir) / f"{self.name}.jsonl"])
        count = f"{n:,} " if n is not None else ""
        return (f"openai_chat: the {count}text-only sample(s) in {', '.join(str(f) for f in files)}; samples with "
                "images are left out of this format (they are in the image formats)")
