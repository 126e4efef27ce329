"""Turning an LLM reply into question-answer pairs, for each self-instruct prompt kind.

Good reply: the JSON the prompt asked for. Partial reply: JSON cut off by the token limit, or a
conversation where some pairs are malformed; the complete, well-formed pairs are kept and the reply is
marked partial (lineage records `parse:partial`). Broken reply: no usable JSON, or nothing of the
expected shape; `ReplyParseError` says what is wrong (the client then asks the model to repair it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pipeline.llm.client import Completion, ReplyParseError
from pipeline.llm.jsonx import JSONExtractError, extract_json


@dataclass(frozen=True)
class ParsedReply:
    """Pairs of (question, answer); for `detail` the question is None (the sample's request is chosen
    from the template's instructions). `dropped` counts malformed pairs left out."""

    pairs: list[tuple[str | None, str]]
    partial: bool
    dropped: int = 0


def _text(v: Any) -> str | None:
    return v.strip() if isinstance(v, str) else None


def _pair(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, dict):
        return None
    q, a = _text(item.get("question")), _text(item.get("answer"))
    if q is None or a is None:
        return None
    return q, a


def parse_reply(kind: str, content: str, finish_reason: str | None = None, max_pairs: int = 6) -> ParsedReply:
    """Parse `content` for prompt `kind`; raise ReplyParseError when nothing usable is in it."""
    try:
        ex = extract_json(content)
    except JSONExtractError as e:
        cut = " (the reply hit the token limit)" if finish_reason == "length" else ""
        raise ReplyParseError(f"{e}{cut}") from None
    value, partial = ex.value, ex.partial
    if kind == "conversation":
        items = value.get("conversation") if isinstance(value, dict) else value
        if not isinstance(items, list):
            raise ReplyParseError('expected {"conversation": [{"question": ..., "answer": ...}, ...]}, '
                                  f"got {_shape(value)}")
        pairs = [p for p in (_pair(it) for it in items) if p is not None]
        dropped = len(items) - len(pairs)
        if not pairs:
            raise ReplyParseError(f'no item of "conversation" has a "question" and an "answer" string '
                                  f"({len(items)} item(s))")
        if len(pairs) > max_pairs:
            pairs = pairs[:max_pairs]
        return ParsedReply(list(pairs), partial or dropped > 0, dropped)
    if kind == "detail":
        d = _text(value.get("description")) if isinstance(value, dict) else None
        if d is None:
            raise ReplyParseError(f'expected {{"description": "..."}}, got {_shape(value)}')
        return ParsedReply([(None, d)], partial)
    if kind == "complex":
        p = _pair(value)
        if p is None:
            raise ReplyParseError(f'expected {{"question": "...", "answer": "..."}}, got {_shape(value)}')
        return ParsedReply([p], partial)
    raise ValueError(f"unknown self-instruct prompt {kind!r}")


def completion_parser(kind: str, max_pairs: int) -> Callable[[Completion], ParsedReply]:
    """A `parse` callable for `LLMClient.chat_json`."""

    def parse(c: Completion) -> ParsedReply:
        return parse_reply(kind, c.content, c.finish_reason, max_pairs)

    return parse


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(repr(k) for k in list(value)[:6])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    return f"a JSON {type(value).__name__}"
