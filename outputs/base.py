"""The writer interface. Format conversion (`to_record`, pure) is kept apart from file I/O (`write`).

Workers call `encode(sample)` (to_record, then one serialized row) in parallel; the driver hands the
rows, in the run's deterministic order, to `write()`, which writes atomically (temp file, then rename).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from schemas.box import render_box
from schemas.recipe import OutputFormat
from schemas.sample import Sample

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson = None

_BOX_MARKER_RE = re.compile(r"<box:(\d+)>")


def render_text(text: str, sample: Sample, box_format: str) -> str:
    """Replace `<box:N>` markers in `text` with `sample.boxes[N]` written in `box_format`."""
    if "<box:" not in text:
        return text
    return _BOX_MARKER_RE.sub(lambda m: render_box(sample.boxes[int(m.group(1))], box_format), text)


def dumps_row(record: Any) -> str:
    """One compact JSON row: UTF-8 kept readable (not \\u-escaped), keys in the order built.

    orjson writes the same text as `json.dumps(record, ensure_ascii=False, separators=(",", ":"))`
    several times faster; the standard library is the fallback."""
    if _orjson is not None:
        return _orjson.dumps(record).decode("utf-8")
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


_ROW_CHECKS: dict[str, Any] | None = None


def _row_check(kind: str) -> Any:
    """The loader-rule check of one row of format `kind` (imported on first use: the validators are many)."""
    global _ROW_CHECKS
    if _ROW_CHECKS is None:
        from outputs.validators import ROW_CHECKS

        _ROW_CHECKS = ROW_CHECKS
    return _ROW_CHECKS.get(kind)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder and a rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


class Writer(ABC):
    """One output format. Subclasses set `kind` and implement `to_record` and `write`."""

    kind: ClassVar[str]
    #: Whether the format can hold text-only samples (no image).
    accepts_text_only: ClassVar[bool] = True
    #: Whether the format can hold samples with images (False: a text-only format such as OpenAI chat).
    accepts_images: ClassVar[bool] = True

    def __init__(self, fmt: OutputFormat, dataset_name: str) -> None:
        self.fmt = fmt
        self.name = fmt.name or dataset_name

    @abstractmethod
    def to_record(self, sample: Sample) -> dict[str, Any]:
        """Convert one sample to this format's record (pure; no I/O)."""

    def encode(self, sample: Sample) -> str:
        """One serialized row for `sample` (runs in workers)."""
        return dumps_row(self.to_record(sample))

    def encode_checked(self, sample: Sample) -> tuple[str, list[str]]:
        """The row for `sample` and every rule of this format's loader that it breaks (as messages).

        The export stage calls this in the workers, so the trainers' loading rules are checked on every
        row before anything is written."""
        record = self.to_record(sample)
        check = _row_check(self.kind)
        bad = check(0, record) if check is not None else None
        return dumps_row(record), [f"[{v.rule}] {v.message}" for v in bad] if bad else []

    @abstractmethod
    def write(self, rows: list[str], out_dir: str | os.PathLike[str], image_root: str) -> list[Path]:
        """Write encoded rows (in order) under `out_dir`; return the files written."""

    def usage(self, out_dir: str | os.PathLike[str], image_root: str) -> str:
        """One line telling how to point the trainer at what `write` produced (empty when nothing to say)."""
        return ""

    def folder(self, run_dir: str | os.PathLike[str]) -> Path:
        """Each output format writes into its own folder of the run: `<run dir>/<kind>/`."""
        return Path(run_dir) / self.kind
