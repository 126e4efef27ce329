"""Unlabelled images (`kind: images`): every image file of a folder or a glob under the image root.

These records carry only the image; a describe stage adds machine captions and boxes to them. `path` is a
folder (all images below it, recursively) or a glob (`photos/**/*.jpg`), relative to the image root (after
`image_prefix`). Matches are sorted by relative path. Each image is opened lazily: only its header is read,
for the size; pixels are decoded once, later, by the stage that needs them. A file whose header cannot be
read is rejected as `image_unreadable`. The record id is the image's path relative to the image root.
"""

from __future__ import annotations

import glob
import os
from typing import ClassVar, Iterator

from pydantic import Field, field_validator

from schemas.image import PathEscapesRoot, safe_relpath
from schemas.record import AnnotationRecord
from sources.base import Item, Source, SourceError, SourceOptions


class ImageGlobOptions(SourceOptions):
    """`path`: a folder or a glob inside the image root; `extensions`: which files count as images."""

    path: str = ""
    extensions: list[str] = Field(default_factory=lambda: [".jpg", ".jpeg", ".png", ".webp", ".bmp"])

    #: `path` is relative to the image root, not the recipe, so it is no path key.
    path_keys: ClassVar[tuple[str, ...]] = ()

    @field_validator("path")
    @classmethod
    def _inside_root(cls, v: str) -> str:
        if v in ("", "."):
            return ""
        try:
            safe_relpath(v)
        except PathEscapesRoot as e:
            raise ValueError(f"{e}; `path` is a folder or glob relative to the recipe's `images` root") from None
        return v.replace("\\", "/").rstrip("/")


def image_size(full_path: str) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    from PIL import Image

    with Image.open(full_path) as im:
        return im.size


class ImageGlobSource(Source):
    """One record per image file, with no annotations."""

    kind: ClassVar[str] = "images"
    Options: ClassVar[type[SourceOptions]] = ImageGlobOptions

    def _matches(self) -> tuple[str, list[str]]:
        """(what was searched, sorted relative paths of the matching image files)."""
        opts = self.options
        assert isinstance(opts, ImageGlobOptions)
        rel = "/".join(p for p in (opts.image_prefix.strip("/"), opts.path) if p)
        exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in opts.extensions)
        if glob.has_magic(rel):
            pattern = rel
        else:
            top = os.path.join(self.image_root, rel) if rel else self.image_root
            if not os.path.isdir(top):
                raise SourceError(f"{self.kind}: folder not found: {top}; set `path` to a folder or a glob "
                                  f"(e.g. photos/**/*.jpg) relative to the image root {self.image_root}")
            pattern = f"{rel}/**/*" if rel else "**/*"
        found = glob.glob(pattern, root_dir=self.image_root, recursive=True)
        keep = sorted(p.replace(os.sep, "/") for p in found
                      if p.lower().endswith(exts) and not any(part.startswith(".") for part in p.split(os.sep))
                      and os.path.isfile(os.path.join(self.image_root, p)))
        return os.path.join(self.image_root, pattern), keep

    def read(self) -> Iterator[Item]:
        where, paths = self._matches()
        if not paths:
            raise SourceError(f"{self.kind}: no image files match {where}; check `path` and `extensions` "
                              f"({', '.join(self.options.extensions)})")  # type: ignore[attr-defined]
        n = 0
        for rel in paths:
            if self.limited(n):
                return
            path, reason = self.images.resolve(rel)
            if path is None:
                assert reason is not None
                yield self.image_reject(reason, rel, file=where, record=rel)
                continue
            try:
                width, height = image_size(os.path.join(self.image_root, path))
            except Exception as e:  # PIL raises several types for a bad header
                yield self.reject("image_unreadable", f"{self.kind}: cannot read the header of image {rel} "
                                  f"({type(e).__name__}: {e}); replace the file or remove it from {where}",
                                  file=where, record=rel)
                continue
            n += 1
            yield AnnotationRecord(id=path, source=self.name, source_kind=self.kind, file=where,
                                   image=self.image_ref(path, width, height)[0])
