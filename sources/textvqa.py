"""TextVQA (`TextVQA_0.5.1_{train,val,test}.json`): `data[]` of questions about text in images.

One record per image (`{image_id}.jpg`, size from `image_width`/`image_height`; record order, rejects,
`limit`, `splits`: see `sources.qa_reader`). The answer is the most frequent of the ten `answers`
(ties go to the one seen first), `QA.kind` is "ocr". The split is the `split` option, else the row's
`set_name`, else the file's `dataset_type`. The test split has no answers: its rows are rejected
(`empty_answer`) with a message that says so.
"""

from __future__ import annotations

from typing import Any, ClassVar, Hashable, Iterable, Sequence

from schemas.record import QA
from schemas.reject import Reject
from sources.base import SourceError, SourceOptions, load_json, require_keys
from sources.fields import BadField, clean_text, get_id, get_text, optional_size, most_frequent
from sources.qa_reader import QAReader

_EXPECT = ("a TextVQA file (TextVQA_0.5.1_<split>.json) with a 'data' list of {question_id, question, image_id, "
           "image_width, image_height, answers, set_name}")


class TextVQAOptions(SourceOptions):
    """A TextVQA questions file."""

    path: str
    #: The split; default: each row's `set_name`.
    split: str | None = None

    path_keys: ClassVar[tuple[str, ...]] = ("path",)


class TextVQASource(QAReader):
    """TextVQA 0.5.1."""

    kind = "textvqa"
    Options = TextVQAOptions

    def load(self) -> Iterable[tuple[str, Any]]:
        o = self.options
        assert isinstance(o, TextVQAOptions)
        self.file = o.path
        data = load_json(o.path, self.kind, _EXPECT)
        hint = ""
        if isinstance(data, dict) and "questions" in data:
            hint = "; this looks like a VQAv2 questions file: use kind vqav2 for it"
        require_keys(data, ("data",), self.kind, o.path, _EXPECT, hint)
        rows = data["data"]
        if not isinstance(rows, list):
            raise SourceError(f"{self.kind}: {o.path}: 'data' is a JSON {type(rows).__name__}, expected a list; "
                              f"expected {_EXPECT}")
        dtype = data.get("dataset_type")
        self.file_split = o.split
        self.default_split = dtype if isinstance(dtype, str) else None
        return ((_qname(r, i), r) for i, r in enumerate(rows))

    def row_split(self, row: dict[str, Any]) -> str | None:
        if self.file_split is not None:
            return self.file_split
        s = row.get("set_name")
        return s if isinstance(s, str) else self.default_split

    def image_key(self, name: str, row: dict[str, Any]) -> Hashable:
        return get_id(row, "image_id")

    def image_info(self, key: Any, row: dict[str, Any]) -> tuple[str, int | None, int | None]:
        w, h = optional_size(row, "image_width", "image_height")
        return f"{key}.jpg", w, h

    def parse(self, name: str, row: dict[str, Any], qas: list[QA], joined: Any = None) -> Sequence[Reject]:
        try:
            qid = get_id(row, "question_id")
            question = get_text(row, "question", "empty_question")
            raw = row.get("answers")
            if not raw:
                raise BadField("empty_answer", "has no answers (TextVQA's test split has no answers; use the "
                                               "train or val file for training)")
            if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
                raise BadField("bad_value", f"has 'answers' = {raw!r:.60}, expected a list of strings")
            answers = [clean_text(a) for a in raw]
            answer = most_frequent(answers)
            if answer is None:
                raise BadField("empty_answer", "has only empty answers")
        except BadField as e:
            return (self.bad(e, name),)
        qas.append(QA(question=question, answer=answer, qid=str(qid), answers=answers, kind="ocr"))
        return ()


def _qname(row: Any, index: int) -> str:
    qid = row.get("question_id") if isinstance(row, dict) else None
    return str(qid) if qid is not None else f"data[{index}]"
