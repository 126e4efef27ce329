"""The demo's bundled data: every file parses, images exist at their stated sizes, boxes lie inside
their images, ids agree across files, the scripts reproduce what is committed, and the README lists
every image."""

from __future__ import annotations

import importlib.util
import json
import pickle
import re
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
ANN = DEMO / "annotations"
IMAGES = DEMO / "images"

#: The 80 COCO categories (id -> name), for checking that the demo uses the real ids and names.
COCO_CATEGORIES = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear",
    24: "zebra", 25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase",
    34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat",
    40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle",
    46: "wine glass", 47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut",
    61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet",
    72: "tv", 73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave",
    79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book", 85: "clock", 86: "vase",
    87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every class: the refs pickle must hold plain containers only."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refs pickle refers to {module}.{name}; only plain containers are allowed")


def _load_module(name: str) -> ModuleType:
    """Import one of the demo's scripts (they are not in a package)."""
    mod_name = f"demo_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, DEMO / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


def _json(name: str) -> Any:
    with open(ANN / name, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def captions() -> dict[str, Any]:
    return _json("captions.json")


@pytest.fixture(scope="module")
def instances() -> dict[str, Any]:
    return _json("instances.json")


@pytest.fixture(scope="module")
def refs() -> list[dict[str, Any]]:
    with open(ANN / "refs(unc).p", "rb") as f:
        return _PlainUnpickler(f).load()


@pytest.fixture(scope="module")
def problems() -> dict[str, Any]:
    return _json("scienceqa/problems.json")


def _image_table(coco: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {img["id"]: img for img in coco["images"]}


# ---- images --------------------------------------------------------------------------------------


def test_images_are_the_twelve_listed_in_make_images(captions: dict[str, Any]) -> None:
    mk = _load_module("make_images")
    assert [(i.id, i.file_name) for i in mk.IMAGES] == [(img["id"], img["file_name"]) for img in captions["images"]]
    assert len(mk.IMAGES) == 12
    jpgs = sorted(p.name for p in IMAGES.glob("*.jpg"))
    assert jpgs == [f"{i:012d}.jpg" for i in range(1, 13)]


def test_every_image_exists_with_its_stated_size(captions: dict[str, Any]) -> None:
    for img in captions["images"]:
        with Image.open(IMAGES / img["file_name"]) as im:
            assert im.format == "JPEG"
            assert im.size == (img["width"], img["height"]), img["file_name"]
            assert max(im.size) == 320


def test_images_stay_small() -> None:
    files = [p for p in IMAGES.rglob("*") if p.is_file()]
    assert len(files) == 15
    assert sum(p.stat().st_size for p in files) < 400 * 1024


def test_make_images_reproduces_the_committed_files(tmp_path: Path) -> None:
    mk = _load_module("make_images")
    rows = mk.make(tmp_path)
    assert len(rows) == 15
    for rel, _loader, _orig, size in rows:
        with Image.open(tmp_path / rel) as new, Image.open(IMAGES / rel) as old:
            assert new.size == old.size == size, rel
            # Bytes match with the pinned Pillow; allow another libjpeg's rounding, not another picture.
            diff = np.abs(np.asarray(new, dtype=np.int16) - np.asarray(old, dtype=np.int16)).mean()
            assert diff < 1.0, rel


# ---- COCO ----------------------------------------------------------------------------------------


def test_captions_three_per_image_with_unique_ids(captions: dict[str, Any]) -> None:
    anns = captions["annotations"]
    assert len(anns) == 36
    assert len({a["id"] for a in anns}) == 36
    assert Counter(a["image_id"] for a in anns) == {i: 3 for i in range(1, 13)}
    assert all(set(a) == {"id", "image_id", "caption"} and a["caption"].strip() for a in anns)
    assert "categories" not in captions


def test_instances_share_images_and_use_real_coco_categories(captions: dict[str, Any],
                                                             instances: dict[str, Any]) -> None:
    assert instances["images"] == captions["images"]
    cats = {c["id"]: c["name"] for c in instances["categories"]}
    assert cats == {1: "person", 17: "cat", 19: "horse", 47: "cup", 50: "spoon", 85: "clock"}
    for cid, name in cats.items():
        assert COCO_CATEGORIES[cid] == name
    used = {a["category_id"] for a in instances["annotations"]}
    assert used == set(cats)


def test_every_box_lies_inside_its_image(instances: dict[str, Any]) -> None:
    imgs = _image_table(instances)
    anns = instances["annotations"]
    assert [a["id"] for a in anns] == list(range(1, 8))
    for a in anns:
        img = imgs[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0, a["id"]
        assert x >= 0 and y >= 0 and x + w <= img["width"] and y + h <= img["height"], a["id"]
        assert a["area"] == w * h and a["iscrowd"] == 0
    # One truthful spot check: the cup and the spoon on image 2.
    assert [(a["category_id"], a["bbox"]) for a in anns if a["image_id"] == 2] == [
        (47, [92.0, 9.0, 130.0, 156.0]), (50, [172.0, 35.0, 54.0, 139.0])]


# ---- VQAv2 ---------------------------------------------------------------------------------------


def test_vqav2_files_join_on_question_id(captions: dict[str, Any]) -> None:
    qfile, afile = _json("vqav2_questions.json"), _json("vqav2_annotations.json")
    assert (qfile["task_type"], qfile["data_type"], qfile["data_subtype"]) == ("Open-Ended", "mscoco", "demo")
    assert (afile["data_type"], afile["data_subtype"]) == ("mscoco", "demo")
    assert "info" in qfile and "info" in afile
    questions = {q["question_id"]: q for q in qfile["questions"]}
    annotations = {a["question_id"]: a for a in afile["annotations"]}
    assert len(questions) == len(qfile["questions"]) == 29
    assert set(questions) == set(annotations)
    image_ids = {img["id"] for img in captions["images"]}
    per_image = Counter(q["image_id"] for q in questions.values())
    assert set(per_image) == image_ids and set(per_image.values()) <= {2, 3}
    for qid, q in questions.items():
        a = annotations[qid]
        assert a["image_id"] == q["image_id"] and qid // 1000 == q["image_id"]
        assert a["answer_type"] in {"yes/no", "number", "other"}
        assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
        assert all(x["answer_confidence"] in {"yes", "maybe", "no"} for x in a["answers"])
        assert Counter(x["answer"] for x in a["answers"]).most_common(1)[0][0] == a["multiple_choice_answer"]
        if a["answer_type"] == "yes/no":
            assert a["multiple_choice_answer"] in {"yes", "no"}
        if a["answer_type"] == "number":
            assert a["multiple_choice_answer"].isdigit()
    assert annotations[6000]["multiple_choice_answer"] == "24"  # the coins: four rows of six


def test_vqav2_image_pattern_names_the_demo_files(captions: dict[str, Any]) -> None:
    names = {img["id"]: img["file_name"] for img in captions["images"]}
    for q in _json("vqav2_questions.json")["questions"]:
        assert "{image_id:012d}.jpg".format(image_id=q["image_id"]) == names[q["image_id"]]


# ---- RefCOCO -------------------------------------------------------------------------------------


def test_refs_point_at_instances(refs: list[dict[str, Any]], instances: dict[str, Any]) -> None:
    anns = {a["id"]: a for a in instances["annotations"]}
    assert [r["ref_id"] for r in refs] == list(range(7))
    assert sorted(r["ann_id"] for r in refs) == sorted(anns)
    sent_ids = [s["sent_id"] for r in refs for s in r["sentences"]]
    assert sent_ids == list(range(14))
    for r in refs:
        assert set(r) == {"sent_ids", "file_name", "ann_id", "ref_id", "image_id", "split", "sentences",
                          "category_id"}
        ann = anns[r["ann_id"]]
        assert (r["image_id"], r["category_id"], r["split"]) == (ann["image_id"], ann["category_id"], "train")
        assert r["sent_ids"] == [s["sent_id"] for s in r["sentences"]]
        for s in r["sentences"]:
            assert s["tokens"] == re.findall(r"[a-z0-9]+", s["raw"].lower())
            assert s["sent"] == " ".join(s["tokens"])
    assert refs[0]["sentences"][1] == {"tokens": ["the", "smiling", "astronaut"], "raw": "THE SMILING ASTRONAUT",
                                       "sent_id": 1, "sent": "the smiling astronaut"}


def test_refs_pickle_is_what_make_refs_writes(refs: list[dict[str, Any]], tmp_path: Path) -> None:
    mk = _load_module("make_refs")
    assert refs == mk.build_refs()
    out = tmp_path / "refs.p"
    mk.main(["--out", str(out)])
    assert out.read_bytes() == (ANN / "refs(unc).p").read_bytes()
    assert out.read_bytes()[:2] == b"\x80\x02"  # pickle protocol 2, as RefCOCO's files


# ---- ScienceQA -----------------------------------------------------------------------------------


def test_scienceqa_problems_and_splits(problems: dict[str, Any]) -> None:
    splits = _json("scienceqa/pid_splits.json")
    assert sorted(problems) == ["1", "2", "3", "4", "5"]
    keys = {"question", "choices", "answer", "hint", "image", "task", "grade", "subject", "topic", "category",
            "skill", "lecture", "solution", "split"}
    for pid, p in problems.items():
        assert set(p) == keys, pid
        assert 0 <= p["answer"] < len(p["choices"]) and len(set(p["choices"])) == len(p["choices"])
        assert pid in splits[p["split"]]
    for name in ("train", "val", "test"):
        assert sorted(splits[name]) == sorted(pid for pid, p in problems.items() if p["split"] == name)
    assert sorted(splits["trainval"]) == sorted(splits["train"] + splits["val"])
    with_image = {pid for pid, p in problems.items() if p["image"] is not None}
    assert with_image == {"1", "2", "3"}


def test_scienceqa_images_exist_where_scienceqa_puts_them(problems: dict[str, Any]) -> None:
    found = sorted(p.relative_to(IMAGES / "scienceqa").as_posix() for p in (IMAGES / "scienceqa").rglob("*.png"))
    expected = sorted(f"{p['split']}/{pid}/{p['image']}" for pid, p in problems.items() if p["image"])
    assert found == expected == ["train/1/image.png", "train/2/image.png", "val/3/image.png"]
    for rel in found:
        with Image.open(IMAGES / "scienceqa" / rel) as im:
            assert im.format == "PNG" and max(im.size) == 160


# ---- README and recipe ---------------------------------------------------------------------------


def test_readme_lists_every_image() -> None:
    readme = (DEMO / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"`((?:scienceqa/[a-z]+/\d+/image\.png)|(?:\d{12}\.jpg))`", readme))
    on_disk = {p.relative_to(IMAGES).as_posix() for p in IMAGES.rglob("*") if p.is_file()}
    assert listed == on_disk
    mk = _load_module("make_images")
    for item in mk.IMAGES:
        assert f"| `{item.file_name}` | {item.id} | `{item.loader}()` |" in readme


def test_recipe_reads_every_file_without_rejects() -> None:
    from schemas.recipe import load_recipe
    from schemas.reject import Reject
    from sources.registry import get_source

    recipe = load_recipe(DEMO / "recipe.yaml")
    assert [s.kind for s in recipe.sources] == ["coco_captions", "coco_instances", "vqav2", "refcoco", "scienceqa",
                                                "alpaca"]
    counts = {}
    for opts in recipe.sources:
        items = list(get_source(opts.kind)(opts, recipe.images).read())
        rejects = [i for i in items if isinstance(i, Reject)]
        assert rejects == [], [r.message for r in rejects]
        counts[opts.kind] = len(items)
    assert counts == {"coco_captions": 12, "coco_instances": 6, "vqav2": 12, "refcoco": 6, "scienceqa": 5,
                      "alpaca": 13}
