"""GQA (`*_balanced_questions.json`, `*_all_questions*.json`): a dict keyed by question id.

One record per image (`{imageId}.jpg`; record order, rejects, `limit`, `splits`: see `sources.qa_reader`).
The answer is the short `answer`, or `fullAnswer` with `use_full_answer: true`; `QA.answers` holds the
answer used. `answer_type` is GQA's structural type (verify, query, choose, logical, compare).
The split is the `split` option, else the one in the file name (testdev_balanced_questions.json -> testdev).
"""

from __future__ import annotations

from typing import Any, ClassVar, Hashable, Iterable, Sequence

from schemas.record import QA
from schemas.reject import Reject
from sources.base import SourceError, SourceOptions, load_json, require_keys
from sources.fields import BadField, get_id, get_text, split_from_name
from sources.qa_reader import QAReader

_EXPECT = ("a GQA questions file: an object keyed by question id, each value {imageId, question, answer, "
           "fullAnswer, types}")
#: Top-level list keys of other datasets' files, and what to use for them instead.
_OTHER_KINDS = {"questions": "vqav2", "annotations": "vqav2", "data": "textvqa", "images": "coco_captions"}


class GQAOptions(SourceOptions):
    """A GQA questions file."""

    path: str
    #: Train on the full-sentence answer ("Yes, the cup is on the left.") instead of the short one.
    use_full_answer: bool = False
    #: The split; default: from the file name.
    split: str | None = None

    path_keys: ClassVar[tuple[str, ...]] = ("path",)


class GQASource(QAReader):
    """GQA balanced (or all) questions."""

    kind = "gqa"
    Options = GQAOptions

    def load(self) -> Iterable[tuple[str, Any]]:
        o = self.options
        assert isinstance(o, GQAOptions)
        self.file = o.path
        data = load_json(o.path, self.kind, _EXPECT)
        require_keys(data, (), self.kind, o.path, _EXPECT)
        for key, kind in _OTHER_KINDS.items():
            if isinstance(data.get(key), list):
                raise SourceError(f"{self.kind}: {o.path} has a top-level {key!r} list: it is not a GQA questions "
                                  f"file (is it a {kind} file? use kind {kind} for it); expected {_EXPECT}")
        first = next(iter(data.values()), None)
        if isinstance(first, dict) and "imageId" not in first and "question" not in first:
            raise SourceError(f"{self.kind}: {o.path}: the first entry has neither 'imageId' nor 'question' (keys: "
                              f"{', '.join(sorted(first)[:8])}); is this a GQA questions file? Expected {_EXPECT}")
        self.split = o.split or split_from_name(o.path)
        self.answer_key = "fullAnswer" if o.use_full_answer else "answer"
        return data.items()

    def row_split(self, row: dict[str, Any]) -> str | None:
        return self.split

    def image_key(self, name: str, row: dict[str, Any]) -> Hashable:
        return get_id(row, "imageId")

    def image_info(self, key: Any, row: dict[str, Any]) -> tuple[str, int | None, int | None]:
        return f"{key}.jpg", None, None

    def parse(self, name: str, row: dict[str, Any], qas: list[QA], joined: Any = None) -> Sequence[Reject]:
        try:
            question = get_text(row, "question", "empty_question")
            answer = get_text(row, self.answer_key, "empty_answer")
        except BadField as e:
            return (self.bad(e, name),)
        types = row.get("types")
        atype = types.get("structural") if isinstance(types, dict) else None
        qas.append(QA(question=question, answer=answer, qid=name, answers=[answer],
                      answer_type=atype if isinstance(atype, str) else None, kind="vqa"))
        return ()
