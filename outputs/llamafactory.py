"""LLaMA-Factory sharegpt data: `<name>.json` plus its entry in `dataset_info.json` (FORMATS.md).

Rows are {"system"?, "messages": [{"role": "user" | "assistant", "content"}...], "images": [...]}:
- `images` is always a list (empty for text-only samples), paths relative to the image root.
- The system text goes in the `system` column (present only on rows that have one); the entry in
  `dataset_info.json` declares that column when any row uses it (declaring a column that no row has
  makes LLaMA-Factory fail). `system` is written as the row's first key so `write` can see it without
  parsing rows. The entry's tags also name `system_tag`, so a leading system message (in files edited
  by hand) is read as one: LLaMA-Factory sets every tag missing from `tags` to None.
- Text is kept as built (`<image>\\n...`); `<box:N>` markers are written in the format's box convention.
- LLaMA-Factory resolves image paths against its `media_dir` (default: the dataset folder), and a
  `dataset_info.json` entry cannot carry one: set `media_dir` to the recipe's image root in the
  training arguments (`usage()` prints the exact settings).
- `dataset_info.json` in the output folder is merged: other datasets' entries are kept as they are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from outputs.base import Writer, atomic_write_text, render_text
from outputs.errors import WriterError
from outputs.json_list import json_list_text
from outputs.system_turn import split_system
from schemas.sample import Sample

DATASET_INFO = "dataset_info.json"
TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
        "system_tag": "system"}
_SYSTEM_ROW_START = '{"system":'


class LlamaFactoryWriter(Writer):
    """Writes `<name>.json` and merges its entry into `dataset_info.json` in the same folder."""

    kind: ClassVar[str] = "llamafactory"

    def to_record(self, sample: Sample) -> dict[str, Any]:
        system, turns = split_system(sample, self.kind)
        record: dict[str, Any] = {}
        if system is not None:
            record["system"] = render_text(system, sample, self.fmt.box_format)
        record["messages"] = [{"role": t.role, "content": render_text(t.text, sample, self.fmt.box_format)}
                              for t in turns]
        record["images"] = [im.path for im in sample.images]
        return record

    def entry(self, has_system: bool) -> dict[str, Any]:
        """This dataset's `dataset_info.json` entry."""
        columns = {"messages": "messages", "images": "images"}
        if has_system:
            columns["system"] = "system"
        return {"file_name": f"{self.name}.json", "formatting": "sharegpt", "columns": columns, "tags": dict(TAGS)}

    def write(self, rows: list[str], out_dir: str | os.PathLike[str], image_root: str) -> list[Path]:
        out = Path(out_dir)
        data = atomic_write_text(out / f"{self.name}.json", json_list_text(rows))
        has_system = any(r.startswith(_SYSTEM_ROW_START) for r in rows)
        info_path = out / DATASET_INFO
        info = read_dataset_info(info_path)
        info[self.name] = self.entry(has_system)
        info_file = atomic_write_text(info_path, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        return [data, info_file]

    def usage(self, out_dir: str | os.PathLike[str], image_root: str) -> str:
        """One line telling how to point LLaMA-Factory at what `write` produced."""
        return (f"llamafactory: dataset_dir: {out_dir}, dataset: {self.name}, media_dir: {image_root} "
                "(image paths in the file are relative to media_dir)")


def read_dataset_info(path: Path) -> dict[str, Any]:
    """The existing `dataset_info.json` (an empty dict when there is none); WriterError if it is unusable."""
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise WriterError(f"llamafactory: {path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                          "fix it or delete it so it can be written afresh") from None
    except UnicodeDecodeError:
        raise WriterError(f"llamafactory: {path} is not UTF-8 text; fix it or delete it") from None
    if not isinstance(info, dict):
        raise WriterError(f"llamafactory: {path} holds a JSON {type(info).__name__}, expected an object of "
                          "dataset entries; fix it or delete it")
    return info
