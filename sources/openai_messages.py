"""OpenAI chat fine-tuning rows: JSON Lines (or a JSON list) of `{"messages": [{role, content}]}`.

`content` is a string, null (empty), or a list of text parts (`{"type": "text", "text": ...}`; the
Responses API's `input_text` / `output_text` too), joined by newlines. A part of any other type (an image,
audio, a file) is a bad value here: this source is text-only. Roles: system and developer are the
system, user, assistant (`role_map` adds more); the sequence is repaired like ShareGPT's
(sources/turn_repair.py). Keys other than `role` and `content` (name, weight) are not used.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sources.base import SourceOptions
from sources.text_base import ChatSourceOptions, Conversation, Role, RowError, TextSource
from sources.turn_repair import RawTurn, repair_turns, role_of, role_table

#: OpenAI role names and the role each stands for.
OPENAI_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}

_TEXT_PARTS = ("text", "input_text", "output_text")


def content_text(content: Any, label: str) -> str:
    """A message's content as stripped text: a string, null, or a list of text parts joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    if not isinstance(content, list):
        raise RowError("bad_value", f"{label} has a {type(content).__name__} 'content', expected a string or a "
                                    "list of text parts")
    texts: list[str] = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise RowError("bad_value", f"{label} content part {j} is a {type(part).__name__}, expected "
                                        '{"type": "text", "text": ...}')
        kind = part.get("type")
        if kind not in _TEXT_PARTS:
            raise RowError("bad_value", f"{label} content part {j} has type {kind!r}; a text-only source reads "
                                        "text parts only (read rows with images through an image source)")
        text = part.get("text")
        if not isinstance(text, str):
            raise RowError("bad_value", f"{label} content part {j} has no 'text' string")
        texts.append(text)
    return "\n".join(texts).strip()


def openai_conversation(row: dict[str, Any], role_map: dict[str, Role] | None = None) -> Conversation:
    """One OpenAI messages row as repaired turns."""
    messages = row.get("messages")
    if messages is None:
        have = ", ".join(repr(k) for k in row) or "no keys"
        raise RowError("missing_key", f"the row has no 'messages' value (it has {have}); add it")
    if not isinstance(messages, list):
        raise RowError("bad_value", f"'messages' holds a {type(messages).__name__}, expected a list of "
                                    "{role, content} messages")
    table = role_table(OPENAI_ROLES, role_map or {})
    raw: list[RawTurn] = []
    for k, msg in enumerate(messages):
        label = f"message {k}"
        if not isinstance(msg, dict):
            raise RowError("bad_value", f"{label} is a {type(msg).__name__}, expected an object {{role, content}}")
        role = role_of(msg.get("role"), table, label, "role")
        if "content" not in msg:
            raise RowError("missing_key", f"{label} has no 'content' key; add it")
        raw.append(RawTurn(role, content_text(msg["content"], label), label))
    return repair_turns(raw)


class OpenAIMessagesSource(TextSource):
    """Reads OpenAI chat rows as text-only samples, one per row."""

    kind: ClassVar[str] = "openai_messages"
    layout: ClassVar[str] = "openai_messages"
    Options: ClassVar[type[SourceOptions]] = ChatSourceOptions

    def convert(self, row: dict[str, Any]) -> Conversation:
        assert isinstance(self.options, ChatSourceOptions)
        return openai_conversation(row, self.options.role_map)
