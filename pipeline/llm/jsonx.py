"""Finding the JSON in an LLM reply: plain, fenced in ``` blocks, surrounded by prose, or cut short.

`extract_json` returns the first JSON object (or array holding objects) in the text. When the reply was cut off (the
token limit), it falls back to the longest prefix that ends after a complete element, closed with the
brackets still open: `{"a": [{"q": 1}, {"q": 2` gives `{"a": [{"q": 1}]}`, marked as partial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_CLOSER = {"{": "}", "[": "]"}
#: Brackets tried as the start of the JSON value (prose before it may hold stray brackets).
_MAX_STARTS = 32


class JSONExtractError(ValueError):
    """No JSON value could be found or salvaged in the text."""


@dataclass(frozen=True)
class Extracted:
    value: Any
    #: True when the JSON was cut short and closed by `extract_json` (later elements are lost).
    partial: bool


def extract_json(text: str) -> Extracted:
    """The first JSON object/array in `text`; see the module docstring. Raises JSONExtractError."""
    stripped = text.strip()
    try:
        return Extracted(json.loads(stripped), False)
    except ValueError:
        pass
    starts = [i for i, c in enumerate(stripped) if c in "{["][:_MAX_STARTS]
    if not starts:
        raise JSONExtractError("the reply holds no JSON object (no '{' found)")
    error = "no balanced JSON value"
    fallback: Extracted | None = None
    for start in starts:
        end, stack, cuts = _scan(stripped, start)
        if end is not None:
            try:
                value = json.loads(stripped[start:end])
            except ValueError as e:
                error = f"the reply's JSON does not parse: {e}"
                continue
            if _structured(value):
                return Extracted(value, False)
            fallback = fallback or Extracted(value, False)  # "[1]" in prose: keep looking for an object
            continue
        if fallback is not None:
            return fallback
        # Unbalanced: the reply stopped inside the JSON. Close it after the last complete element.
        for cut, open_stack in reversed(cuts):
            candidate = stripped[start:cut].rstrip().rstrip(",") + "".join(_CLOSER[c] for c in reversed(open_stack))
            try:
                return Extracted(json.loads(candidate), True)
            except ValueError:
                continue
        raise JSONExtractError(f"the reply's JSON is cut off before any complete element "
                               f"({len(stack)} bracket(s) left open)")
    if fallback is not None:
        return fallback
    raise JSONExtractError(error)


def _structured(value: Any) -> bool:
    """An object, or a list holding objects: what a prompt asking for JSON expects."""
    return isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value))


def _scan(s: str, start: int) -> tuple[int | None, list[str], list[tuple[int, list[str]]]]:
    """Walk `s` from `start` (a bracket). Returns (end of the balanced value or None, open brackets at the
    end, cut points after each element that closed inside an enclosing container)."""
    stack: list[str] = []
    cuts: list[tuple[int, list[str]]] = []
    in_str = False
    esc = False
    for i in range(start, len(s)):
        c = s[i]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
            continue
        if c == '"':
            in_str = True
        elif c in "{[":
            stack.append(c)
        elif c in "}]":
            if not stack or _CLOSER[stack[-1]] != c:
                return i + 1, stack, cuts  # mismatched: let json.loads report it
            stack.pop()
            if not stack:
                return i + 1, stack, cuts
            cuts.append((i + 1, list(stack)))
    return None, stack, cuts
