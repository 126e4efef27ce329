"""Karpathy-split reader (Flickr30k and COCO): exact caption records, restval, splits and rejects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from schemas.image import ImageRef
from schemas.record import AnnotationRecord, Caption
from schemas.reject import REASONS, Reject
from sources.base import SourceError
from sources.karpathy import KarpathyOptions, KarpathySource

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources" / "karpathy"
FLICKR = str(ASSETS / "dataset_flickr30k.json")
COCO = str(ASSETS / "dataset_coco.json")
FLICKR_FILES = ["1000092795.jpg", "10002456.jpg", "1000366164.jpg", "1000523639.jpg"]  # not 1000268201.jpg
COCO_FILES = ["val2014/COCO_val2014_000000391895.jpg", "val2014/COCO_val2014_000000522418.jpg",
              "train2014/COCO_train2014_000000318556.jpg"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for rel in [f"flickr30k-images/{f}" for f in FLICKR_FILES] + COCO_FILES:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (10, 10), (10, 120, 60)).save(tmp_path / rel)
    return tmp_path


def _read(root: Path, path: str = FLICKR, **kw: object) -> list:
    opts = KarpathyOptions(kind=str(kw.pop("kind", "karpathy")), path=path, **kw)
    return list(KarpathySource(opts, root).read())


def _rec(rel: str, split: str, caps: list[tuple[str, str]], prefix: str = "", file: str = FLICKR
         ) -> AnnotationRecord:
    return AnnotationRecord(id=rel, source="karpathy", source_kind="karpathy", file=file,
                            image=ImageRef(path=f"{prefix}{rel}"), split=split,
                            captions=[Caption(text=t, ann_id=a) for t, a in caps])


F0 = _rec("1000092795.jpg", "train", [("Two young guys with shaggy hair look at their hands.", "0"),
                                       ("Two friends enjoy time spent together.", "1")], "flickr30k-images/")
F1 = _rec("10002456.jpg", "val", [("Several men in hard hats &lt;image&gt; operate a giant pulley system.", "5")],
          "flickr30k-images/")


def test_flickr_records_and_rejects(root: Path) -> None:
    items = _read(root, image_prefix="flickr30k-images")
    assert [x for x in items if isinstance(x, AnnotationRecord)] == [F0, F1]
    rejects = [x for x in items if isinstance(x, Reject)]
    assert [(r.reason, r.record) for r in rejects] == [
        ("empty_caption", "10002456.jpg#6"), ("image_missing", "1000268201.jpg"), ("missing_key", "1000344755.jpg"),
        ("missing_key", "1000366164.jpg"), ("bad_value", "1000092795.jpg"), ("missing_key", "1000523639.jpg#30"),
        ("image_path_escapes_root", "../../outside.jpg"), ("bad_value", "#8")]
    assert all(r.reason in REASONS for r in rejects)
    assert [r.message for r in rejects] == [
        f"karpathy: sentence 1 of image 10002456.jpg in {FLICKR} is empty (raw='   ')",
        f"karpathy: image '1000268201.jpg' of record 1000268201.jpg in {FLICKR} not found at "
        f"{os.path.join(str(root), 'flickr30k-images', '1000268201.jpg')}; check `images` (the image root) "
        "and this source's `image_prefix`",
        f"karpathy: images[3] in {FLICKR} has no 'split' key; each image needs filename, split, sentences",
        f"karpathy: image 1000366164.jpg in {FLICKR} has no sentences (got []); each image needs a list of "
        "{raw, tokens} sentences",
        f"karpathy: image 1000092795.jpg appears twice in {FLICKR} (again at images[5]); only its first entry is used",
        "karpathy: sentence 0 of image 1000523639.jpg in "
        f"{FLICKR} has no 'raw' key (got {{'tokens': ['a', 'man', 'in', 'an', 'orange', 'hat'], 'imgid': 6, "
        "'sentid': 30})",
        f"karpathy: image path '../../outside.jpg' of record ../../outside.jpg in {FLICKR} is absolute or leaves the image root "
        f"{root}; image paths must stay inside the root",
        f"karpathy: images[8] in {FLICKR} is a str, expected an object {{filename, split, sentences}}",
    ]


def test_splits_limit_and_alias_kind(root: Path) -> None:
    val = _read(root, image_prefix="flickr30k-images", splits=["val"])
    assert val[1] == F1
    # Entries whose split cannot be known are still reported under a split filter.
    assert [(x.reason, x.record) for x in val if isinstance(x, Reject)] == [
        ("empty_caption", "10002456.jpg#6"), ("missing_key", "1000344755.jpg"), ("bad_value", "#8")]
    assert _read(root, image_prefix="flickr30k-images", limit=1) == [F0]
    aliased = _read(root, kind="flickr30k", image_prefix="flickr30k-images", name="f30k", limit=1)
    assert aliased[0].source == "f30k" and aliased[0].captions == F0.captions


def test_coco_filepath_and_restval(root: Path) -> None:
    t = _rec("val2014/COCO_val2014_000000391895.jpg", "test",
             [("A man with a red helmet on a small moped on a dirt road.", "770337")], file=COCO)
    r = _rec("val2014/COCO_val2014_000000522418.jpg", "train",
             [("A woman wearing a net on her head cutting a cake.", "681330")], file=COCO)
    tr = _rec("train2014/COCO_train2014_000000318556.jpg", "train",
              [("A very clean and well decorated empty bathroom", "787980")], file=COCO)
    assert _read(root, COCO) == [t, r, tr]
    assert _read(root, COCO, splits=["train"]) == [r, tr]
    kept = r.model_copy(update={"split": "restval"})
    assert _read(root, COCO, restval_as_train=False, splits=["restval"]) == [kept]


def test_whole_file_problems(root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"karpathy: file not found: .*nope\.json"):
        _read(root, str(tmp_path / "nope.json"))
    caps = tmp_path / "captions_val2014.json"
    caps.write_text('{"images": {}, "annotations": []}')
    with pytest.raises(SourceError, match=r"'images' in .*captions_val2014\.json is a dict, expected a list"):
        _read(root, str(caps))
    caps.write_text('{"annotations": []}')
    with pytest.raises(SourceError, match=r"captions_val2014\.json has no 'images' key \(found: annotations\); "
                                          r"expected a Karpathy split file"):
        _read(root, str(caps))
