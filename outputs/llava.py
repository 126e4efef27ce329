"""LLaVA instruction data: one JSON list of {id, image, conversations} (FORMATS.md, "LLaVA").

- `image` is the path relative to the image root; a list when the sample has several images (the
  LLaVA-NeXT/OneVision convention); absent for text-only samples.
- Turns become {"from": "human" | "gpt", "value": text}, with `<box:N>` markers written in the
  format's box convention.
- LLaVA has no system role: the system text is merged into the first human turn as
  `system + "\\n\\n" + question`, after any leading `<image>` placeholders, so `<image>\\n` stays first.
- LLaVA's loader takes the image folder as an argument (`--image_folder`): pass the recipe's image root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar

from outputs.base import Writer, atomic_write_text, render_text
from outputs.errors import WriterError
from outputs.json_list import json_list_text
from outputs.system_turn import split_system
from schemas.sample import Sample

_ROLE = {"user": "human", "assistant": "gpt"}
_LEADING_IMAGES = re.compile(r"(?:<image>\s*)+")


def merge_system(system: str, text: str) -> str:
    """Put `system` in front of a user text, keeping leading `<image>` placeholders first."""
    m = _LEADING_IMAGES.match(text)
    prefix = m.group(0) if m else ""
    if prefix and not prefix[-1].isspace():
        prefix += "\n"
    rest = text[len(m.group(0)) if m else 0:]
    return prefix + system + ("\n\n" + rest if rest else "")


class LlavaWriter(Writer):
    """Writes `<name>.json` for LLaVA's `--data_path`, images relative to `--image_folder`."""

    kind: ClassVar[str] = "llava"

    def to_record(self, sample: Sample) -> dict[str, Any]:
        turns = sample.turns
        system = None
        for t in turns:
            if t.role == "system":
                system, turns = split_system(sample, self.kind)
                break
        values = [t.text if "<box:" not in t.text else render_text(t.text, sample, self.fmt.box_format)
                  for t in turns]
        if system is not None:
            first_user = next((i for i, t in enumerate(turns) if t.role == "user"), None)
            if first_user is None:
                raise WriterError(f"llava: sample {sample.id!r} has a system turn but no user turn to merge it "
                                  "into (LLaVA has no system role); add a user turn")
            values[first_user] = merge_system(render_text(system, sample, self.fmt.box_format), values[first_user])
        record: dict[str, Any] = {"id": sample.id}
        if len(sample.images) == 1:
            record["image"] = sample.images[0].path
        elif sample.images:
            record["image"] = [im.path for im in sample.images]
        record["conversations"] = [{"from": _ROLE[t.role], "value": v} for t, v in zip(turns, values)]
        return record

    def write(self, rows: list[str], out_dir: str | os.PathLike[str], image_root: str) -> list[Path]:
        return [atomic_write_text(Path(out_dir) / f"{self.name}.json", json_list_text(rows))]

    def usage(self, out_dir: str | os.PathLike[str], image_root: str) -> str:
        """One line telling how to point LLaVA's trainer at what `write` produced."""
        return (f"llava: --data_path {Path(out_dir) / f'{self.name}.json'} --image_folder {image_root} "
                "(image paths in the file are relative to the image folder)")
