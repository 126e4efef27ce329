"""The adaptation tasks: which records each one can use, and the exchanges it builds from a record.

An exchange is one user/assistant pair before rendering: the variables its template gets, the boxes
its `<box:N>` markers refer to (numbered from 0 within the exchange; the stage renumbers them when it
groups exchanges into one conversation), and the annotation ids it used. Templates live in
`templates/<task>/<style>.jinja2` and define the blocks `user` and `assistant`.

Template variables per task (all source text is already escaped with `escape_source_text`):

- caption_short, caption_detailed: `caption`
- vqa_short: `question`, `answer`
- mc: `question`, `context` (the hint, or None), `options` (list of (letter, text)), `answer` (the
  letter), `answer_text`
- rec, reg: `expression`, `box` (the marker `<box:0>`)
- grounded_caption: `caption`, `objects` (list of (category, box marker))
- counting: `category`, `plural`, `count` (an int)
- classification: `label`
- ocr: `question`, `answer`; the "read the text" form (styles named `read_*`): `text`, `tokens`

A task may have more than one form of exchange. A form other than the default one is served by the
styles whose names start with `<form>_` (ocr's `read_*` styles); the other styles serve the default form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import ascii_uppercase
from typing import Any, Callable, Iterator, NamedTuple

from pipeline.adapt.plural import plural
from pipeline.adapt.seeding import seeded_subset
from schemas.box import Box
from schemas.record import AnnotationRecord, QA
from schemas.sample import escape_source_text


class Exchange(NamedTuple):
    """One user/assistant pair to render: template variables, its boxes, the annotation ids it used.

    (A named tuple: one is made per sample, and it is several times cheaper to make than a frozen dataclass.)"""

    variables: dict[str, Any]
    ann_ids: tuple[str, ...]
    boxes: tuple[Box, ...] = ()
    #: Which form of the task this is ("" = the default form).
    form: str = ""


@dataclass(frozen=True)
class Skip:
    """Part of a record a task could not use (an empty answer, a bad choice index): becomes a Reject."""

    reason: str
    message: str
    ann_id: str | None = None


@dataclass(frozen=True)
class BuildOptions:
    """Stage options a task builder needs."""

    seed: int = 0
    captions_per_image: int = 1


Built = Iterator[Exchange | Skip]


@dataclass(frozen=True)
class TaskSpec:
    """One task: whether a record has anything for it, how to build its exchanges, how to render them."""

    name: str
    description: str
    applies: Callable[[AnnotationRecord], bool]
    build: Callable[[AnnotationRecord, BuildOptions], Built]
    #: Example template variables per form ("" is the default form). Their keys are the variables a
    #: template of that form may use; the stage test-renders every template with them when it starts,
    #: so a broken user template fails before any record is read.
    forms: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Whether several exchanges of one image may become one multi-turn conversation. Caption tasks
    #: are not grouped: asking for the same description twice with different answers teaches nothing.
    groupable: bool = True

    def form_of_style(self, style: str) -> str:
        """The form a style serves: `<form>_...` for a non-default form, else the default form ""."""
        for form in self.forms:
            if form and style.startswith(form + "_"):
                return form
        return ""


# ---- helpers --------------------------------------------------------------------------------------------

def _clean(text: str) -> str:
    return escape_source_text(text.strip())


def _caption_id(ann_id: str | None, i: int) -> str:
    return ann_id if ann_id is not None else f"caption{i}"


def _object_id(ann_id: str | None, i: int) -> str:
    return ann_id if ann_id is not None else f"object{i}"


def _record_key(record: AnnotationRecord) -> str:
    return f"{record.source}/{record.id}"


def _short_captions(record: AnnotationRecord) -> tuple[list[tuple[str, str]], list[Skip]]:
    """Distinct non-empty short captions as (ann id, escaped text), in record order; Skips for empty ones."""
    usable: list[tuple[str, str]] = []
    skips: list[Skip] = []
    seen: set[str] = set()
    for i, c in enumerate(record.captions):
        if c.detailed:
            continue
        aid = _caption_id(c.ann_id, i)
        text = c.text.strip()
        if not text:
            skips.append(Skip("empty_caption", f"caption {aid} is empty", aid))
            continue
        norm = " ".join(text.lower().split())
        if norm in seen:
            continue
        seen.add(norm)
        usable.append((aid, escape_source_text(text)))
    return usable, skips


def _qa_checked(qa: QA) -> Skip | None:
    if not qa.question.strip():
        return Skip("empty_question", f"question {qa.qid} is empty", qa.qid)
    if not qa.answer.strip():
        return Skip("empty_answer", f"question {qa.qid} has an empty answer", qa.qid)
    return None


def _short_answer(record: AnnotationRecord, kind: str) -> Built:
    for qa in record.qas:
        if qa.kind != kind:
            continue
        bad = _qa_checked(qa)
        if bad is not None:
            yield bad
            continue
        yield Exchange({"question": _clean(qa.question), "answer": _clean(qa.answer)}, (qa.qid,))


def _non_crowd(record: AnnotationRecord) -> bool:
    return any(not o.iscrowd for o in record.objects)


# ---- builders -----------------------------------------------------------------------------------------

def _build_caption_short(record: AnnotationRecord, opts: BuildOptions) -> Built:
    usable, skips = _short_captions(record)
    yield from skips
    key = f"{_record_key(record)}/caption_short"
    for aid, text in seeded_subset(opts.seed, key, usable, opts.captions_per_image):
        yield Exchange({"caption": text}, (aid,))


def _build_caption_detailed(record: AnnotationRecord, opts: BuildOptions) -> Built:
    for i, c in enumerate(record.captions):
        if not c.detailed:
            continue
        aid = _caption_id(c.ann_id, i)
        if not c.text.strip():
            yield Skip("empty_caption", f"detailed caption {aid} is empty", aid)
            continue
        yield Exchange({"caption": _clean(c.text)}, (aid,))


def _build_vqa_short(record: AnnotationRecord, opts: BuildOptions) -> Built:
    return _short_answer(record, "vqa")


def _build_mc(record: AnnotationRecord, opts: BuildOptions) -> Built:
    for qa in record.qas:
        if qa.kind != "mc":
            continue
        if not qa.question.strip():
            yield Skip("empty_question", f"question {qa.qid} is empty", qa.qid)
            continue
        choices = qa.choices or []
        if len(choices) < 2 or len(choices) > len(ascii_uppercase):
            yield Skip("bad_value", f"multiple-choice question {qa.qid} has {len(choices)} choices; "
                                    f"it needs 2 to {len(ascii_uppercase)}", qa.qid)
            continue
        if qa.answer_index is None or not 0 <= qa.answer_index < len(choices):
            yield Skip("bad_value", f"multiple-choice question {qa.qid} has answer_index {qa.answer_index!r}, "
                                    f"not an index into its {len(choices)} choices", qa.qid)
            continue
        if any(not c.strip() for c in choices):
            yield Skip("bad_value", f"multiple-choice question {qa.qid} has an empty choice", qa.qid)
            continue
        options = [(ascii_uppercase[i], _clean(c)) for i, c in enumerate(choices)]
        context = _clean(qa.context) if qa.context and qa.context.strip() else None
        letter, text = options[qa.answer_index]
        yield Exchange({"question": _clean(qa.question), "context": context, "options": options,
                        "answer": letter, "answer_text": text}, (qa.qid,))


def _build_refs(record: AnnotationRecord, opts: BuildOptions) -> Built:
    """One exchange per distinct sentence of each referring expression (shared by rec and reg)."""
    for ref in record.refs:
        seen: set[str] = set()
        for s in ref.sentences:
            s = s.strip()
            if s and s not in seen:
                seen.add(s)
                yield Exchange({"expression": escape_source_text(s), "box": "<box:0>"}, (ref.ref_id,),
                               (ref.box,))
        if not seen:
            yield Skip("bad_value", f"referring expression {ref.ref_id} has no non-empty sentence", ref.ref_id)


def _build_grounded_caption(record: AnnotationRecord, opts: BuildOptions) -> Built:
    usable, skips = _short_captions(record)
    yield from skips
    objs = [(i, o) for i, o in enumerate(record.objects) if not o.iscrowd]
    if not usable or not objs:
        return
    (cap_id, caption), = seeded_subset(opts.seed, f"{_record_key(record)}/grounded_caption", usable, 1)
    objects = [(_clean(o.category), f"<box:{k}>") for k, (_, o) in enumerate(objs)]
    yield Exchange({"caption": caption, "objects": objects},
                   (cap_id, *(_object_id(o.ann_id, i) for i, o in objs)), tuple(o.box for _, o in objs))


def _build_counting(record: AnnotationRecord, opts: BuildOptions) -> Built:
    # A category with a crowd region cannot be counted (the crowd holds an unknown number), so it is left out.
    # So is a category some of whose annotations the source had to leave out (incomplete_categories).
    crowded = {o.category for o in record.objects if o.iscrowd} | set(record.incomplete_categories)
    per_cat: dict[str, list[str]] = {}
    for i, o in enumerate(record.objects):
        if o.iscrowd or o.category in crowded:
            continue
        if not o.category.strip():
            aid = _object_id(o.ann_id, i)
            yield Skip("bad_value", f"object {aid} has an empty category name", aid)
            continue
        per_cat.setdefault(o.category, []).append(_object_id(o.ann_id, i))
    for cat in sorted(per_cat):
        ids = per_cat[cat]
        name = cat.strip()
        yield Exchange({"category": escape_source_text(name), "plural": escape_source_text(plural(name)),
                        "count": len(ids)}, tuple(ids))


def _build_classification(record: AnnotationRecord, opts: BuildOptions) -> Built:
    label = record.label or ""
    if not label.strip():
        yield Skip("bad_value", "the class label is empty", "label")
        return
    yield Exchange({"label": _clean(label)}, ("label",))


def _build_ocr(record: AnnotationRecord, opts: BuildOptions) -> Built:
    yield from _short_answer(record, "ocr")
    tokens = [escape_source_text(t.strip()) for t in record.ocr_tokens if t.strip()]
    if tokens:
        yield Exchange({"text": " ".join(tokens), "tokens": tokens}, ("ocr_tokens",), form="read")


# ---- which records each task applies to ---------------------------------------------------------------

def _has_short_caption(record: AnnotationRecord) -> bool:
    return any(not c.detailed for c in record.captions)


def _applies_caption_short(r: AnnotationRecord) -> bool:
    return r.image is not None and _has_short_caption(r)


def _applies_caption_detailed(r: AnnotationRecord) -> bool:
    return r.image is not None and any(c.detailed for c in r.captions)


def _applies_vqa_short(r: AnnotationRecord) -> bool:
    # No image needed: a text-only question still renders (it just gets no `<image>`).
    return any(q.kind == "vqa" for q in r.qas)


def _applies_mc(r: AnnotationRecord) -> bool:
    # ScienceQA has text-only questions: they become samples without images.
    return any(q.kind == "mc" for q in r.qas)


def _applies_refs(r: AnnotationRecord) -> bool:
    return r.image is not None and bool(r.refs)


def _applies_grounded_caption(r: AnnotationRecord) -> bool:
    return r.image is not None and _has_short_caption(r) and _non_crowd(r)


def _applies_counting(r: AnnotationRecord) -> bool:
    return r.image is not None and _non_crowd(r)


def _applies_classification(r: AnnotationRecord) -> bool:
    return r.image is not None and r.label is not None


def _applies_ocr(r: AnnotationRecord) -> bool:
    return r.image is not None and (bool(r.ocr_tokens) or any(q.kind == "ocr" for q in r.qas))


# ---- the registry ---------------------------------------------------------------------------------------

_QA_EXAMPLE: dict[str, Any] = {"question": "What colour is the bus?", "answer": "red"}
_REF_EXAMPLE: dict[str, Any] = {"expression": "the man on the left", "box": "<box:0>"}

TASKS: dict[str, TaskSpec] = {
    "caption_short": TaskSpec(
        "caption_short", "a short caption of the image (captions_per_image of its captions)",
        _applies_caption_short, _build_caption_short,
        {"": {"caption": "A red bus on a city street."}}, groupable=False),
    "caption_detailed": TaskSpec(
        "caption_detailed", "a long description (captions marked detailed)",
        _applies_caption_detailed, _build_caption_detailed,
        {"": {"caption": "A red double-decker bus waits at a stop while people board it."}}, groupable=False),
    "vqa_short": TaskSpec(
        "vqa_short", "short-answer visual questions (LLaVA-1.5 suffix)",
        _applies_vqa_short, _build_vqa_short, {"": _QA_EXAMPLE}),
    "mc": TaskSpec(
        "mc", "multiple choice with lettered options; the answer is the letter",
        _applies_mc, _build_mc,
        {"": {"question": "Which animal is shown?", "context": "A farm.", "options": [("A", "cow"), ("B", "horse")],
              "answer": "B", "answer_text": "horse"}}),
    "rec": TaskSpec(
        "rec", "referring expression comprehension: expression -> box",
        _applies_refs, _build_refs, {"": _REF_EXAMPLE}),
    "reg": TaskSpec(
        "reg", "referring expression generation: box -> expression",
        _applies_refs, _build_refs, {"": _REF_EXAMPLE}),
    "grounded_caption": TaskSpec(
        "grounded_caption", "a short caption plus every non-crowd object with its box",
        _applies_grounded_caption, _build_grounded_caption,
        {"": {"caption": "A man walks a dog.", "objects": [("person", "<box:0>"), ("dog", "<box:1>")]}},
        groupable=False),
    "counting": TaskSpec(
        "counting", "how many objects of each category (non-crowd instances)",
        _applies_counting, _build_counting, {"": {"category": "dog", "plural": "dogs", "count": 2}}),
    "classification": TaskSpec(
        "classification", "the image's class label (image folders)",
        _applies_classification, _build_classification, {"": {"label": "tabby cat"}}, groupable=False),
    "ocr": TaskSpec(
        "ocr", "text-reading questions (kind 'ocr') and reading out the OCR tokens",
        _applies_ocr, _build_ocr, {"": _QA_EXAMPLE, "read": {"text": "STOP", "tokens": ["STOP"]}}),
}
