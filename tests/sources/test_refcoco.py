"""RefCOCO family reader: exact records and rejects from tiny hand-made refs pickles, and the safe unpickler."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from PIL import Image

from schemas.box import Box
from schemas.image import ImageRef
from schemas.record import AnnotationRecord, RefExpr
from schemas.reject import REASONS, Reject
from sources.base import SourceError
from sources.refcoco import RefCOCOOptions, RefCOCOgSource, RefCOCOPlusSource, RefCOCOSource, load_refs

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources" / "refcoco"
UNC = str(ASSETS / "refs(unc).p")
UMD = str(ASSETS / "refs(umd).p")
INSTANCES = str(ASSETS / "instances.json")
SIZES = {1: (64, 48), 2: (40, 40), 5: (20, 20)}  # image 3 is deliberately absent


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "train2014").mkdir()
    for i, size in SIZES.items():
        Image.new("RGB", size, (i * 40, 90, 160)).save(tmp_path / "train2014" / f"COCO_train2014_{i:012d}.jpg")
    return tmp_path


def _read(root: Path, kind: str = "refcoco", cls: type[RefCOCOSource] = RefCOCOSource, **kw: object) -> list:
    opts = RefCOCOOptions(kind=kind, refs=kw.pop("refs", UNC), image_prefix="train2014", **kw)
    return list(cls(opts, root).read())


def _img(i: int) -> ImageRef:
    w, h = SIZES[i]
    return ImageRef(path=f"train2014/COCO_train2014_{i:012d}.jpg", width=w, height=h)


def _box(x1: float, y1: float, x2: float, y2: float, i: int) -> Box:
    return Box(x1=x1, y1=y1, x2=x2, y2=y2, width=SIZES[i][0], height=SIZES[i][1])


def _rec(i: int, split: str, refs: list[RefExpr], kind: str = "refcoco", file: str = UNC) -> AnnotationRecord:
    return AnnotationRecord(id=str(i), source=kind, source_kind=kind, file=file, image=_img(i), split=split, refs=refs)


REC1 = [RefExpr(ref_id="100", sentences=["man on left", "café guy"], box=_box(4, 6, 24, 36, 1), ann_id="10",
                category="person"),
        RefExpr(ref_id="102", sentences=["red car"], box=_box(30, 10, 55, 30, 1), ann_id="11", category="car")]
REC2 = [RefExpr(ref_id="101", sentences=["whole thing"], box=_box(1, 1, 39, 39, 2), ann_id="14", category="person")]
REC5 = [RefExpr(ref_id="111", sentences=["small &lt;image&gt; square"], box=_box(2, 2, 12, 12, 5), ann_id="17",
                category="car")]


def test_python2_pickle_gives_str_keys_and_utf8_text() -> None:
    refs = load_refs(UNC, "refcoco")
    assert len(refs) == 12
    assert refs[0]["ref_id"] == 100 and refs[0]["sentences"][1]["sent"] == "café guy"
    assert all(isinstance(k, str) for r in refs for k in r)


def test_all_records_and_rejects_in_order(root: Path) -> None:
    items = _read(root)
    assert [(type(x).__name__, x.reason if isinstance(x, Reject) else x.id) for x in items] == [
        ("Reject", "missing_key"),           # ref 108 has no sentences
        ("Reject", "bad_value"),             # ref 102's second sentence is empty
        ("Reject", "unknown_annotation"),    # ref 105 -> ann 999
        ("Reject", "unknown_category"),      # ref 109 -> category 99
        ("AnnotationRecord", "1"),
        ("Reject", "box_invalid"),           # ref 103: w = 0
        ("Reject", "box_outside_image"),     # ref 104: x2 = 50 on a 40 px image
        ("Reject", "bad_value"),             # ref 110: its ann is on another image
        ("AnnotationRecord", "2"),
        ("Reject", "image_missing"),         # image 3 has no file
        ("Reject", "unknown_image"),         # image 4 is not in instances
        ("AnnotationRecord", "5"),
    ]
    recs = [x for x in items if isinstance(x, AnnotationRecord)]
    assert recs == [_rec(1, "train", REC1), _rec(2, "train", REC2), _rec(5, "val", REC5)]
    rejects = [x for x in items if isinstance(x, Reject)]
    assert all(r.reason in REASONS for r in rejects)
    assert [r.record for r in rejects] == ["108", "102/sent 1004", "105", "109", "103", "104", "110", "3", "4"]
    msgs = [r.message for r in rejects]
    assert msgs[0] == (f"refcoco: ref 108 in {UNC} has no 'sentences' key; "
                       "a ref needs ref_id, ann_id, image_id, split, sentences")
    assert msgs[1] == "refcoco: sentence 1004 of ref 102 is empty or not text (got '')"
    assert msgs[2] == (f"refcoco: ref 105 names ann_id 999, which {INSTANCES} does not list; "
                       "is `instances` the dataset's own instances.json?")
    assert msgs[3] == (f"refcoco: annotation 16 (ref 109) has category_id 99, which the categories of {INSTANCES} "
                       "do not list")
    assert msgs[4].startswith(f"refcoco: annotation 12 (ref 103) in {INSTANCES} has an unusable bbox "
                              "[0.0, 0.0, 0.0, 10.0]: Value error, box has no area")
    assert msgs[5] == ("refcoco: annotation 13 (ref 104) has bbox [10.0, 10.0, 40.0, 10.0], which leaves its "
                       "40x40 image by more than 1 px")
    assert msgs[6] == (f"refcoco: ref 110 is on image 2 but its ann_id 11 is on image 1 in {INSTANCES}; "
                       "the refs and instances files do not belong together")
    assert msgs[7] == (f"refcoco: image 'COCO_train2014_000000000003.jpg' of record 3 in {INSTANCES} not found at "
                       f"{os.path.join(str(root), 'train2014', 'COCO_train2014_000000000003.jpg')}; check `images` "
                       "(the image root) and this source's `image_prefix`")
    assert msgs[8] == (f"refcoco: refs 107 name image_id 4, which {INSTANCES} does not list; "
                       "is `instances` the dataset's own instances.json?")
    assert rejects[2].lineage is not None and rejects[2].lineage.ann_ids == ["105", "999"]


def test_splits_limit_and_kinds(root: Path) -> None:
    assert _read(root, splits=["val"]) == [_rec(5, "val", REC5)]
    recs = [x for x in _read(root, limit=1) if isinstance(x, AnnotationRecord)]
    assert [r.id for r in recs] == ["1"]
    plus = [x for x in _read(root, kind="refcoco_plus", cls=RefCOCOPlusSource, splits=["val"])]
    assert plus == [_rec(5, "val", REC5, kind="refcoco_plus")]
    g = _read(root, kind="refcocog", cls=RefCOCOgSource, refs=UMD, splits=["test", "val"])
    assert g == [
        _rec(1, "test", [RefExpr(ref_id="200", sentences=["the man standing on the left side"],
                                 box=_box(4, 6, 24, 36, 1), ann_id="10", category="person")], "refcocog", UMD),
        _rec(2, "val", [RefExpr(ref_id="201", sentences=["a big person filling the picture"],
                                box=_box(1, 1, 39, 39, 2), ann_id="14", category="person")], "refcocog", UMD),
    ]


def test_split_names_are_checked_per_kind() -> None:
    with pytest.raises(ValueError, match=r"refcocog has no split\(s\) 'testA'; its splits are train, val, test"):
        RefCOCOOptions(kind="refcocog", refs=UMD, splits=["testA"])
    with pytest.raises(ValueError, match=r"refcoco has no split\(s\) 'test'; its splits are train, val, testA, testB"):
        RefCOCOOptions(kind="refcoco", refs=UNC, splits=["test"])
    assert RefCOCOOptions(kind="refcoco_plus", refs=UNC, splits=["testB"]).splits == ["testB"]


class _Payload:
    """Pickles to a call of os.system; only a loader that resolves globals would run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "refs(unc).p"
    bad.write_bytes(pickle.dumps([{"ref_id": 1, "x": _Payload(marker)}], protocol=2))
    with pytest.raises(SourceError, match=r"asks to load (posix|nt)\.system; vlforge refuses to load code") as e:
        _read(tmp_path, refs=str(bad), instances=INSTANCES)
    assert str(bad) in str(e.value)
    assert not marker.exists()
    # The payload is live: Python's own loader runs it (a harmless `touch` in tmp_path).
    pickle.loads(bad.read_bytes())
    assert marker.exists()
    # Even harmless globals are refused: a refs file never needs one.
    bad.write_bytes(pickle.dumps([{1, 2}], protocol=2))
    with pytest.raises(SourceError, match=r"asks to load (__builtin__|builtins)\.set"):
        load_refs(bad, "refcoco")


def test_whole_file_problems(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"refcoco: refs file not found: .*nope\.p; check `refs`"):
        load_refs(tmp_path / "nope.p", "refcoco")
    js = tmp_path / "refs.json"
    js.write_text(json.dumps([{"ref_id": 1}]))
    with pytest.raises(SourceError, match=r"refs\.json is not a readable pickle \(UnpicklingError"):
        load_refs(js, "refcoco")
    d = tmp_path / "dict.p"
    d.write_bytes(pickle.dumps({"refs": []}, protocol=2))
    with pytest.raises(SourceError, match=r"dict\.p holds a pickled dict, expected a list of refs"):
        load_refs(d, "refcoco")
    wrong = tmp_path / "captions.json"
    wrong.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(SourceError, match=r"captions\.json has no 'categories' key \(found: annotations, images\)"):
        _read(tmp_path, instances=str(wrong))
    wrong.write_text(json.dumps({"images": {}, "annotations": [], "categories": []}))
    with pytest.raises(SourceError, match=r"refcoco: 'images' in \S*captions\.json must be a list; expected a COCO"):
        _read(tmp_path, instances=str(wrong))


def test_instances_default_beside_refs(root: Path) -> None:
    """Without `instances`, the reader looks for instances.json in the refs file's folder."""
    recs = [x for x in _read(root, splits=["val"])]
    assert recs == [_rec(5, "val", REC5)]
    opts = RefCOCOOptions(kind="refcoco", refs=str(root / "refs(unc).p"))
    (root / "refs(unc).p").write_bytes(Path(UNC).read_bytes())
    with pytest.raises(SourceError, match=r"refcoco: file not found: .*instances\.json"):
        list(RefCOCOSource(opts, root).read())


def test_bad_ids_and_bad_image_entries(root: Path) -> None:
    refs = root / "refs(unc).p"
    sent = [{"sent_id": 1, "sent": "thing"}]
    refs.write_bytes(pickle.dumps([
        {"ref_id": 1, "ann_id": [10], "image_id": 1, "split": "train", "sentences": sent},
        {"ref_id": 2, "ann_id": 10, "image_id": 1, "split": "train", "sentences": sent},
        {"ref_id": 3, "ann_id": 14, "image_id": 2, "split": "train", "sentences": sent},
        "not a ref",
    ], protocol=2))
    inst = json.loads(Path(INSTANCES).read_text())
    del inst["images"][0]["width"]
    inst["images"][1]["height"] = 0
    (root / "instances.json").write_text(json.dumps(inst))
    items = list(RefCOCOSource(RefCOCOOptions(kind="refcoco", refs=str(refs)), root).read())
    assert [(x.reason, x.record, x.message) for x in items] == [
        ("bad_value", "1", f"refcoco: ref 1 in {refs} has ann_id=[10]; ids must be integers or strings"),
        ("bad_value", "#3", f"refcoco: ref #3 in {refs} is a str, expected a dict with keys ref_id, ann_id, "
                            "image_id, split, sentences"),
        ("missing_key", "1", f"refcoco: image 1 in {root / 'instances.json'} has no 'width' key; COCO images need "
                             "file_name, width, height"),
        ("bad_value", "2", f"refcoco: image 2 in {root / 'instances.json'} has size 40x0; width and height must be "
                           "positive integers"),
    ]
