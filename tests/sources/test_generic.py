"""Generic table reader (JSON / JSONL / CSV with a `columns` mapping): exact records, rejects, recipe checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError

from schemas.image import ImageRef
from schemas.recipe import RecipeError, parse_recipe
from schemas.record import QA, AnnotationRecord, Caption
from schemas.reject import REASONS, Reject
from sources.base import SourceError
from sources.generic import GenericOptions, GenericSource
from sources.registry import REGISTRY, get_source

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources" / "generic"
CSV = str(ASSETS / "qa.csv")
JSONL = str(ASSETS / "rows.jsonl")
WRAPPED = str(ASSETS / "wrapped.json")
CSV_COLUMNS = {"id": "uid", "image": "file", "question": "question", "answer": "answer", "choices": "options",
               "split": "split"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (8, 8), (250, 200, 0)).save(tmp_path / name)
    return tmp_path


def _read(root: Path, path: str, columns: dict[str, str], **kw: object) -> list:
    opts = GenericOptions(kind="generic", path=path, columns=columns, **kw)
    return list(GenericSource(opts, root).read())


def _rec(rid: str, file: str, image: str | None = None, split: str | None = None, **kw: object) -> AnnotationRecord:
    return AnnotationRecord(id=rid, source="generic", source_kind="generic", file=file,
                            image=None if image is None else ImageRef(path=image), split=split, **kw)


def _mc(qid: str, question: str, choices: list[str], index: int) -> QA:
    return QA(kind="mc", question=question, answer=choices[index], qid=qid, choices=choices, answer_index=index)


def test_csv_multiple_choice(root: Path) -> None:
    items = _read(root, CSV, CSV_COLUMNS)
    assert [x for x in items if isinstance(x, AnnotationRecord)] == [
        _rec("q1", CSV, "a.jpg", "train", qas=[_mc("q1", "What color is the sky?", ["red", "blue", "green"], 1)]),
        _rec("q2", CSV, "b.jpg", "val", qas=[_mc("q2", "How many, roughly?", ["1", "3", "5"], 1)]),
        _rec("q9", CSV, "a.jpg", "test", qas=[_mc("q9", "Is &lt;image&gt; literal?", ["yes", "no"], 0)]),
    ]
    rejects = [x for x in items if isinstance(x, Reject)]
    assert all(r.reason in REASONS for r in rejects)
    assert [(r.reason, r.record, r.message) for r in rejects] == [
        ("bad_value", "row 2 (line 4)",
         f"generic: row 2 (line 4) of {CSV}: answer 'hexagon' is not one of the choices ['circle', 'square']"),
        ("image_missing", "row 3 (line 5)",
         f"generic: image 'missing.jpg' of record row 3 (line 5) in {CSV} not found at {os.path.join(str(root), 'missing.jpg')}"
         "; check `images` (the image root) and this source's `image_prefix`"),
        ("empty_question", "row 4 (line 6)",
         f"generic: row 4 (line 6) of {CSV}: column 'question' (question) is empty"),
        ("empty_answer", "row 5 (line 7)", f"generic: row 5 (line 7) of {CSV}: column 'answer' (answer) is empty"),
        ("bad_value", "row 6 (line 8)",
         f"generic: row 6 (line 8) of {CSV}: id 'q1' was already used by an earlier row; ids must be unique"),
        ("missing_key", "row 7 (line 9)",
         f"generic: row 7 (line 9) of {CSV}: no value in column(s) 'answer' (for answer), 'options' (for choices), "
         "'split' (for split); the row has 'uid', 'file', 'question'. Fix the row or `columns`"),
    ]
    picked = _read(root, CSV, CSV_COLUMNS, splits=["val", "test"])
    # Row 7 has no split value, so no filter can place it: it is still reported.
    assert [x.id if isinstance(x, AnnotationRecord) else x.record for x in picked] == ["q2", "row 7 (line 9)", "q9"]
    assert [x.id for x in _read(root, CSV, CSV_COLUMNS, limit=2)] == ["q1", "q2"]


def test_jsonl_captions_and_labels(root: Path) -> None:
    items = _read(root, JSONL, {"image": "image", "caption": "cap", "label": "cls"})
    assert [x for x in items if isinstance(x, AnnotationRecord)] == [
        _rec("0", JSONL, "a.jpg", captions=[Caption(text="A small red square.")], label="square"),
        _rec("1", JSONL, "b.jpg", captions=[Caption(text="Blue thing."), Caption(text="Another caption.")],
             label="blob"),
        _rec("7", JSONL, "a.jpg", captions=[Caption(text="fine")], label="7"),
    ]
    rejects = [x for x in items if isinstance(x, Reject)]
    assert [(r.reason, r.record) for r in rejects] == [
        ("bad_value", "row 2 (line 4)"), ("bad_value", "row 3 (line 5)"), ("empty_caption", "row 4 (line 6)"),
        ("missing_key", "row 5 (line 7)"), ("image_path_escapes_root", "row 6 (line 8)"),
        ("bad_value", "row 8 (line 10)")]
    assert [r.message.split(": ", 2)[-1] for r in rejects] == [
        f"line 4 of {JSONL} is not valid JSON (Expecting value)",
        "the row is a list, expected an object of columns",
        "column 'cap' (caption) is empty",
        "no value in column(s) 'cls' (for label); the row has 'image', 'cap'. Fix the row or `columns`",
        f"image path '../../etc/passwd' of record row 6 (line 8) in {JSONL} is absolute or leaves the image root {root}; "
        "image paths must stay inside the root",
        "column 'cap' (caption) holds {'x': 1}, expected text or a number",
    ]


def test_json_records_key_text_only_choices(root: Path) -> None:
    cols = {"id": "question_id", "question": "question", "answer": "answer", "choices": "choices",
            "answer_index": "answer_index", "split": "split"}
    items = _read(root, WRAPPED, cols, records_key="data", splits=["train"])
    assert [x for x in items if isinstance(x, AnnotationRecord)] == [
        _rec("11", WRAPPED, split="train", qas=[_mc("11", "What is 2 + 2?", ["3", "4"], 1)]),
        _rec("12", WRAPPED, split="train", qas=[_mc("12", "Is ice cold?", ["yes", "no"], 0)]),
    ]
    assert [(r.reason, r.record, r.message.split(": ", 2)[-1]) for r in items if isinstance(r, Reject)] == [
        ("bad_value", "row 2", "column 'answer_index' (answer_index) holds 5, not an index into the 2 choices (0..1)"),
        ("bad_value", "row 3", "answer 'no' differs from choice 0 ('yes') that answer_index points at"),
        ("bad_value", "row 4", "column 'choices' (choices) holds [], expected a non-empty list"),
        ("bad_value", "row 5", "the row is a str, expected an object of columns"),
    ]


def test_plain_json_list_vqa(root: Path, tmp_path: Path) -> None:
    f = tmp_path / "vqa.json"
    f.write_text('[{"img": "b.jpg", "q": "What is this?", "a": " a square "}]')
    assert _read(root, str(f), {"image": "img", "question": "q", "answer": "a"}) == [
        _rec("0", str(f), "b.jpg", qas=[QA(kind="vqa", question="What is this?", answer="a square", qid="0")])]


def test_whole_file_problems(root: Path, tmp_path: Path) -> None:
    cap = {"caption": "text"}
    with pytest.raises(SourceError, match=r"generic: \S*wrapped\.json holds a JSON object, not a list of rows; set "
                                          r"`records_key` to the key that holds the rows \(keys holding lists: data\)"):
        _read(root, WRAPPED, cap)
    with pytest.raises(SourceError,
                       match=r"wrapped\.json has no 'rows' key \(found: data, version\); fix `records_key`"):
        _read(root, WRAPPED, cap, records_key="rows")
    with pytest.raises(SourceError, match=r"`records_key` applies to JSON files only, but \S*rows\.jsonl is read as "
                                          r"jsonl; remove `records_key`"):
        _read(root, JSONL, cap, records_key="data")
    with pytest.raises(SourceError, match=r"the header of \S*qa\.csv has no column\(s\) 'text' \(for caption\); its "
                                          r"columns are 'uid', 'file', 'question', 'answer', 'options', 'split'"):
        _read(root, CSV, cap)
    odd = tmp_path / "rows.txt"
    odd.write_text("text\nhello\n")
    with pytest.raises(SourceError, match=r"cannot tell the format of \S*rows\.txt from its extension '\.txt'; set "
                                          r"`format`"):
        _read(root, str(odd), cap)
    assert _read(root, str(odd), cap, format="csv") == [_rec("0", str(odd), captions=[Caption(text="hello")])]
    with pytest.raises(SourceError, match=r"generic: file not found: \S*gone\.csv"):
        _read(root, str(tmp_path / "gone.csv"), cap)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match=r"empty\.csv is empty; a CSV file needs a header row"):
        _read(root, str(empty), cap)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"text": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(SourceError, match=r"latin\.jsonl is not UTF-8 text; save it as UTF-8"):
        _read(root, str(latin), cap)


def test_columns_are_validated() -> None:
    with pytest.raises(ValidationError, match=r"columns\.answr\n  Extra inputs are not permitted"):
        GenericOptions(kind="generic", path="x.csv", columns={"question": "q", "answr": "a"})
    with pytest.raises(ValidationError, match=r"columns map `question` but neither `answer` nor `answer_index`"):
        GenericOptions(kind="generic", path="x.csv", columns={"question": "q"})
    with pytest.raises(ValidationError, match=r"columns map none of question, caption, label"):
        GenericOptions(kind="generic", path="x.csv", columns={"image": "file"})
    with pytest.raises(ValidationError, match=r"columns map `answer_index` but not `choices`"):
        GenericOptions(kind="generic", path="x.csv", columns={"question": "q", "answer_index": "i"})
    with pytest.raises(RecipeError) as e:
        parse_recipe({"sources": [{"kind": "generic", "path": "x.csv", "columns": {"caption": "c", "img": "f"}}]},
                     check_paths=False)
    assert "sources[0].columns.img: unknown key. Remove it or check its spelling" in e.value.errors


def test_registry_has_these_sources() -> None:
    from sources.image_folder import ImageFolderSource
    from sources.karpathy import KarpathySource
    from sources.refcoco import RefCOCOgSource, RefCOCOPlusSource, RefCOCOSource
    from sources.scienceqa import ScienceQASource

    expected = {"refcoco": RefCOCOSource, "refcoco_plus": RefCOCOPlusSource, "refcocog": RefCOCOgSource,
                "scienceqa": ScienceQASource, "karpathy": KarpathySource, "flickr30k": KarpathySource,
                "image_folder": ImageFolderSource, "generic": GenericSource}
    for kind, cls in expected.items():
        assert REGISTRY[kind] is cls and get_source(kind) is cls
        assert kind == cls.kind or kind == "flickr30k"
    assert RefCOCOSource.Options.path_keys == ("refs", "instances")
    assert ScienceQASource.Options.path_keys == ("path", "pid_splits")
    assert ImageFolderSource.Options.path_keys == ()
