"""Image-folder classification reader: sorted walk, labels from folder names, rejects and options."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError

from schemas.image import ImageRef
from schemas.record import AnnotationRecord
from schemas.reject import REASONS, Reject
from sources.base import SourceError
from sources.image_folder import ImageFolderOptions, ImageFolderSource


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 4), (90, 90, 200)).save(path, format="PNG")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "images"
    for rel in ("pets/cat/b.jpg", "pets/cat/a.PNG", "pets/cat/sub/c.jpeg", "pets/dog/x.jpg", "pets/stray.jpg",
                "pets/.hidden/z.jpg", "pets/cat/.thumb.jpg", "pets/dog/photo.gif"):
        _png(r / rel)
    (r / "pets/dog/notes.txt").write_text("not an image")
    _png(tmp_path / "secret.jpg")
    (r / "pets/dog/link.jpg").symlink_to(tmp_path / "secret.jpg")
    return r


def _read(root: Path, **kw: object) -> list:
    return list(ImageFolderSource(ImageFolderOptions(kind="image_folder", **kw), root).read())


def _rec(rel: str, label: str, prefix: str = "pets/") -> AnnotationRecord:
    return AnnotationRecord(id=rel, source="image_folder", source_kind="image_folder", file=None,
                            image=ImageRef(path=prefix + rel), label=label)


def test_sorted_walk_labels_and_rejects(root: Path) -> None:
    items = _read(root, folder="pets", label_map={"dog": "a <image> dog"})
    top = str(root / "pets")
    expected = [_rec("cat/a.PNG", "cat"), _rec("cat/b.jpg", "cat"), _rec("cat/sub/c.jpeg", "cat"),
                _rec("dog/x.jpg", "a &lt;image&gt; dog")]
    assert [x for x in items if isinstance(x, AnnotationRecord)] == [e.model_copy(update={"file": top})
                                                                      for e in expected]
    assert [x.id if isinstance(x, AnnotationRecord) else x.reason for x in items] == [
        "cat/a.PNG", "cat/b.jpg", "cat/sub/c.jpeg", "image_path_escapes_root", "dog/x.jpg", "missing_key"]
    rejects = [x for x in items if isinstance(x, Reject)]
    assert all(r.reason in REASONS for r in rejects)
    assert [(r.record, r.message) for r in rejects] == [
        ("dog/link.jpg", f"image_folder: image path 'pets/dog/link.jpg' of record dog/link.jpg in {top} is absolute or "
                         f"leaves the image root {root}; image paths must stay inside the root"),
        ("stray.jpg", f"image_folder: image stray.jpg lies directly in {top}, so it has no class; move it into "
                      f"{top}/<class_name>/"),
    ]


def test_prefix_extensions_and_limit(root: Path) -> None:
    items = _read(root, image_prefix="pets", folder="dog", extensions=["gif"])
    # Inside `dog` the files are the classification root's direct children: no class folder.
    assert [(x.reason, x.record) for x in items] == [("missing_key", "photo.gif")]
    recs = _read(root, image_prefix="pets", limit=2)
    assert [(x.id, x.label, x.image.path) for x in recs] == [("cat/a.PNG", "cat", "pets/cat/a.PNG"),
                                                              ("cat/b.jpg", "cat", "pets/cat/b.jpg")]


def test_options_are_checked(root: Path) -> None:
    with pytest.raises(ValidationError, match=r"image_folder has no split field; point `folder` at one split's"):
        ImageFolderOptions(kind="image_folder", splits=["train"])
    with pytest.raises(ValidationError, match=r"image path '\.\./x' escapes the image root; `folder` is relative"):
        ImageFolderOptions(kind="image_folder", folder="../x")
    with pytest.raises(ValidationError, match=r"label_map gives an empty label to 'cat'"):
        ImageFolderOptions(kind="image_folder", label_map={"cat": " "})
    with pytest.raises(SourceError, match=r"image_folder: class folder root not found: .*images/nope; set `folder`"):
        _read(root, folder="nope")
