"""VQAv2 and OK-VQA readers: the question/annotation join, answers, rejects and file errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from schemas.image import ImageRef
from schemas.record import QA, AnnotationRecord
from schemas.reject import REASONS, Reject
from sources.base import SourceError
from sources.vqav2 import OKVQASource, VQAv2Source

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources" / "vqa"
QUESTIONS = str(ASSETS / "v2_OpenEnded_mscoco_val2014_questions.json")
ANNOTATIONS = str(ASSETS / "v2_mscoco_val2014_annotations.json")
OK_QUESTIONS = str(ASSETS / "OpenEnded_mscoco_val2014_questions.json")
OK_ANNOTATIONS = str(ASSETS / "mscoco_val2014_annotations.json")
IMAGES = [262148, 393225, 393226, 393227, 297147, 195024]


def coco(i: int, subtype: str = "val2014") -> str:
    return f"COCO_{subtype}_{i:012d}.jpg"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for i in IMAGES:
        Image.new("RGB", (4, 4), (i % 255, 10, 10)).save(tmp_path / coco(i))
    return tmp_path


def read(root: Path, cls: type[VQAv2Source] = VQAv2Source, questions: str = QUESTIONS,
         annotations: str = ANNOTATIONS, **kw: Any) -> list:
    opts = cls.Options.model_validate({"kind": cls.kind, "questions": questions, "annotations": annotations, **kw})
    return list(cls(opts, root).read())


def shape(items: list) -> list[tuple[str, ...]]:
    return [(x.reason, x.record) if isinstance(x, Reject) else ("record", x.id) for x in items]


def record(i: int, qas: list[QA], kind: str = "vqav2", file: str = ANNOTATIONS) -> AnnotationRecord:
    return AnnotationRecord(id=str(i), source=kind, source_kind=kind, file=file, image=ImageRef(path=coco(i)),
                            split="val", qas=qas)


def test_vqav2_records_join_and_rejects(root: Path) -> None:
    items = read(root)
    assert shape(items) == [
        ("empty_question", "262148002"),
        ("record", "262148"),
        ("record", "393225"),
        ("missing_key", "393226001"),   # question without an annotation
        ("record", "393226"),
        ("empty_answer", "393227000"),  # empty multiple_choice_answer; image 393227 gets no record
        ("missing_key", "5"),           # question without image_id, reported after the records
        ("missing_key", "999"),         # annotation that no question uses
    ]
    assert items[1] == record(262148, [
        QA(question="Where is he looking?", answer="down", qid="262148000", answer_type="other",
           answers=["down", "down", "at table", "skateboard", "down", "table", "down", "down", "down", "down"]),
        QA(question="What are the people in the background doing?", answer="watching", qid="262148001",
           answer_type="other", answers=["spectating"] + ["watching"] * 9),
    ])
    assert items[2] == record(393225, [QA(question="Is the bowl made of wood?", answer="yes", qid="393225000",
                                          answer_type="yes/no", answers=["yes"] * 9 + ["no"])])
    assert items[4].qas == [QA(question="What does the &lt;image&gt; sign say?", answer="&lt;image&gt; here",
                               qid="393226000", answer_type="other", answers=["&lt;image&gt; here"] * 10)]
    rejects = {x.record: x for x in items if isinstance(x, Reject)}
    for r in rejects.values():
        assert r.reason in REASONS and r.record in r.message and r.file in r.message
    assert rejects["393226001"].file == QUESTIONS
    assert rejects["393226001"].message == (
        f"vqav2: question 393226001 in {QUESTIONS} has no annotation with this question_id in {ANNOTATIONS}; it is "
        "skipped; are the questions and annotations files of the same split?")
    assert rejects["393227000"].file == ANNOTATIONS
    assert rejects["393227000"].message == (
        f"vqav2: annotation of question 393227000 in {ANNOTATIONS} has an empty 'multiple_choice_answer'; it is "
        "skipped (an empty text cannot be trained on)")
    assert rejects["262148002"].message.startswith(f"vqav2: question 262148002 in {QUESTIONS} has an empty")
    assert "has no 'image_id' key" in rejects["5"].message and rejects["5"].file == QUESTIONS
    assert f"has no question in {QUESTIONS}" in rejects["999"].message and rejects["999"].file == ANNOTATIONS


def test_okvqa_most_frequent_answer_ties_go_to_first(root: Path) -> None:
    items = read(root, OKVQASource, OK_QUESTIONS, OK_ANNOTATIONS)
    assert shape(items) == [("empty_answer", "2971476"), ("record", "297147"), ("record", "195024")]
    assert items[1] == record(297147, [QA(
        question="What sport can you use this for?", answer="race", qid="2971475", answer_type="other",
        answers=["race"] * 6 + ["motocross"] * 2 + ["ride"] * 2)], kind="okvqa", file=OK_ANNOTATIONS)
    # cat, dog and kitten... cat and dog both appear 3 times: cat comes first.
    assert items[2].qas[0].answer == "cat"
    assert items[2].qas[0].answers == ["cat", "dog", "dog", "cat", "kitten", "kitten", "cat", "dog", "", ""]
    assert "has only empty answers" in items[0].message and OK_ANNOTATIONS in items[0].message


def test_okvqa_file_read_as_vqav2_points_to_okvqa(root: Path) -> None:
    items = read(root, VQAv2Source, OK_QUESTIONS, OK_ANNOTATIONS)
    assert shape(items) == [("missing_key", "2971475"), ("missing_key", "2971476"), ("missing_key", "1950245")]
    assert items[0].message.endswith("OK-VQA annotations have no multiple_choice_answer: use kind okvqa")


def test_missing_image_and_pattern_options(root: Path, tmp_path: Path) -> None:
    (root / coco(262148)).unlink()
    items = read(root)
    assert shape(items)[0] == ("image_missing", "262148")
    assert items[0].lineage.ann_ids == ["262148000", "262148001", "262148002"]
    assert coco(262148) in items[0].message and items[0].file == QUESTIONS

    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (4, 4)).save(flat / "393225.jpg")
    # limit counts images picked by the scan: the first (262148) is missing here and still counts
    assert shape(read(flat, image_pattern="{image_id}.jpg", limit=1, splits=["val"])) == [("image_missing", "262148")]
    items = read(flat, image_pattern="{image_id}.jpg", limit=2, splits=["val"])
    assert [x.id for x in items if isinstance(x, AnnotationRecord)] == ["393225"]
    assert shape(items)[0] == ("image_missing", "262148")

    (root / "test2015").mkdir()
    Image.new("RGB", (4, 4)).save(root / "test2015" / coco(262148, "test2015"))
    items = read(root, data_subtype="test2015", image_prefix="test2015", limit=1)
    assert shape(items) == [("empty_question", "262148002"), ("record", "262148")]
    assert items[1].image == ImageRef(path=f"test2015/{coco(262148, 'test2015')}") and items[1].split == "test"


def test_image_pattern_is_checked_when_the_recipe_is_read() -> None:
    with pytest.raises(ValidationError, match=r"uses unknown field\(s\) \['imageId'\]"):
        VQAv2Source.Options(kind="vqav2", questions=QUESTIONS, annotations=ANNOTATIONS, image_pattern="{imageId}.jpg")


def test_limit_and_splits(root: Path) -> None:
    assert shape(read(root, limit=2)) == [("empty_question", "262148002"), ("record", "262148"),
                                          ("record", "393225")]
    assert read(root, splits=["train"]) == []
    train = read(root, splits=["train"], split="train")
    assert [(x.id, x.split) for x in train if isinstance(x, AnnotationRecord)] == [
        ("262148", "train"), ("393225", "train"), ("393226", "train")]


def _write(tmp_path: Path, name: str, data: Any) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


def test_whole_file_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"annotations file with an 'annotations' list.*; is this a questions "
                                          r"file\? Swap `questions:` and `annotations:`"):
        read(root, questions=QUESTIONS, annotations=QUESTIONS)
    with pytest.raises(SourceError, match=r"has no 'questions' key.*is this an annotations file\? Swap"):
        read(root, questions=ANNOTATIONS, annotations=ANNOTATIONS)
    with pytest.raises(SourceError, match=r"vqav2: file not found: .*missing.json; check the path"):
        read(root, annotations=str(tmp_path / "missing.json"))
    no_subtype = _write(tmp_path, "q.json", {"questions": []})
    no_subtype_a = _write(tmp_path, "a.json", {"annotations": []})
    with pytest.raises(SourceError, match=r"has a top-level 'data_subtype', and image_pattern .* needs it; set "
                                          r"`data_subtype:`"):
        read(root, questions=no_subtype, annotations=no_subtype_a)
    assert read(root, questions=no_subtype, annotations=no_subtype_a, data_subtype="val2014") == []
    with pytest.raises(SourceError, match=r"holds a JSON list, expected an object"):
        read(root, questions=_write(tmp_path, "l.json", []))
    with pytest.raises(SourceError, match=r"'questions' is a JSON dict, expected a list"):
        read(root, questions=_write(tmp_path, "d.json", {"questions": {}}))


def test_malformed_rows_become_rejects(root: Path, tmp_path: Path) -> None:
    q = _write(tmp_path, "q.json", {"data_subtype": "val2014", "questions": [
        {"image_id": 393225, "question": "Is the bowl made of wood?", "question_id": 393225000},
        {"image_id": 262148, "question": "Where is he looking?", "question_id": 262148000},
        "not a question",
        {"image_id": [1], "question": "?", "question_id": 1},
    ]})
    a = _write(tmp_path, "a.json", {"annotations": [
        {"question_id": 393225000, "image_id": 262148, "multiple_choice_answer": "yes"},
        {"question_id": 262148000, "image_id": 262148, "multiple_choice_answer": "down", "answers": [{"x": 1}]},
        {"image_id": 1},
    ]})
    items = read(root, questions=q, annotations=a)
    assert shape(items) == [("bad_value", "393225000"), ("bad_value", "262148000"), ("bad_value", "questions[2]"),
                            ("bad_value", "1"), ("missing_key", "annotations[2]")]
    assert "is about image 393225 but its annotation is on image 262148" in items[0].message
    assert "without a text 'answer'" in items[1].message
    assert "has 'image_id' = [1], expected an integer or a string id" in items[3].message


def test_typed_read_and_careful_read_agree(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The typed msgspec read gives exactly what the careful orjson read gives; a file that does not fit
    the typed shape (here a non-text answer) is read the careful way."""
    import sources.vqav2 as vqav2

    q = _write(tmp_path, "q.json", {"data_subtype": "val2014", "questions": [
        {"image_id": 262148, "question": "Where is he looking?", "question_id": 262148000},
        {"image_id": 262148, "question": "Is it sunny?", "question_id": 262148001},
        {"image_id": 393225, "question": "What is it?", "question_id": 393225000},
    ]})
    a = _write(tmp_path, "a.json", {"annotations": [
        {"question_id": 262148000, "image_id": 262148, "multiple_choice_answer": "down",
         "answers": [{"answer": "down"}, {"answer": 5}]},
        {"question_id": 262148001, "image_id": 262148, "multiple_choice_answer": "yes", "answer_type": None,
         "answers": [{"answer": " Yes <image>", "answer_id": 1}, {"answer": "no"}]},
        {"question_id": 393225000, "multiple_choice_answer": "a bowl"},
    ]})
    cases = [(VQAv2Source, QUESTIONS, ANNOTATIONS), (OKVQASource, OK_QUESTIONS, OK_ANNOTATIONS),
             (VQAv2Source, q, a), (OKVQASource, q, a)]
    assert vqav2._load_annotations_fast(ANNOTATIONS) is not None  # the fixtures take the typed path
    assert vqav2._load_annotations_fast(a) is None  # a non-text answer: the careful path
    for cls, qf, af in cases:
        typed = read(root, cls, questions=qf, annotations=af)
        with monkeypatch.context() as m:
            m.setattr(vqav2, "_load_annotations_fast", lambda path: None)
            careful = read(root, cls, questions=qf, annotations=af)
        assert typed == careful
    items = read(root, questions=q, annotations=a)
    assert shape(items) == [("bad_value", "262148000"), ("record", "262148"), ("record", "393225")]
    assert "without a text 'answer'" in items[0].message
    assert items[1].qas[0].answers == ["Yes &lt;image&gt;", "no"] and items[1].qas[0].answer_type is None
