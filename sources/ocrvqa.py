"""OCR-VQA (`dataset.json`): a dict keyed by book id, one book cover per entry.

Each entry is one record (image `{key}.jpg`; rejects, `limit`, `splits`: see `sources.qa_reader`) with
the QA pairs of its parallel `questions` / `answers` lists (qid `<key>_<index>`, kind "ocr").
`split` 1/2/3 is train/val/test. Rejects: lists missing (`missing_key`) or of different lengths, or an
unknown split value (`bad_value`) reject the whole book; an empty question or answer rejects that pair.
"""

from __future__ import annotations

from typing import Any, ClassVar, Hashable, Iterable, Sequence

from schemas.record import QA
from schemas.reject import Reject
from sources.base import SourceError, SourceOptions, load_json, require_keys
from sources.fields import BadField, get_text
from sources.qa_reader import QAReader

_EXPECT = ("the OCR-VQA dataset.json: an object keyed by book id, each value {imageURL, questions, answers, "
           "title, authorName, genre, split}")
SPLITS: dict[Any, str] = {1: "train", 2: "val", 3: "test", "1": "train", "2": "val", "3": "test"}


class OCRVQAOptions(SourceOptions):
    """The OCR-VQA dataset.json."""

    path: str

    path_keys: ClassVar[tuple[str, ...]] = ("path",)


class OCRVQASource(QAReader):
    """OCR-VQA book covers with questions about title, author, genre."""

    kind = "ocrvqa"
    Options = OCRVQAOptions

    def load(self) -> Iterable[tuple[str, Any]]:
        o = self.options
        assert isinstance(o, OCRVQAOptions)
        self.file = o.path
        data = load_json(o.path, self.kind, _EXPECT)
        require_keys(data, (), self.kind, o.path, _EXPECT)
        first = next(iter(data.values()), None)
        if first is not None and (not isinstance(first, dict) or ("questions" not in first and "answers" not in first)):
            keys = ", ".join(sorted(first)[:8]) if isinstance(first, dict) else type(first).__name__
            raise SourceError(f"{self.kind}: {o.path}: the first entry has no 'questions' or 'answers' (found: "
                              f"{keys}); is this OCR-VQA's dataset.json? Expected {_EXPECT}")
        return data.items()

    def row_split(self, row: dict[str, Any]) -> str | None:
        s = row.get("split")
        return SPLITS.get(s) if isinstance(s, (int, str)) and not isinstance(s, bool) else None

    def image_key(self, name: str, row: dict[str, Any]) -> Hashable:
        return name

    def image_info(self, key: Any, row: dict[str, Any]) -> tuple[str, int | None, int | None]:
        return f"{key}.jpg", None, None

    def parse(self, name: str, row: dict[str, Any], qas: list[QA], joined: Any = None) -> Sequence[Reject]:
        try:
            if "split" in row and self.row_split(row) is None:
                raise BadField("bad_value", f"has split {row['split']!r}, expected 1 (train), 2 (val) or 3 (test)")
            for key in ("questions", "answers"):
                if key not in row:
                    raise BadField("missing_key", f"has no {key!r} key")
                if not isinstance(row[key], list):
                    raise BadField("bad_value", f"has {key!r} of type {type(row[key]).__name__}, expected a list")
            questions, answers = row["questions"], row["answers"]
            if len(questions) != len(answers):
                raise BadField("bad_value", f"has {len(questions)} questions but {len(answers)} answers; the two "
                                            "lists must be parallel (one answer per question)")
        except BadField as e:
            return (self.bad(e, name, what="book"),)
        rejects = []
        for i, (q, a) in enumerate(zip(questions, answers)):
            qid = f"{name}_{i}"
            try:
                question = get_text({"question": q}, "question", "empty_question")
                answer = get_text({"answer": a}, "answer", "empty_answer")
            except BadField as e:
                rejects.append(self.bad(e, qid))
                continue
            qas.append(QA(question=question, answer=answer, qid=qid, answers=[answer], kind="ocr"))
        return rejects
