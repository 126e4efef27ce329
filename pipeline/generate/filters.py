"""Quality filters for generated conversations; each failure has a reason code from schemas/reject.py.

- `degenerate`: empty question or answer, an answer that repeats its question, the same question asked
  twice, answers too short or too long, answers that loop (`repetitive_answer`), answers copied from
  the prompt's few-shot example (`copies_example`);
- `language`: an answer not written in the requested language;
- `hallucination`: an answer names a COCO category the record does not have (neither among its objects
  nor in its captions), as CHAIR counts it;
- `counting`: the answer to a "how many" question gives a number other than the record's object count.

The CHAIR figures of every parsed reply are counted whether or not a filter rejects it, so stats.json
reports how often the generator hallucinates, not how often the survivors do. The vocabulary is
English: for another `generate.language` the hallucination and counting filters do not run.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from pipeline.generate.language import language_problem
from pipeline.generate.vocabulary import canonical_category, find_mentions, mentioned_categories, tokenize
from pipeline.llm.config import FilterOptions
from schemas.record import AnnotationRecord

Pair = tuple[str | None, str]

NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({"single": 1, "none": 0, "no": 0, "couple": 2, "pair": 2, "dozen": 12})
_HOW_MANY = re.compile(r"\bhow\s+many\b", re.IGNORECASE)
_NORM_RE = re.compile(r"[^\w\s]", re.UNICODE)


@dataclass(frozen=True)
class Verdict:
    """Why a sample fails: a reason code and a message naming the turn and the problem."""

    reason: str
    message: str


@dataclass
class Chair:
    """CHAIR counts: answers (and distinct categories mentioned per answer) that name absent objects."""

    answers: int = 0
    answers_hallucinated: int = 0
    mentions: int = 0
    mentions_hallucinated: int = 0
    #: Hallucinated category -> how many answers named it.
    categories: Counter[str] = field(default_factory=Counter)

    def add(self, other: "Chair") -> None:
        self.answers += other.answers
        self.answers_hallucinated += other.answers_hallucinated
        self.mentions += other.mentions
        self.mentions_hallucinated += other.mentions_hallucinated
        self.categories.update(other.categories)


@dataclass(frozen=True)
class RecordFacts:
    """What the record says is in the image, in COCO categories."""

    present: frozenset[str]
    #: Non-crowd objects per category; categories with a crowd box have no exact count.
    counts: dict[str, int]
    crowd: frozenset[str]
    has_objects: bool
    #: Categories only the captions name (present, but without a box to count).
    caption_only: frozenset[str]


def record_facts(record: AnnotationRecord, negation_window: int = 3) -> RecordFacts:
    counts: Counter[str] = Counter()
    crowd: set[str] = set()
    boxed: set[str] = set()
    for o in record.objects:
        cat = canonical_category(o.category)
        if cat is None:
            continue
        boxed.add(cat)
        if o.iscrowd:
            crowd.add(cat)
        else:
            counts[cat] += 1
    in_captions: set[str] = set()
    for c in record.captions:
        in_captions |= mentioned_categories(c.text, negation_window)
    return RecordFacts(present=frozenset(boxed | in_captions), counts=dict(counts), crowd=frozenset(crowd),
                       has_objects=bool(record.objects), caption_only=frozenset(in_captions - boxed))


def chair(pairs: list[Pair], facts: RecordFacts, negation_window: int = 3) -> tuple[Chair, list[tuple[int, list[str]]]]:
    """CHAIR counts of the answers, and for each answer with hallucinations its index and categories."""
    out = Chair()
    bad: list[tuple[int, list[str]]] = []
    for i, (_, answer) in enumerate(pairs):
        named = mentioned_categories(answer, negation_window)
        absent = sorted(named - facts.present)
        out.answers += 1
        out.mentions += len(named)
        out.mentions_hallucinated += len(absent)
        if absent:
            out.answers_hallucinated += 1
            out.categories.update(absent)
            bad.append((i, absent))
    return out, bad


def _norm(text: str) -> str:
    return " ".join(_NORM_RE.sub(" ", text.lower()).split())


def _answer_count(answer: str, category: str, negation_window: int) -> int | None:
    """The number the answer gives for `category`: a number word or digits right before a mention of it,
    else the answer's only number; None when the answer gives no clear number."""
    tokens = tokenize(answer)
    numbers = [(i, _number(t)) for i, t in enumerate(tokens) if _number(t) is not None]
    for m in find_mentions(answer, negation_window):
        if m.category != category:
            continue
        for i, n in numbers:
            if m.start - 3 <= i < m.start:
                return n
    plain = [n for i, n in numbers if tokens[i] not in ("no", "none", "couple", "pair", "single")]
    if len(plain) == 1:
        return plain[0]
    if not plain and "none" in tokens:
        return 0
    return None


def _number(token: str) -> int | None:
    if token.isdigit():
        return int(token)
    return NUMBER_WORDS.get(token)


def count_check(pairs: list[Pair], facts: RecordFacts, negation_window: int = 3) -> Verdict | None:
    """A "how many X" question whose answer's number differs from the record's count of X."""
    if not facts.has_objects:
        return None  # a record without boxes (captions only) cannot be counted
    for i, (question, answer) in enumerate(pairs):
        how_many = _HOW_MANY.search(question) if question is not None else None
        if how_many is None:
            continue
        asked = [m.category for m in find_mentions(question[how_many.end():], negation_window)]
        if not asked:
            continue
        cat = asked[0]
        if cat in facts.crowd or cat in facts.caption_only:
            continue  # a crowd box or a caption-only object: the true count is unknown
        expected = facts.counts.get(cat, 0)
        given = _answer_count(answer, cat, negation_window)
        if given is not None and given != expected:
            return Verdict("wrong_count", f"pair {i + 1}: asked how many {cat}, the answer says {given} but the "
                                          f"record has {expected} ({answer[:80]!r})")
    return None


def _is_counting(question: str | None, answer: str) -> bool:
    return question is not None and bool(_HOW_MANY.search(question)) and any(
        _number(t) is not None for t in tokenize(answer))


def _ngrams(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = _norm(text).split()
    return {tuple(words[k:k + n]) for k in range(len(words) - n + 1)}


def degenerate_check(kind: str, pairs: list[Pair], o: FilterOptions, examples: list[str] = ()) -> Verdict | None:
    """Empty, echoed, repeated, copied, too short, too long or looping outputs. `examples` are the
    few-shot replies shown in the prompt: an answer that copies them was not written for this image."""
    seen: dict[str, int] = {}
    example_grams: set[tuple[str, ...]] = set()
    for e in examples:
        example_grams |= _ngrams(e)
    for i, (question, answer) in enumerate(pairs):
        where = f"pair {i + 1}" if kind == "conversation" else kind
        if question is not None and not question.strip():
            return Verdict("empty_question", f"{where}: the question is empty")
        if not answer.strip():
            return Verdict("empty_answer", f"{where}: the answer is empty")
        words = answer.split()
        if question is not None:
            nq, na = _norm(question), _norm(answer)
            if na == nq or (nq and nq in na and len(words) - len(question.split()) < 3):
                return Verdict("answer_repeats_question", f"{where}: the answer repeats the question "
                                                          f"({answer[:80]!r})")
            if nq in seen:
                return Verdict("repeated_question", f"{where}: the question of pair {seen[nq] + 1} is asked "
                                                    f"again ({question[:80]!r})")
            seen[nq] = i
        minimum = o.min_description_words if kind == "detail" else o.min_answer_words
        if len(words) < minimum and not _is_counting(question, answer):
            return Verdict("answer_too_short", f"{where}: the answer has {len(words)} word(s), fewer than "
                                               f"{minimum} ({answer[:80]!r})")
        if len(words) > o.max_answer_words:
            return Verdict("answer_too_long", f"{where}: the answer has {len(words)} words, more than "
                                              f"filters.max_answer_words={o.max_answer_words}")
        if example_grams:
            grams = _ngrams(answer)
            copied = len(grams & example_grams)
            if grams and copied / len(grams) >= o.max_copied_share:
                return Verdict("copies_example", f"{where}: {copied / len(grams):.0%} of the answer's word runs come "
                                                 f"from the prompt's few-shot example ({answer[:80]!r})")
        if len(words) >= 20:
            lw = [w.lower() for w in words]
            grams = [tuple(lw[k:k + 3]) for k in range(len(lw) - 2)]
            share = len(set(grams)) / len(grams)
            if share < o.min_distinct_trigrams:
                return Verdict("repetitive_answer", f"{where}: the answer loops (only {share:.0%} of its word "
                                                    f"triples are distinct)")
    return None


def language_check(kind: str, pairs: list[Pair], language: str) -> Verdict | None:
    """Generated questions and answers must be in `language` (a detail sample's request comes from the
    template, not the model, and is not checked)."""
    for i, (question, answer) in enumerate(pairs):
        where = f"pair {i + 1}" if kind == "conversation" else kind
        for role, text in (("question", question), ("answer", answer)):
            if text is None or (kind == "detail" and role == "question"):
                continue
            problem = language_problem(text, language)
            if problem is not None:
                return Verdict("wrong_language", f"{where}: the {role} is not in the requested language "
                                                 f"{language!r}: {problem}")
    return None


@dataclass(frozen=True)
class FilterResult:
    verdict: Verdict | None
    #: Names of the filters the sample passed (recorded in its lineage).
    passed: list[str]
    chair: Chair


def run_filters(kind: str, pairs: list[Pair], facts: RecordFacts, o: FilterOptions, language: str,
                examples: list[str] = ()) -> FilterResult:
    """Apply the enabled filters in order (degenerate, language, hallucination, counting); the first
    failure decides. CHAIR counts are computed in any case. The vocabulary is English, so the
    hallucination and counting filters (and CHAIR) apply to English output only."""
    english = language == "en"
    counts, bad = chair(pairs, facts, o.negation_window) if english else (Chair(), [])
    passed: list[str] = []
    if o.degenerate:
        v = degenerate_check(kind, pairs, o, examples)
        if v is not None:
            return FilterResult(v, passed, counts)
        passed.append("degenerate")
    if o.language:
        v = language_check(kind, pairs, language)
        if v is not None:
            return FilterResult(v, passed, counts)
        passed.append("language")
    if o.hallucination and english:
        if bad:
            i, cats = bad[0]
            where = f"pair {i + 1}" if kind == "conversation" else kind
            present = ", ".join(sorted(facts.present)) or "nothing"
            return FilterResult(Verdict("hallucinated_object", f"{where}: the answer names {', '.join(cats)}, "
                                                               f"absent from the record (it has: {present})"),
                                passed, counts)
        passed.append("hallucination")
    if o.counting and english:
        v = count_check(pairs, facts, o.negation_window)
        if v is not None:
            return FilterResult(v, passed, counts)
        passed.append("counting")
    return FilterResult(None, passed, counts)
