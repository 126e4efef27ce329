"""GQA, TextVQA and OCR-VQA readers, and the registry entries of the COCO/VQA family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from schemas.image import ImageRef
from schemas.record import QA, AnnotationRecord
from schemas.recipe import parse_recipe
from schemas.reject import REASONS, Reject
from sources.base import Source, SourceError
from sources.coco_captions import CocoCaptionsSource
from sources.coco_instances import CocoInstancesSource
from sources.gqa import GQASource
from sources.ocrvqa import OCRVQASource
from sources.registry import REGISTRY, get_source
from sources.textvqa import TextVQASource
from sources.vqav2 import OKVQASource, VQAv2Source

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources"
GQA = str(ASSETS / "gqa" / "val_balanced_questions.json")
TEXTVQA = str(ASSETS / "textvqa" / "TextVQA_0.5.1_val.json")
TEXTVQA_TEST = str(ASSETS / "textvqa" / "TextVQA_0.5.1_test.json")
OCRVQA = str(ASSETS / "ocrvqa" / "dataset.json")
IMAGES = ["2370799", "2400103", "n336443", "003a8ae2ef43b901", "0054c91397f2fe05", "00685bc495504d61",
          "fe5f0d8a1b1f1a04", "1590275", "0394726", "1579125", "0842329"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in IMAGES:
        Image.new("RGB", (4, 4), (len(name) * 9, 20, 30)).save(tmp_path / f"{name}.jpg")
    return tmp_path


def read(cls: type[Source], root: Path, path: str, **kw: Any) -> list:
    opts = cls.Options.model_validate({"kind": cls.kind, "path": path, **kw})
    return list(cls(opts, root).read())


def shape(items: list) -> list[tuple[Any, ...]]:
    return [(x.reason, x.record) if isinstance(x, Reject) else ("record", x.id) for x in items]


def check_messages(items: list, path: str) -> None:
    for r in items:
        if isinstance(r, Reject):
            assert r.reason in REASONS and r.file == path and path in r.message and r.record in r.message


def _write(tmp_path: Path, data: Any, name: str = "x.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


# ---- GQA ------------------------------------------------------------------------------------


def test_gqa_records_grouped_by_image(root: Path) -> None:
    items = read(GQASource, root, GQA)
    assert shape(items) == [("record", "2370799"), ("record", "2400103"), ("empty_answer", "05451384"),
                            ("missing_key", "0123")]
    assert items[0] == AnnotationRecord(
        id="2370799", source="gqa", source_kind="gqa", file=GQA, image=ImageRef(path="2370799.jpg"), split="val",
        qas=[QA(question="Is it overcast?", answer="no", qid="201307251", answers=["no"], answer_type="verify"),
             QA(question="Do the shorts have dark color?", answer="yes", qid="20968379", answers=["yes"],
                answer_type="verify")])
    assert items[1].qas == [QA(question="Who is wearing the dress?", answer="woman", qid="201640614",
                               answers=["woman"], answer_type="query")]
    assert items[2].message == (f"gqa: question 05451384 in {GQA} has an empty 'answer'; it is skipped (an empty "
                                "text cannot be trained on)")
    assert "has no 'imageId' key" in items[3].message
    check_messages(items, GQA)


def test_gqa_full_answer_limit_splits(root: Path) -> None:
    items = read(GQASource, root, GQA, use_full_answer=True, limit=1)
    assert shape(items) == [("record", "2370799")]
    assert [q.answer for q in items[0].qas] == ["No, it is clear.", "Yes, the shorts are dark."]
    # With full answers image n336443's question is usable: its question's <image> is escaped.
    n3 = [x for x in read(GQASource, root, GQA, use_full_answer=True) if getattr(x, "id", None) == "n336443"]
    assert n3[0].qas[0].question == "What is the &lt;image&gt; on the wall?"
    assert read(GQASource, root, GQA, splits=["testdev"]) == []
    assert read(GQASource, root, GQA, splits=["testdev"], split="testdev")[0].split == "testdev"


def test_gqa_missing_image(root: Path) -> None:
    (root / "2370799.jpg").unlink()
    items = read(GQASource, root, GQA)
    assert shape(items)[0] == ("image_missing", "2370799")
    assert items[0].lineage.ann_ids == ["201307251", "20968379"]


def test_gqa_wrong_files(root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"has a top-level 'data' list: it is not a GQA questions file \(is it a "
                                          r"textvqa file\? use kind textvqa"):
        read(GQASource, root, TEXTVQA)
    with pytest.raises(SourceError, match=r"the first entry has neither 'imageId' nor 'question'.*is this a GQA "
                                          r"questions file\?"):
        read(GQASource, root, OCRVQA)
    with pytest.raises(SourceError, match=r"holds a JSON list, expected an object"):
        read(GQASource, root, _write(tmp_path, []))


# ---- TextVQA --------------------------------------------------------------------------------


def test_textvqa_records_majority_answer_and_size(root: Path) -> None:
    items = read(TextVQASource, root, TEXTVQA)
    assert shape(items) == [("record", "003a8ae2ef43b901"), ("empty_question", "34606"),
                            ("record", "0054c91397f2fe05"), ("empty_answer", "34605")]
    assert items[0] == AnnotationRecord(
        id="003a8ae2ef43b901", source="textvqa", source_kind="textvqa", file=TEXTVQA,
        image=ImageRef(path="003a8ae2ef43b901.jpg", width=1024, height=664), split="val",
        qas=[QA(question="what is the brand of this camera?", answer="dakota", qid="34602", kind="ocr",
                answers=["nous les gosses", "dakota", "clos culombu", "dakota digital", "dakota", "dakota",
                         "dakota digital", "dakota digital", "dakota", "dakota"]),
             QA(question="what does the small white text spell?", answer="copenhagen", qid="34603", kind="ocr",
                answers=["copenhagen"] * 5 + ["thursday"] + ["copenhagen"] * 4)])
    # "22" and "2" both appear 4 times: "22" is seen first.
    assert items[2].qas[0].answer == "22" and items[2].image.width == 500
    assert "has only empty answers" in items[3].message
    check_messages(items, TEXTVQA)


def test_textvqa_test_split_has_no_answers(root: Path) -> None:
    items = read(TextVQASource, root, TEXTVQA_TEST)
    assert shape(items) == [("empty_answer", "39000")]
    assert items[0].message == (
        f"textvqa: question 39000 in {TEXTVQA_TEST} has no answers (TextVQA's test split has no answers; use the "
        "train or val file for training); it is skipped (an empty text cannot be trained on)")
    assert read(TextVQASource, root, TEXTVQA_TEST, splits=["train", "val"]) == []


def test_textvqa_limit_splits_and_wrong_file(root: Path, tmp_path: Path) -> None:
    assert shape(read(TextVQASource, root, TEXTVQA, limit=1)) == [("record", "003a8ae2ef43b901")]
    assert read(TextVQASource, root, TEXTVQA, splits=["train"]) == []
    q = _write(tmp_path, {"questions": []})
    with pytest.raises(SourceError, match=r"has no 'data' key.*looks like a VQAv2 questions file: use kind vqav2"):
        read(TextVQASource, root, q)
    bad_size = _write(tmp_path, {"data": [{"question_id": 1, "question": "what?", "image_id": "0054c91397f2fe05",
                                           "image_width": "wide", "image_height": 3, "answers": ["a"] * 10}]})
    items = read(TextVQASource, root, bad_size)
    assert shape(items) == [("bad_value", "0054c91397f2fe05")]
    assert "has 'image_width' = 'wide', expected a positive integer" in items[0].message


# ---- OCR-VQA --------------------------------------------------------------------------------


def test_ocrvqa_books(root: Path) -> None:
    items = read(OCRVQASource, root, OCRVQA)
    assert shape(items) == [("record", "1590275"), ("empty_answer", "0394726_0"), ("record", "0394726"),
                            ("bad_value", "1579125"), ("record", "0842329")]
    assert items[0] == AnnotationRecord(
        id="1590275", source="ocrvqa", source_kind="ocrvqa", file=OCRVQA, image=ImageRef(path="1590275.jpg"),
        split="train", qas=[
            QA(question="Who wrote this book?", answer="Kathleen Kennedy", qid="1590275_0",
               answers=["Kathleen Kennedy"], kind="ocr"),
            QA(question="What is the title of this book?", answer="The Little Book of Knots", qid="1590275_1",
               answers=["The Little Book of Knots"], kind="ocr"),
            QA(question="What is the genre of this book?", answer="Crafts, Hobbies & Home", qid="1590275_2",
               answers=["Crafts, Hobbies & Home"], kind="ocr"),
            QA(question="Is this a comedy book?", answer="No", qid="1590275_3", answers=["No"], kind="ocr")])
    assert items[2].split == "val" and items[2].qas == [
        QA(question="What year is on the cover?", answer="1998", qid="0394726_1", answers=["1998"], kind="ocr")]
    assert items[4].split == "test" and items[4].qas[0].answer == "Words of &lt;image&gt; Light"
    assert items[3].message == (f"ocrvqa: book 1579125 in {OCRVQA} has 2 questions but 1 answers; the two lists "
                                "must be parallel (one answer per question); it is skipped; fix it in the file to "
                                "keep it")
    check_messages(items, OCRVQA)


def test_ocrvqa_splits_limit_and_bad_split(root: Path, tmp_path: Path) -> None:
    assert shape(read(OCRVQASource, root, OCRVQA, splits=["test"])) == [("bad_value", "1579125"),
                                                                        ("record", "0842329")]
    assert shape(read(OCRVQASource, root, OCRVQA, splits=["val"], limit=1)) == [("empty_answer", "0394726_0"),
                                                                               ("record", "0394726")]
    assert shape(read(OCRVQASource, root, OCRVQA, limit=1)) == [("record", "1590275")]
    bad = _write(tmp_path, {"1590275": {"questions": ["Who?"], "answers": ["Me"], "split": 7},
                            "0394726": {"answers": ["x"], "split": 1}})
    items = read(OCRVQASource, root, bad)
    assert shape(items) == [("bad_value", "1590275"), ("missing_key", "0394726")]
    assert "has split 7, expected 1 (train), 2 (val) or 3 (test)" in items[0].message
    assert "has no 'questions' key" in items[1].message


def test_ocrvqa_wrong_file(root: Path) -> None:
    with pytest.raises(SourceError, match=r"the first entry has no 'questions' or 'answers' \(found: annotations, "
                                          r"answer, .*imageId.*is this OCR-VQA's dataset.json\?"):
        read(OCRVQASource, root, GQA)


# ---- registry -------------------------------------------------------------------------------


def test_registry_has_the_coco_vqa_family() -> None:
    expected = {"coco_captions": CocoCaptionsSource, "coco_instances": CocoInstancesSource, "vqav2": VQAv2Source,
                "okvqa": OKVQASource, "gqa": GQASource, "textvqa": TextVQASource, "ocrvqa": OCRVQASource}
    for kind, cls in expected.items():
        assert REGISTRY[kind] is cls and get_source(kind) is cls and cls.kind == kind
    assert VQAv2Source.Options.path_keys == ("questions", "annotations")
    assert OKVQASource.Options.path_keys == ("questions", "annotations")
    for kind in ("coco_captions", "gqa", "textvqa", "ocrvqa"):
        assert REGISTRY[kind].Options.path_keys == ("path",)
    assert REGISTRY["coco_instances"].Options.path_keys == ("path", "captions")


def test_recipe_resolves_the_vqa_file_keys(tmp_path: Path) -> None:
    recipe = parse_recipe({"images": str(tmp_path), "sources": [
        {"kind": "okvqa", "questions": "vqa/OpenEnded_mscoco_val2014_questions.json",
         "annotations": "vqa/mscoco_val2014_annotations.json", "limit": 5},
        {"kind": "gqa", "path": "gqa/val_balanced_questions.json", "use_full_answer": True}]}, base_dir=ASSETS)
    ok, gqa = recipe.sources
    assert ok.questions == str(ASSETS / "vqa" / "OpenEnded_mscoco_val2014_questions.json") and ok.limit == 5
    assert gqa.path == GQA and gqa.use_full_answer is True
