"""Databricks Dolly: JSON Lines (or a JSON list) of `{instruction, context, response, category}`.

A non-empty `context` (the passage the instruction is about) comes first, then a blank line and the
instruction, so that the question is read after the text it refers to. `category` is not used.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sources.text_base import Conversation, TextSource, field_text


def dolly_conversation(row: dict[str, Any]) -> Conversation:
    """One Dolly row as a user turn (context, then instruction) and the assistant's response."""
    instruction = field_text(row, "instruction", "empty_question")
    response = field_text(row, "response", "empty_answer")
    context = field_text(row, "context", None)
    user = f"{context}\n\n{instruction}" if context else instruction
    return Conversation(turns=[("user", user), ("assistant", response)])


class DollySource(TextSource):
    """Reads Dolly rows as text-only samples, one per row."""

    kind: ClassVar[str] = "dolly"
    layout: ClassVar[str] = "dolly"

    def convert(self, row: dict[str, Any]) -> Conversation:
        return dolly_conversation(row)
