"""VQAv2 and OK-VQA: a questions file and an annotations file joined on `question_id`.

One record per COCO image (record order, rejects, `limit`, `splits`: see `sources.qa_reader`).
The answer is `multiple_choice_answer` (VQAv2) or, for OK-VQA, whose annotations lack it, the most
frequent of `answers[].answer` (ties go to the answer seen first); `QA.answers` keeps all of them.

Image file names come from `image_pattern` (default `COCO_{data_subtype}_{image_id:012d}.jpg`, the
COCO 2014 naming); `data_subtype` is the option, else the questions file's top-level `data_subtype`
(e.g. "val2014"), else the annotations file's. The split is the `split` option, else the subtype without
its year ("val2014" -> "val").

Reading: the annotations file (ten answer entries per question, the bulk of VQAv2's bytes) is decoded
with msgspec into slim typed structs that keep only the fields used, and equal answer texts share one
string object, so a shard sent to a worker pickles each distinct answer once. A file that does not fit
that typed shape (a non-object entry, an id that is neither integer nor string, a non-text answer) is
read again the careful way (orjson, with a reject per bad record): the result is the same either way.

Per-question rejects: `missing_key` (a key, or the question's annotation, is missing), `bad_value`
(the annotation is on another image), `empty_question`, `empty_answer`. Annotations that no question
uses are reported (`missing_key`) after a complete read.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, ClassVar, Hashable, Iterable, Iterator, Sequence

import msgspec
from pydantic import field_validator

from schemas.record import QA
from schemas.reject import Reject
from sources.base import SourceError, SourceOptions, load_json, require_keys
from sources.fields import BadField, clean_text, get_id, get_text, most_frequent, split_from_name
from sources.qa_reader import QAReader

_PATTERN_FIELDS = ("image_id", "data_subtype")


class VQAv2Options(SourceOptions):
    """A VQAv2 (or OK-VQA) questions file and its annotations file."""

    questions: str
    annotations: str
    #: Image file name under the image root; fields: {image_id}, {data_subtype}.
    image_pattern: str = "COCO_{data_subtype}_{image_id:012d}.jpg"
    #: e.g. "val2014"; default: the files' top-level `data_subtype`.
    data_subtype: str | None = None
    #: The split; default: `data_subtype` without its year.
    split: str | None = None

    path_keys: ClassVar[tuple[str, ...]] = ("questions", "annotations")

    @field_validator("image_pattern")
    @classmethod
    def _known_fields(cls, v: str) -> str:
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
        except ValueError as e:
            raise ValueError(f"image_pattern {v!r} is not a valid format string ({e})") from None
        bad = [f for f in names if f not in _PATTERN_FIELDS]
        if bad:
            raise ValueError(f"image_pattern {v!r} uses unknown field(s) {bad}; it may use "
                             f"{', '.join('{' + f + '}' for f in _PATTERN_FIELDS)}")
        return v


class VQAv2Source(QAReader):
    """VQAv2: the answer is the annotation's `multiple_choice_answer`."""

    kind = "vqav2"
    driver_only = ("by_qid", "question_rows", "ann_late", "shared_texts")
    Options = VQAv2Options
    #: OK-VQA: take the most frequent of the ten answers instead.
    majority: ClassVar[bool] = False

    def load(self) -> Iterable[tuple[str, Any]]:
        o = self.options
        assert isinstance(o, VQAv2Options)
        q_expect = f"a {self.kind} questions file with a 'questions' list of {{image_id, question, question_id}}"
        a_expect = (f"a {self.kind} annotations file with an 'annotations' list of {{question_id, image_id, "
                    f"answers, ...}}")
        qdata = load_json(o.questions, self.kind, q_expect)
        hint = ""
        if isinstance(qdata, dict) and "annotations" in qdata and "questions" not in qdata:
            hint = "; is this an annotations file? Swap `questions:` and `annotations:` in the recipe"
        require_keys(qdata, ("questions",), self.kind, o.questions, q_expect, hint)
        fast = _load_annotations_fast(o.annotations)
        if fast is not None:
            annotations: list[Any] = fast.annotations
            a_subtype = fast.data_subtype
        else:
            adata = load_json(o.annotations, self.kind, a_expect)
            hint = ""
            if isinstance(adata, dict) and "questions" in adata and "annotations" not in adata:
                hint = "; is this a questions file? Swap `questions:` and `annotations:` in the recipe"
            require_keys(adata, ("annotations",), self.kind, o.annotations, a_expect, hint)
            annotations = adata["annotations"]
            a_subtype = adata.get("data_subtype")
        for path, value, key, expect in ((o.questions, qdata["questions"], "questions", q_expect),
                                         (o.annotations, annotations, "annotations", a_expect)):
            if not isinstance(value, list):
                raise SourceError(f"{self.kind}: {path}: {key!r} is a JSON {type(value).__name__}, expected a "
                                  f"list; expected {expect}")

        subtype = o.data_subtype or qdata.get("data_subtype") or a_subtype
        if subtype is not None and not isinstance(subtype, str):
            raise SourceError(f"{self.kind}: {o.questions}: 'data_subtype' is {subtype!r}, expected a name like "
                              "'val2014'; set `data_subtype:` in the recipe")
        if subtype is None and "{data_subtype" in o.image_pattern:
            raise SourceError(f"{self.kind}: neither {o.questions} nor {o.annotations} has a top-level "
                              f"'data_subtype', and image_pattern {o.image_pattern!r} needs it; set "
                              "`data_subtype:` (e.g. val2014) or `image_pattern:` in the recipe")
        self.subtype = subtype
        self.split = o.split or split_from_name(subtype)
        self.file = o.annotations
        self.questions_file = self.rows_file = o.questions
        self.pattern = o.image_pattern

        self.by_qid: dict[Hashable, dict[str, Any]] = {}
        self.ann_late: list[Reject] = []
        self.question_rows: list[Any] = []
        self.memo: dict[str, str] = {}
        self.shared_texts: dict[str, str] = {}
        if not self.split_ok(self.split):
            return ()
        if fast is not None:  # typed: every entry is an object whose id is an integer or a string
            by_qid = self.by_qid
            for a in annotations:
                by_qid.setdefault(a.question_id, a)
            self.question_rows = qdata["questions"]
            return ((_qname(q, i), q) for i, q in enumerate(self.question_rows))
        for i, a in enumerate(annotations):
            try:
                if not isinstance(a, dict):
                    raise BadField("bad_value", f"is a JSON {type(a).__name__}, expected an object")
                qid = get_id(a, "question_id")
            except BadField as e:
                self.ann_late.append(self.bad(e, f"annotations[{i}]", what="annotation", file=o.annotations))
                continue
            self.by_qid.setdefault(qid, a)
        self.question_rows = qdata["questions"]
        return ((_qname(q, i), q) for i, q in enumerate(self.question_rows))

    def row_split(self, row: dict[str, Any]) -> str | None:
        return self.split

    def image_key(self, name: str, row: dict[str, Any]) -> Hashable:
        return get_id(row, "image_id")

    def image_info(self, key: Any, row: dict[str, Any]) -> tuple[str, int | None, int | None]:
        iid = int(key) if isinstance(key, str) and key.isdigit() else key
        try:
            return self.pattern.format(image_id=iid, data_subtype=self.subtype), None, None
        except (ValueError, TypeError) as e:
            raise BadField("bad_value", f"has an image id that image_pattern {self.pattern!r} cannot format "
                                        f"({e})") from None

    def join(self, name: str, row: dict[str, Any]) -> Any:
        """The question's annotation, slimmed to what `parse` reads: well-formed answer entries become a
        plain list of texts, which costs a tenth as much to send to a worker as ten small dicts."""
        qid = row.get("question_id")
        ann = self.by_qid.get(qid) if isinstance(qid, (int, str)) else None
        if ann is None:
            return None
        if ann.__class__ is _Annotation:
            slim = {}
            if ann.image_id is not msgspec.UNSET:
                slim["image_id"] = ann.image_id
            if ann.multiple_choice_answer is not msgspec.UNSET:
                slim["multiple_choice_answer"] = ann.multiple_choice_answer
            if ann.answer_type is not msgspec.UNSET:
                slim["answer_type"] = ann.answer_type
            if ann.answers is not msgspec.UNSET:
                shared = self.shared_texts
                slim[_TEXTS] = [shared.setdefault(e.answer, e.answer) for e in ann.answers]
            return slim
        slim = {k: ann[k] for k in _ANN_KEYS if k in ann}
        raw = ann.get("answers")
        if isinstance(raw, list):
            try:
                texts = [a["answer"] for a in raw]
                if all(t.__class__ is str for t in texts):
                    slim[_TEXTS] = texts
                    del slim["answers"]
            except (KeyError, TypeError):
                pass  # malformed entries stay as they are, for parse to report
        return slim

    def parse(self, name: str, row: dict[str, Any], qas: list[QA], joined: Any = None) -> Sequence[Reject]:
        try:
            qid = get_id(row, "question_id")
            question = get_text(row, "question", "empty_question")
        except BadField as e:
            return (self.bad(e, name),)
        ann = joined
        if ann is None:
            return (self.bad(BadField("missing_key", f"has no annotation with this question_id in {self.file}"),
                             name, hint="it is skipped; are the questions and annotations files of the same "
                                        "split?"),)
        try:
            if ann.get("image_id", row["image_id"]) != row["image_id"]:
                raise BadField("bad_value", f"is about image {row['image_id']!r} but its annotation is on image "
                                            f"{ann.get('image_id')!r}")
            answers = _answers(ann, self.majority, self.memo)
            if self.majority:
                answer = most_frequent(answers)
                if answer is None:
                    raise BadField("empty_answer", "has only empty answers")
            else:
                answer = get_text(ann, "multiple_choice_answer", "empty_answer")
        except BadField as e:
            hint = ""
            if e.reason == "missing_key" and "multiple_choice_answer" in e.detail:
                hint = "it is skipped; OK-VQA annotations have no multiple_choice_answer: use kind okvqa"
            return (self.bad(e, name, what="annotation of question", file=self.file, hint=hint),)
        atype = ann.get("answer_type")
        qas.append(QA(question=question, answer=answer, qid=str(qid), answers=answers,
                      answer_type=atype if isinstance(atype, str) else None, kind="vqa"))
        return ()

    def finish(self) -> Iterator[Reject]:
        yield from self.ann_late
        asked = {q["question_id"] for q in self.question_rows
                 if isinstance(q, dict) and isinstance(q.get("question_id"), (int, str))}
        for qid in self.by_qid:
            if qid not in asked:
                yield self.bad(BadField("missing_key", f"has no question in {self.questions_file}"), qid,
                               what="annotation of question_id", file=self.file,
                               hint="it is skipped; are the questions and annotations files of the same split?")


def _qname(q: Any, index: int) -> str:
    qid = q.get("question_id") if isinstance(q, dict) else None
    return str(qid) if qid is not None else f"questions[{index}]"


# gc=False: these hold only strings and numbers, so the cyclic collector need not track millions of them.
class _AnswerEntry(msgspec.Struct, gc=False):
    answer: str


class _Annotation(msgspec.Struct, gc=False):
    """One VQA annotation, only the fields `join` reads (the others are skipped while decoding)."""

    question_id: int | str
    image_id: int | str | msgspec.UnsetType = msgspec.UNSET
    multiple_choice_answer: str | msgspec.UnsetType = msgspec.UNSET
    answer_type: str | None | msgspec.UnsetType = msgspec.UNSET
    answers: list[_AnswerEntry] | msgspec.UnsetType = msgspec.UNSET


class _AnnotationsFile(msgspec.Struct):
    annotations: list[_Annotation]
    data_subtype: Any = None


_ANNOTATIONS_DECODER = msgspec.json.Decoder(_AnnotationsFile)


def _load_annotations_fast(path: str) -> _AnnotationsFile | None:
    """The annotations file decoded into typed structs, or None when it does not fit them (or cannot be
    read): the caller then reads it with `load_json`, which reports exactly what is wrong."""
    try:
        return _ANNOTATIONS_DECODER.decode(Path(path).read_bytes())
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


_ANN_KEYS = ("image_id", "multiple_choice_answer", "answer_type", "answers")
#: Where `join` puts the answer texts it took out of well-formed `answers` entries.
_TEXTS = "\x00answer_texts"


def _answers(ann: dict[str, Any], required: bool, memo: dict[str, str]) -> list[str]:
    """All reference answers (`answers[].answer`), cleaned; BadField when malformed (or absent and required).

    `memo` maps raw answer texts to cleaned ones: VQA answers repeat a lot ("yes", "2"), and there are
    ten per question, so cleaning each distinct text once is most of this reader's speed."""
    texts = ann.get(_TEXTS)
    if texts is not None:
        try:
            return [memo[t] for t in texts]
        except KeyError:
            out = []
            for t in texts:
                clean = memo.get(t)
                if clean is None:
                    clean = memo[t] = clean_text(t)
                out.append(clean)
            return out
    raw = ann.get("answers")
    if raw is None:
        if required:
            raise BadField("missing_key", "has no 'answers' key")
        return []
    if not isinstance(raw, list):
        raise BadField("bad_value", f"has 'answers' of type {type(raw).__name__}, expected a list")
    try:
        return [memo[a["answer"]] for a in raw]
    except (KeyError, TypeError):
        pass  # a text not seen yet, or a malformed entry: the careful path below
    out = []
    for a in raw:
        text = a.get("answer") if isinstance(a, dict) else None
        if not isinstance(text, str):
            raise BadField("bad_value", f"has an answer entry {a!r:.60} without a text 'answer'")
        clean = memo.get(text)
        if clean is None:
            clean = memo[text] = clean_text(text)
        out.append(clean)
    return out


class OKVQASource(VQAv2Source):
    """OK-VQA: VQAv2's layout without `multiple_choice_answer`; the answer is the most frequent one."""

    kind = "okvqa"
    majority = True
