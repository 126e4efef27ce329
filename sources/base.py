"""The reader interface: a Source reads one dataset family and yields AnnotationRecords, Samples or Rejects.

A source raises `SourceError` for problems that make the whole input unusable (a missing file, the wrong
kind of file, malformed JSON); the message names the file and the fix. A problem with one record
(a missing image, an empty answer, a bad box) becomes a `Reject` with a reason code instead.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Iterator

from pydantic import BaseModel, ConfigDict, Field

from schemas.box import Box
from schemas.image import ImageResolver, ImageRef
from schemas.record import AnnotationRecord
from schemas.reject import Reject
from schemas.sample import Lineage, Sample

Item = AnnotationRecord | Sample | Reject


class SourceError(Exception):
    """A whole input is unusable. The message names the file, what is wrong and the fix."""


class SourceOptions(BaseModel):
    """Options every source takes. Each source subclasses this with its own file keys."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    #: Unique name used in sample ids, stats and lineage; defaults to `kind`.
    name: str | None = None
    #: Keep only these splits (sources whose files carry a split field); None keeps all.
    splits: list[str] | None = None
    #: Stop after this many records (images, or rows for text-only sources).
    limit: int | None = Field(default=None, ge=1)
    #: Folder inside the recipe's image root that this source's image file names are relative to.
    image_prefix: str = ""

    #: Keys whose values are input paths (checked for existence before any work starts).
    path_keys: ClassVar[tuple[str, ...]] = ("path",)

    @property
    def source_name(self) -> str:
        return self.name or self.kind


class Source(ABC):
    """Reads one dataset family. Subclasses set `kind`, `Options` and implement `read()`."""

    kind: ClassVar[str]
    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, options: SourceOptions, image_root: str | os.PathLike[str]) -> None:
        self.options = options
        self.image_root = str(image_root)
        self.images = ImageResolver(self.image_root)

    @property
    def name(self) -> str:
        return self.options.source_name

    @abstractmethod
    def read(self) -> Iterator[Item]:
        """Yield records (or text-only samples) and rejects, in a deterministic order."""

    # ---- helpers shared by the readers -------------------------------------------------------

    def reject(self, reason: str, message: str, *, file: str | None, record: Any = None,
               ann_ids: list[str] | None = None) -> Reject:
        rec = None if record is None else str(record)
        return Reject(reason=reason, message=message, stage="source", source=self.name, file=file, record=rec,
                      lineage=Lineage(source=self.name, source_kind=self.kind, file=file,
                                      ann_ids=ann_ids or ([] if rec is None else [rec])))

    def image_ref(self, file_name: str, width: int | None = None, height: int | None = None
                  ) -> tuple[ImageRef | None, str | None]:
        """Build the ImageRef for `file_name` (under `image_prefix`) and check the file.

        Returns (ref, None) or (None, reason code)."""
        rel = f"{self.options.image_prefix.rstrip('/')}/{file_name}" if self.options.image_prefix else file_name
        reason = self.images.check(rel)
        if reason is not None:
            return None, reason
        from schemas.image import safe_relpath

        return ImageRef(path=safe_relpath(rel), width=width, height=height), None

    def image_reject(self, reason: str, file_name: str, *, file: str | None, record: Any) -> Reject:
        where = os.path.join(self.image_root, self.options.image_prefix, file_name)
        if reason == "image_missing":
            msg = (f"{self.kind}: image {file_name!r} of record {record} not found at {where}; "
                   "check `images` (the image root) and this source's `image_prefix`")
        else:
            msg = (f"{self.kind}: image path {file_name!r} of record {record} is absolute or leaves the "
                   f"image root {self.image_root}; image paths must stay inside the root")
        return self.reject(reason, msg, file=file, record=record)

    def limited(self, n: int) -> bool:
        """True once `n` records have been produced and the source's `limit` is reached."""
        return self.options.limit is not None and n >= self.options.limit

    def split_ok(self, split: str | None) -> bool:
        return self.options.splits is None or split in self.options.splits


def load_json(path: str | os.PathLike[str], kind: str, expect: str) -> Any:
    """Read a JSON file or raise SourceError naming the file, the problem and what was expected."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"{kind}: file not found: {p}; check the path in the recipe ({expect})")
    try:
        with open(p, "rb") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise SourceError(f"{kind}: {p} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                          f"expected {expect}") from None
    except UnicodeDecodeError:
        raise SourceError(f"{kind}: {p} is not UTF-8 text; expected {expect}") from None


def require_keys(obj: Any, keys: tuple[str, ...], kind: str, path: str | os.PathLike[str], what: str,
                 hint: str = "") -> None:
    """Raise SourceError if a file's top-level object lacks `keys` (e.g. a questions file given as annotations)."""
    if not isinstance(obj, dict):
        raise SourceError(f"{kind}: {path} holds a JSON {type(obj).__name__}, expected an object with keys "
                          f"{list(keys)} ({what}){hint}")
    missing = [k for k in keys if k not in obj]
    if missing:
        found = ", ".join(sorted(obj)[:8])
        raise SourceError(f"{kind}: {path} has no {', '.join(repr(k) for k in missing)} key (found: {found}); "
                          f"expected {what}{hint}")


def box_from_xywh(bbox: Any, width: int, height: int) -> Box:
    """COCO `[x, y, w, h]` to Box; raises ValueError with a readable message on a bad box."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        raise ValueError(f"bbox must be [x, y, w, h], got {bbox!r}")
    return Box.from_xywh(bbox, width, height)
