"""Image classification folders: `root/<class_name>/*.jpg|jpeg|png`, the class being the folder's name.

`folder` is the classification root, relative to the recipe's image root (after `image_prefix`). Files
are walked in sorted order of their relative paths; images in sub-folders of a class folder belong to that
class. Files with other extensions and hidden entries (names starting with `.`) are not images and are
skipped; an image lying directly in the root has no class and is rejected. Symlinked folders are not
followed; symlinked files are checked to stay inside the image root. The record id is the image's path
relative to the classification root, e.g. `cat/001.jpg`.
"""

from __future__ import annotations

import os
from typing import ClassVar, Iterator

from pydantic import Field, field_validator

from schemas.image import PathEscapesRoot, safe_relpath
from schemas.record import AnnotationRecord
from schemas.sample import escape_source_text
from sources.base import Item, Source, SourceError, SourceOptions


class ImageFolderOptions(SourceOptions):
    """`folder`: the classification root inside the image root; `label_map`: class folder -> label text."""

    folder: str = ""
    label_map: dict[str, str] = Field(default_factory=dict)
    #: File name endings that count as images (compared case-insensitively).
    extensions: list[str] = Field(default_factory=lambda: [".jpg", ".jpeg", ".png"])

    #: `folder` is relative to the image root, not the recipe, so it is no path key.
    path_keys: ClassVar[tuple[str, ...]] = ()

    @field_validator("splits")
    @classmethod
    def _no_splits(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            raise ValueError("image_folder has no split field; point `folder` at one split's folder "
                             "(e.g. folder: train) instead of setting `splits`")
        return v

    @field_validator("label_map")
    @classmethod
    def _labels_not_empty(cls, v: dict[str, str]) -> dict[str, str]:
        empty = [k for k, label in v.items() if not label.strip()]
        if empty:
            raise ValueError(f"label_map gives an empty label to {', '.join(map(repr, empty))}; give each a name")
        return v

    @field_validator("folder")
    @classmethod
    def _inside_root(cls, v: str) -> str:
        if v in ("", "."):
            return ""
        try:
            return safe_relpath(v)
        except PathEscapesRoot as e:
            raise ValueError(f"{e}; `folder` is relative to the recipe's `images` root") from None


class ImageFolderSource(Source):
    """One record per image file with the class folder's name as its label."""

    kind: ClassVar[str] = "image_folder"
    Options: ClassVar[type[SourceOptions]] = ImageFolderOptions

    def _walk(self, top: str, exts: tuple[str, ...]) -> list[str]:
        """Relative POSIX paths of the image files under `top`, sorted."""
        found: list[str] = []

        def unreadable(e: OSError) -> None:
            raise SourceError(f"{self.kind}: cannot list folder {e.filename} ({e.strerror}); fix its permissions "
                              "or move it out of the classification root")

        for dirpath, dirnames, filenames in os.walk(top, onerror=unreadable):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = os.path.relpath(dirpath, top)
            for f in filenames:
                if f.startswith(".") or not f.lower().endswith(exts):
                    continue
                rel = f if rel_dir == "." else f"{rel_dir}/{f}"
                found.append(rel.replace(os.sep, "/"))
        return sorted(found)

    def read(self) -> Iterator[Item]:
        opts = self.options
        assert isinstance(opts, ImageFolderOptions)
        prefix = "/".join(p for p in (opts.image_prefix.strip("/"), opts.folder) if p)
        top = os.path.join(self.image_root, prefix) if prefix else self.image_root
        if not os.path.isdir(top):
            raise SourceError(f"{self.kind}: class folder root not found: {top}; set `folder` (relative to the "
                              f"image root {self.image_root}) to the folder holding one sub-folder per class")
        exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in opts.extensions)
        n = 0
        for rel in self._walk(top, exts):
            if self.limited(n):
                return
            if "/" not in rel:
                yield self.reject("missing_key", f"{self.kind}: image {rel} lies directly in {top}, so it has no "
                                  f"class; move it into {top}/<class_name>/", file=top, record=rel)
                continue
            file_name = f"{opts.folder}/{rel}" if opts.folder else rel
            image, reason = self.image_ref(file_name)
            if image is None:
                assert reason is not None
                yield self.image_reject(reason, file_name, file=top, record=rel)
                continue
            cls_name = rel.split("/", 1)[0]
            label = opts.label_map.get(cls_name, cls_name)
            n += 1
            yield AnnotationRecord(id=rel, source=self.name, source_kind=self.kind, file=top, image=image,
                                   label=escape_source_text(label))
