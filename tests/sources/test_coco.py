"""COCO captions and instances readers: exact records, every reject, every whole-file error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from schemas.box import Box
from schemas.image import ImageRef
from schemas.record import AnnotationRecord, Caption, ObjectAnn
from schemas.reject import REASONS, Reject
from sources.base import SourceError
from sources.coco_captions import CocoCaptionsSource
from sources.coco_instances import CocoInstancesSource

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources" / "coco"
CAPTIONS = str(ASSETS / "captions_val2017.json")
INSTANCES = str(ASSETS / "instances_val2017.json")
SIZES = {397133: (640, 427), 37777: (352, 230), 252219: (428, 640)}


def make_images(root: Path, ids: list[int] | None = None) -> Path:
    for i in ids if ids is not None else SIZES:
        Image.new("RGB", (4, 4), (i % 255, 60, 120)).save(root / f"{i:012d}.jpg")
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_images(tmp_path)


def read_captions(root: Path, path: str = CAPTIONS, **kw: Any) -> list:
    opts = CocoCaptionsSource.Options.model_validate({"kind": "coco_captions", "path": path, **kw})
    return list(CocoCaptionsSource(opts, root).read())


def read_instances(root: Path, path: str = INSTANCES, **kw: Any) -> list:
    opts = CocoInstancesSource.Options.model_validate({"kind": "coco_instances", "path": path, **kw})
    return list(CocoInstancesSource(opts, root).read())


def shape(items: list) -> list[tuple[str, ...]]:
    """Records as ("record", id) and rejects as (reason, record), in order."""
    return [(x.reason, x.record) if isinstance(x, Reject) else ("record", x.id) for x in items]


def image(i: int, prefix: str = "") -> ImageRef:
    w, h = SIZES[i]
    return ImageRef(path=f"{prefix}{i:012d}.jpg", width=w, height=h)


def caption_record(i: int, captions: list[Caption], **kw: Any) -> AnnotationRecord:
    return AnnotationRecord(id=str(i), source="coco_captions", source_kind="coco_captions", file=CAPTIONS,
                            image=image(i), split="val", captions=captions, **kw)


def box(x1: float, y1: float, x2: float, y2: float, i: int) -> Box:
    return Box(x1=x1, y1=y1, x2=x2, y2=y2, width=SIZES[i][0], height=SIZES[i][1])


def write_variant(tmp_path: Path, src: str, edit: Any, name: str = "variant.json") -> str:
    """A copy of fixture `src` changed by `edit(data)`, written under tmp_path."""
    data = json.loads(Path(src).read_text())
    edit(data)
    p = tmp_path / "ann" / name
    p.parent.mkdir(exist_ok=True)
    p.write_text(json.dumps(data))
    return str(p)


# ---- captions -------------------------------------------------------------------------------


def test_captions_records_in_image_order_with_every_reject(root: Path) -> None:
    items = read_captions(root)
    assert shape(items) == [
        ("missing_key", "7"),          # image 397133: annotation without a caption
        ("record", "397133"),
        ("empty_caption", "4"),        # image 37777: whitespace caption
        ("record", "37777"),
        ("empty_caption", "5"),        # image 252219: its only caption is empty -> no record
        ("missing_key", "8"),          # no image_id: reported after the records
        ("unknown_image", "6"),        # image 999999 is not in `images`
    ]
    assert items[1] == caption_record(397133, [
        Caption(text="A cook prepares food in a kitchen.", ann_id="2"),
        Caption(text="A man holds a sign that says &lt;image&gt;.", ann_id="3"),
    ])
    assert items[3] == caption_record(37777, [Caption(text="A kitchen with a stove and a sink.", ann_id="1")])
    rejects = [x for x in items if isinstance(x, Reject)]
    for r in rejects:
        assert r.reason in REASONS
        assert r.file == CAPTIONS and r.stage == "source" and r.source == "coco_captions"
        assert CAPTIONS in r.message and r.record in r.message
    assert rejects[0].message == (f"coco_captions: annotation 7 (image 397133) in {CAPTIONS} has no 'caption' key; "
                                  "it is skipped; fix it in the file to keep it")
    assert rejects[1].message == (f"coco_captions: annotation 4 (image 37777) in {CAPTIONS} has an empty "
                                  "'caption'; it is skipped (an empty text cannot be trained on)")
    assert "image id 999999" in rejects[4].message


def test_captions_missing_image_rejects_the_image_once(tmp_path: Path) -> None:
    root = make_images(tmp_path, [397133, 252219])  # 37777 absent
    items = read_captions(root)
    assert shape(items) == [("missing_key", "7"), ("record", "397133"), ("image_missing", "37777"),
                            ("empty_caption", "5"), ("missing_key", "8"), ("unknown_image", "6")]
    r = items[2]
    assert r.lineage.ann_ids == ["1", "4"]
    assert "'000000037777.jpg'" in r.message and "37777" in r.message and r.file == CAPTIONS


def test_captions_path_escaping_root_is_rejected(root: Path, tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        d["images"][0]["file_name"] = "../../etc/passwd"
    items = read_captions(root, write_variant(tmp_path, CAPTIONS, edit))
    assert shape(items)[:2] == [("image_path_escapes_root", "397133"), ("empty_caption", "4")]
    assert "leaves the image root" in items[0].message


def test_captions_bad_image_entries(root: Path, tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        del d["images"][0]["file_name"]
        d["images"][1]["width"] = -3
        d["images"].insert(0, "not an object")
        d["images"].insert(1, {"file_name": "x.jpg"})
    items = read_captions(root, write_variant(tmp_path, CAPTIONS, edit))
    assert shape(items)[:4] == [("bad_value", "images[0]"), ("missing_key", "images[1]"),
                                ("missing_key", "397133"), ("bad_value", "37777")]
    assert "has no 'file_name' key" in items[2].message and items[2].lineage.ann_ids == ["2", "3", "7"]
    assert "'width' = -3, expected a positive integer" in items[3].message


def test_captions_limit_counts_images_and_stops_early(root: Path) -> None:
    assert shape(read_captions(root, limit=1)) == [("missing_key", "7"), ("record", "397133")]
    assert shape(read_captions(root, limit=2))[-1] == ("record", "37777")


def test_captions_splits_and_prefix(tmp_path: Path) -> None:
    (tmp_path / "val2017").mkdir()
    make_images(tmp_path / "val2017")
    assert read_captions(tmp_path, image_prefix="val2017", splits=["train"]) == []
    items = read_captions(tmp_path, image_prefix="val2017", splits=["val"])
    assert items[1].image == image(397133, prefix="val2017/")
    items = read_captions(tmp_path, image_prefix="val2017", split="minival", name="coco_a")
    assert items[1].split == "minival" and items[1].source == "coco_a" and items[1].source_kind == "coco_captions"


def test_captions_whole_file_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"coco_captions: file not found: .*nope.json; check the path"):
        read_captions(root, str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [}')
    with pytest.raises(SourceError, match=r"bad.json is not valid JSON \(line 1, column 13"):
        read_captions(root, str(bad))
    with pytest.raises(SourceError, match=r"has 'categories': it is a COCO instances file.*use kind coco_instances"):
        read_captions(root, INSTANCES)
    lst = tmp_path / "list.json"
    lst.write_text("[]")
    with pytest.raises(SourceError, match=r"list.json holds a JSON list, expected an object with keys"):
        read_captions(root, str(lst))
    q = tmp_path / "questions.json"
    q.write_text('{"questions": []}')
    with pytest.raises(SourceError, match=r"has no 'images', 'annotations' key.*VQA questions file: use kind vqav2"):
        read_captions(root, str(q))
    notlist = write_variant(tmp_path, CAPTIONS, lambda d: d.update(images={}))
    with pytest.raises(SourceError, match=r"'images' is a JSON dict, expected a list"):
        read_captions(root, notlist)


# ---- instances ------------------------------------------------------------------------------


def instance_record(i: int, objects: list[ObjectAnn], incomplete: list[str] | None = None) -> AnnotationRecord:
    return AnnotationRecord(id=str(i), source="coco_instances", source_kind="coco_instances", file=INSTANCES,
                            image=image(i), split="val", objects=objects, incomplete_categories=incomplete or [])


def test_instances_records_boxes_and_rejects(root: Path) -> None:
    items = read_instances(root)
    assert shape(items) == [
        ("unknown_category", "13"),
        ("record", "397133"),
        ("box_invalid", "14"),         # w = 0
        ("box_outside_image", "15"),   # x2 = 353.5 on a 352 px wide image
        ("missing_key", "17"),         # no bbox
        ("record", "37777"),
        ("bad_value", "18"),           # bbox of three numbers; image 252219 is left with nothing
    ]
    assert items[1] == instance_record(397133, [
        ObjectAnn(category="person", box=box(10, 20, 60, 50, 397133), ann_id="10"),
        ObjectAnn(category="dog", box=box(600, 400, 640, 427, 397133), ann_id="11"),
        ObjectAnn(category="person", box=box(0, 0, 640, 427, 397133), ann_id="12", iscrowd=True),
    ])
    assert items[5] == instance_record(37777, [
        ObjectAnn(category="chair", box=box(100, 100, 120.5, 110.25, 37777), ann_id="16"),
        ObjectAnn(category="dog", box=box(351.5, 0, 352.9, 5, 37777), ann_id="19"),  # within 1 px
    ], incomplete=["chair"])  # chairs 14, 15 and 17 were rejected: the image's chairs cannot be counted
    msgs = {x.record: x.message for x in items if isinstance(x, Reject)}
    assert msgs["13"] == (f"coco_instances: annotation 13 (image 397133) in {INSTANCES} has category_id 99, which "
                          "the file's 'categories' does not list; it is skipped; add the category to the file's "
                          "'categories' to keep it")
    assert "bbox [5.0, 5.0, 0.0, 10.0] with no area" in msgs["14"]
    assert "more than 1 px outside its 352x230 image" in msgs["15"]
    assert "has no 'bbox' key" in msgs["17"] and INSTANCES in msgs["17"]
    assert "expected [x, y, w, h] (four numbers)" in msgs["18"]


def test_instances_include_crowd_false_leaves_crowd_off(root: Path) -> None:
    items = read_instances(root, include_crowd=False)
    assert [o.ann_id for o in items[1].objects] == ["10", "11"]
    # the crowd of people is gone from the record, so people on 397133 can no longer be counted
    assert items[1].incomplete_categories == ["person"]
    assert shape(items) == shape(read_instances(root))


def test_instances_need_image_size(root: Path, tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        del d["images"][0]["height"]
    items = read_instances(root, write_variant(tmp_path, INSTANCES, edit))
    assert shape(items)[0] == ("missing_key", "397133")
    assert "has no 'height' key (boxes need the image size)" in items[0].message


def test_instances_negative_and_non_finite_boxes(root: Path, tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        d["annotations"][0]["bbox"] = [-0.5, -1.0, 10, 10]      # within 1 px: kept
        d["annotations"][1]["bbox"] = [-1.5, 0, 10, 10]         # outside
        d["annotations"][2]["bbox"] = [0, 0, 10, float("nan")]  # not finite
    items = read_instances(root, write_variant(tmp_path, INSTANCES, edit))
    assert shape(items)[:3] == [("box_outside_image", "11"), ("bad_value", "12"), ("unknown_category", "13")]
    assert items[3].objects == [ObjectAnn(category="person", box=box(-0.5, -1, 9.5, 9, 397133), ann_id="10")]


def test_instances_whole_file_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"has no 'categories' key.*is this a captions file\? Use kind coco_captions"):
        read_instances(root, CAPTIONS)
    bad = write_variant(tmp_path, INSTANCES, lambda d: d["categories"].append({"id": 5}))
    with pytest.raises(SourceError, match=r"categories\[3\] has no usable 'name'; every category needs"):
        read_instances(root, bad)


def test_instances_limit_and_splits(root: Path) -> None:
    assert shape(read_instances(root, limit=1)) == [("unknown_category", "13"), ("record", "397133")]
    assert read_instances(root, splits=["train"]) == []
    assert len([x for x in read_instances(root, splits=["val"]) if isinstance(x, AnnotationRecord)]) == 2


def test_instances_join_captions_for_grounded_captions(root: Path) -> None:
    items = read_instances(root, captions=CAPTIONS)
    rec = items[1]
    assert rec.id == "397133" and [o.ann_id for o in rec.objects] == ["10", "11", "12"]
    assert [(c.ann_id, c.text) for c in rec.captions] == [
        (c.ann_id, c.text) for c in read_captions(root)[1].captions]
    assert rec.captions  # the join added something


def test_instances_captions_must_be_a_captions_file(root: Path) -> None:
    bad = root / "not_captions.json"
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(SourceError, match=r"has no 'annotations' key.*given as `captions:`"):
        read_instances(root, captions=str(bad))
