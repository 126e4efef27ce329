"""References to image files, always relative to the recipe's image root."""

from __future__ import annotations

import os
import posixpath
import stat

from pydantic import BaseModel, ConfigDict


class ImageRef(BaseModel):
    """An image file under the image root. `path` is relative, POSIX-style, and never leaves the root."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    width: int | None = None
    height: int | None = None
    sha256: str | None = None


class PathEscapesRoot(ValueError):
    """An image path that is absolute or climbs out of the image root with `..`."""


def safe_relpath(path: str) -> str:
    """Normalise an annotation's image path; raise PathEscapesRoot if it would leave the image root.

    This is pure string work (no filesystem calls) so it costs nothing per image; `resolve_image`
    adds the symlink check.
    """
    p = path.replace("\\", "/")
    if p.startswith("/") or (len(p) > 1 and p[1] == ":"):
        raise PathEscapesRoot(f"image path {path!r} is absolute; paths must be relative to the image root")
    norm = posixpath.normpath(p)
    if norm == ".." or norm.startswith("../") or norm == ".":
        raise PathEscapesRoot(f"image path {path!r} escapes the image root")
    return norm


class ImageResolver:
    """Checks image files under one root: inside the root (symlinks included) and present.

    Real paths of directories are cached, so checking many images in one folder costs one stat each.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._dir_ok: dict[str, bool] = {}

    def check(self, rel: str) -> str | None:
        """Return None when `rel` is a file inside the root, else a reason code
        (`image_path_escapes_root` or `image_missing`)."""
        return self.resolve(rel)[1]

    def resolve(self, rel: str) -> tuple[str | None, str | None]:
        """(normalised relative path, None) for a file inside the root, else (None, reason code).

        One `lstat` per image; a symbolic link costs a `realpath` more, to see where it points."""
        try:
            rel = safe_relpath(rel)
        except PathEscapesRoot:
            return None, "image_path_escapes_root"
        full = os.path.join(self.root, rel)
        d = os.path.dirname(full)
        ok = self._dir_ok.get(d)
        if ok is None:
            real = os.path.realpath(d)
            ok = real == self.root or real.startswith(self.root + os.sep)
            self._dir_ok[d] = ok
        if not ok:
            return None, "image_path_escapes_root"
        try:
            mode = os.lstat(full).st_mode
        except OSError:
            return None, "image_missing"
        if stat.S_ISLNK(mode):
            real = os.path.realpath(full)
            if not real.startswith(self.root + os.sep):
                return None, "image_path_escapes_root"
            if not os.path.isfile(real):
                return None, "image_missing"
        elif not stat.S_ISREG(mode):
            return None, "image_missing"
        return rel, None
