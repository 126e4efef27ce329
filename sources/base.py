"""The reader interface: a Source reads one dataset family and yields AnnotationRecords, Samples or Rejects.

A source raises `SourceError` for problems that make the whole input unusable (a missing file, the wrong
kind of file, malformed JSON); the message names the file and the fix. A problem with one record
(a missing image, an empty answer, a bad box) becomes a `Reject` with a reason code instead.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

from pydantic import BaseModel, ConfigDict, Field

from schemas.box import Box
from schemas.image import ImageResolver, ImageRef
from schemas.record import AnnotationRecord
from schemas.reject import Reject
from schemas.sample import Lineage, Sample

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback keeps the reader working
    _orjson = None

Item = AnnotationRecord | Sample | Reject


@dataclass
class RawUnit:
    """Plain data for one record, found cheaply by a source's `scan()` (a read task) and turned into
    items by `parse_unit()` in the parse stage, so that the per-record work runs in parallel."""

    source: str
    payload: Any
    #: The source object that made this unit, with the state its scan set up (a worker that did not run
    #: the scan finishes the unit with it). `pipeline.parse.SourceScan` sets it.
    reader: "Source | None" = None


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
    #: The adapt tasks this source's records may feed; None = every task of `adapt.tasks`.
    tasks: list[str] | None = None

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

    def scan(self) -> Iterator[Item | RawUnit]:
        """What a read task reads: items, or `RawUnit`s that `parse_unit` finishes in the parse stage.

        Simple sources do all their work here (the default yields `read()`); large ones split it."""
        yield from self.read()

    def parse_unit(self, payload: Any) -> list[Item]:
        """Turn one RawUnit payload into items (runs in a worker, on a pickled copy without
        the `driver_only` attributes)."""
        raise NotImplementedError(f"{self.kind} yields no RawUnits")

    #: Attributes that only the scan needs (large lookup tables); left out of the copies units carry.
    driver_only: ClassVar[tuple[str, ...]] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self.driver_only:
            state.pop(name, None)
        return state

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
        path, reason = self.images.resolve(rel)
        if path is None:
            return None, reason
        return ImageRef(path=path, width=width, height=height), None

    def image_reject(self, reason: str, file_name: str, *, file: str | None, record: Any) -> Reject:
        where = os.path.join(self.image_root, self.options.image_prefix, file_name)
        in_file = f" in {file}" if file else ""
        if reason == "image_missing":
            msg = (f"{self.kind}: image {file_name!r} of record {record}{in_file} not found at {where}; "
                   "check `images` (the image root) and this source's `image_prefix`")
        else:
            msg = (f"{self.kind}: image path {file_name!r} of record {record}{in_file} is absolute or leaves the "
                   f"image root {self.image_root}; image paths must stay inside the root")
        return self.reject(reason, msg, file=file, record=record)

    def limited(self, n: int) -> bool:
        """True once `n` records have been produced and the source's `limit` is reached."""
        return self.options.limit is not None and n >= self.options.limit

    def split_ok(self, split: str | None) -> bool:
        return self.options.splits is None or split in self.options.splits


class TwoPhaseSource(Source):
    """A source whose `scan()` groups raw rows per record and whose `parse_unit()` does the rest.

    `read()` runs both phases in this process (what tests and small runs use); the build runs
    `scan()` in a Ray read task and `parse_unit()` in the parse stage, in the Ray workers."""

    def read(self) -> Iterator[Item]:
        for x in self.scan():
            if isinstance(x, RawUnit):
                yield from self.parse_unit(x.payload)
            else:
                yield x

    @abstractmethod
    def scan(self) -> Iterator[Item | RawUnit]:
        """Yield RawUnits (one per record) and the rejects found while grouping."""


def load_json(path: str | os.PathLike[str], kind: str, expect: str) -> Any:
    """Read a JSON file or raise SourceError naming the file, the problem and what was expected.

    orjson parses large annotation files about a third faster than the standard library; the standard
    library is used when it is absent."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"{kind}: file not found: {p}; check the path in the recipe ({expect})")
    try:
        with open(p, "rb") as f:
            raw = f.read()
        if _orjson is not None:
            try:
                return _orjson.loads(raw)
            except _orjson.JSONDecodeError:
                pass  # the standard library accepts more (NaN, Infinity) and reports the position
        return json.loads(raw)
    except json.JSONDecodeError as e:  # orjson's error is a subclass
        if "UTF-8" in e.msg:
            raise SourceError(f"{kind}: {p} is not UTF-8 text; expected {expect}") from None
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
