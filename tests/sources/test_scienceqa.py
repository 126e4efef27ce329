"""ScienceQA reader: exact multiple-choice records, text-only problems, split selection and rejects."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from schemas.image import ImageRef
from schemas.record import QA, AnnotationRecord
from schemas.reject import REASONS, Reject
from sources.base import SourceError
from sources.scienceqa import ScienceQAOptions, ScienceQASource

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources" / "scienceqa"
PROBLEMS = str(ASSETS / "problems.json")
PID_SPLITS = str(ASSETS / "pid_splits.json")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for rel in ("images/train/1", "images/val/3"):  # problem 4's image (test) is deliberately absent
        (tmp_path / rel).mkdir(parents=True)
        Image.new("RGB", (12, 8), (200, 30, 30)).save(tmp_path / rel / "image.png")
    return tmp_path


def _read(root: Path, **kw: object) -> list:
    opts = ScienceQAOptions(kind="scienceqa", path=kw.pop("path", PROBLEMS), image_prefix="images", **kw)
    return list(ScienceQASource(opts, root).read())


REC1 = AnnotationRecord(
    id="1", source="scienceqa", source_kind="scienceqa", file=PROBLEMS, split="train",
    image=ImageRef(path="images/train/1/image.png"),
    qas=[QA(kind="mc", question="Which of these states is farthest north?",
            choices=["West Virginia", "Louisiana", "Arizona", "Oklahoma"], answer_index=0, answer="West Virginia",
            context=None, qid="1")])
REC2 = AnnotationRecord(
    id="2", source="scienceqa", source_kind="scienceqa", file=PROBLEMS, split="train", image=None,
    qas=[QA(kind="mc", question="Which word would you find on a dictionary page with the guide words helping - hunter?",
            choices=["hospital", "hardly"], answer_index=0, answer="hospital",
            context="A token &lt;image&gt; appears here.", qid="2")])
REC9 = AnnotationRecord(
    id="9", source="scienceqa", source_kind="scienceqa", file=PROBLEMS, split="val", image=None,
    qas=[QA(kind="mc", question="Which tense does the sentence use?",
            choices=["past tense", "future tense", "present tense"], answer_index=2, answer="present tense",
            context="Mona runs to the bus stop.", qid="9")])


def test_all_records_and_rejects_in_file_order(root: Path) -> None:
    items = _read(root)
    assert [x for x in items if isinstance(x, AnnotationRecord)] == [REC1, REC2, REC9]
    rejects = [x for x in items if isinstance(x, Reject)]
    assert [(r.reason, r.record) for r in rejects] == [
        ("bad_value", "3"), ("image_missing", "4"), ("missing_key", "5"), ("empty_question", "6"),
        ("empty_answer", "7"), ("bad_value", "8")]
    assert all(r.reason in REASONS for r in rejects)
    assert [r.message for r in rejects] == [
        f"scienceqa: problem 3 in {PROBLEMS} has answer 5, which is not an index into its 2 choices (0..1)",
        f"scienceqa: image 'test/4/image.png' of record 4 in {PROBLEMS} not found at "
        f"{os.path.join(str(root), 'images', 'test/4/image.png')}; check `images` (the image root) and this "
        "source's `image_prefix`",
        f"scienceqa: problem 5 in {PROBLEMS} has no 'choices' key; a problem needs question, choices, answer, split",
        f"scienceqa: problem 6 in {PROBLEMS} has an empty question (got '   ')",
        f"scienceqa: problem 7 in {PROBLEMS}: the right choice (index 0) is empty",
        f"scienceqa: problem 8 in {PROBLEMS} has choices 'solid'; expected a non-empty list of strings",
    ]
    # Lecture and solution are not carried: the record has no field for them.
    assert "lecture" not in json.dumps(REC1.model_dump())


def test_splits_by_field_and_by_pid_splits(root: Path) -> None:
    assert [x.id for x in _read(root, splits=["train"]) if isinstance(x, AnnotationRecord)] == ["1", "2"]
    assert [(x.reason, x.record) for x in _read(root, splits=["train"]) if isinstance(x, Reject)] == [
        ("empty_question", "6")]
    assert _read(root, pid_splits=PID_SPLITS, splits=["minival"]) == [REC9]
    # The record keeps the problem's own split (the image folder), whatever list selected it.
    assert _read(root, pid_splits=PID_SPLITS, splits=["minival"])[0].split == "val"


def test_limit_counts_records(root: Path) -> None:
    items = _read(root, limit=2)
    assert [x for x in items if isinstance(x, AnnotationRecord)] == [REC1, REC2]
    assert not any(isinstance(x, Reject) for x in items)


def test_whole_file_problems(root: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"scienceqa: file not found: .*missing\.json; check the path"):
        _read(root, path=str(tmp_path / "missing.json"))
    with pytest.raises(SourceError, match=r"pid_splits\.json maps names to lists, like pid_splits\.json; `path` "
                                          r"must be problems\.json"):
        _read(root, path=PID_SPLITS)
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2]")
    with pytest.raises(SourceError, match=r"list\.json holds a JSON list; expected ScienceQA's problems\.json"):
        _read(root, path=str(lst))
    broken = tmp_path / "broken.json"
    broken.write_text('{"1": {')
    with pytest.raises(SourceError, match=r"broken\.json is not valid JSON \(line 1, column 8"):
        _read(root, path=str(broken))
    with pytest.raises(SourceError, match=r"pid_splits\.json has no split\(s\) 'dev'; it lists minitest, minival, "
                                          r"test, train, trainval, val\. Fix `splits`"):
        _read(root, pid_splits=PID_SPLITS, splits=["dev"])
    with pytest.raises(SourceError, match=r"problems\.json is not a pid_splits file"):
        _read(root, pid_splits=PROBLEMS, splits=["val"])
