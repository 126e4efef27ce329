"""Reading the fields of one annotation, shared by the COCO and VQA-family readers.

A field that is missing, of the wrong type or empty raises `BadField` with a reason code from
`schemas.reject.REASONS`; the reader turns it into a `Reject` that names its file and record.
Text is stripped and literal placeholders in it are escaped (`schemas.sample.escape_source_text`).
"""

from __future__ import annotations

import re
from typing import Any

from schemas.sample import escape_source_text


class BadField(Exception):
    """One field of one annotation is unusable. `reason` is a REASONS code, `detail` says what is wrong."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def clean_text(value: str) -> str:
    """Strip whitespace and escape placeholders (`<image>`, `<box:`) found in source text."""
    return escape_source_text(value.strip())


def get_text(row: dict[str, Any], key: str, empty_reason: str) -> str:
    """`row[key]` as clean text; raise BadField (`missing_key`, `bad_value` or `empty_reason`)."""
    value = row.get(key)
    if value.__class__ is str:  # the common case, kept short: readers call this for every question
        text = value.strip()
        if text:
            return escape_source_text(text)
    try:
        value = row[key]
    except KeyError:
        raise BadField("missing_key", f"has no {key!r} key") from None
    if not isinstance(value, str):
        # Integers are fine as text (an OCR-VQA answer that is a year); anything else is a mistake.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        else:
            raise BadField("bad_value", f"has {key!r} = {_short(value)}, expected text")
    text = value.strip()
    if not text:
        raise BadField(empty_reason, f"has an empty {key!r}")
    return escape_source_text(text)


def get_id(row: dict[str, Any], key: str) -> int | str:
    """`row[key]` as an id (an integer or a string); raise BadField otherwise."""
    value = row.get(key)
    if value.__class__ is int or value.__class__ is str:
        return value
    try:
        value = row[key]
    except KeyError:
        raise BadField("missing_key", f"has no {key!r} key") from None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadField("bad_value", f"has {key!r} = {_short(value)}, expected an integer or a string id")
    return value


def optional_size(row: dict[str, Any], wkey: str, hkey: str) -> tuple[int | None, int | None]:
    """An image size from two optional keys; raise BadField when present but not positive integers."""
    w, h = row.get(wkey), row.get(hkey)
    if w is None and h is None:
        return None, None
    return _pixels(w, wkey), _pixels(h, hkey)


def required_size(row: dict[str, Any], wkey: str, hkey: str, why: str) -> tuple[int, int]:
    """An image size that must be present (boxes need it); raise BadField naming `why` otherwise."""
    for k in (wkey, hkey):
        if k not in row:
            raise BadField("missing_key", f"has no {k!r} key ({why})")
    return _pixels(row[wkey], wkey), _pixels(row[hkey], hkey)


def _pixels(value: Any, key: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadField("bad_value", f"has {key!r} = {_short(value)}, expected a positive integer")
    return value


def most_frequent(answers: list[str]) -> str | None:
    """The most frequent non-empty answer, ties broken by first occurrence; None when all are empty.

    Answers are compared after `clean_text`, so "yes" and " yes" count as one answer."""
    counts: dict[str, int] = {}
    for a in answers:
        if a:
            counts[a] = counts.get(a, 0) + 1
    if not counts:
        return None
    # dicts keep insertion order and max() keeps the first of equal keys: ties go to the first seen.
    return max(counts, key=counts.__getitem__)


_SPLIT_RE = re.compile(r"(?:^|[_.\-/])(train|val|minival|restval|test-dev|testdev|test|challenge|submission)"
                       r"(?:\d{4})?(?=[_.\-]|$)")


def split_from_name(name: str | None) -> str | None:
    """The split a file or COCO subtype name carries: captions_val2017.json -> val,
    testdev_balanced_questions.json -> testdev, test-dev2015 -> test-dev; None when it names none."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    m = _SPLIT_RE.search(base)
    return m.group(1) if m else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_FIXES: dict[str, str] = {
    "empty_answer": "it is skipped (an empty text cannot be trained on)",
    "empty_question": "it is skipped (an empty text cannot be trained on)",
    "empty_caption": "it is skipped (an empty text cannot be trained on)",
    "unknown_category": "it is skipped; add the category to the file's 'categories' to keep it",
}


def field_message(kind: str, label: str, file: str, err: BadField, hint: str = "") -> str:
    """The reject message for a bad field: source kind, the record (`label`, e.g. "annotation 7 (image 9)"),
    the file, what is wrong and what to do."""
    fix = hint or _FIXES.get(err.reason, "it is skipped; fix it in the file to keep it")
    return f"{kind}: {label} in {file} {err.detail}; {fix}"
