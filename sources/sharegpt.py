"""ShareGPT conversations: a JSON list (or JSON Lines) of `{id, conversations: [{from, value}]}`.

Role names are normalised: human and user are the user; gpt, assistant, chatgpt, bing and bard the
assistant; system the system (case ignored; `role_map` adds more). Raw dumps that start with the
assistant, repeat a role, end on a question or carry empty turns are repaired where that is safe and
rejected otherwise (sources/turn_repair.py); multi-turn conversations are kept whole. LLaMA-Factory's
optional row-level `system` string becomes the system turn.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sources.base import SourceOptions
from sources.text_base import ChatSourceOptions, Conversation, Role, RowError, TextSource, field_text
from sources.turn_repair import RawTurn, repair_turns, role_of, role_table

#: ShareGPT `from` values (lower case) and the role each stands for.
SHAREGPT_ROLES: dict[str, Role] = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
    "system": "system",
}


def _value_text(value: Any, label: str) -> str:
    """A turn's `value` as stripped text; null counts as empty."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError("bad_value", f"{label} has a {type(value).__name__} 'value', expected text")
    return str(value).strip()


def sharegpt_conversation(row: dict[str, Any], role_map: dict[str, Role] | None = None) -> Conversation:
    """One ShareGPT row as repaired turns."""
    conv = row.get("conversations")
    if conv is None:
        have = ", ".join(repr(k) for k in row) or "no keys"
        raise RowError("missing_key", f"the row has no 'conversations' value (it has {have}); add it")
    if not isinstance(conv, list):
        raise RowError("bad_value", f"'conversations' holds a {type(conv).__name__}, expected a list of "
                                    "{from, value} turns")
    table = role_table(SHAREGPT_ROLES, role_map or {})
    raw: list[RawTurn] = []
    system = field_text(row, "system", None)
    if system:
        raw.append(RawTurn("system", system, "the row's 'system' field"))
    for k, turn in enumerate(conv):
        label = f"turn {k}"
        if not isinstance(turn, dict):
            raise RowError("bad_value", f"{label} is a {type(turn).__name__}, expected an object {{from, value}}")
        role = role_of(turn.get("from"), table, label, "from")
        if "value" not in turn:
            raise RowError("missing_key", f"{label} has no 'value' key; add it")
        raw.append(RawTurn(role, _value_text(turn["value"], label), label))
    return repair_turns(raw)


class ShareGPTSource(TextSource):
    """Reads ShareGPT rows as text-only samples, one per conversation."""

    kind: ClassVar[str] = "sharegpt"
    layout: ClassVar[str] = "sharegpt"
    Options: ClassVar[type[SourceOptions]] = ChatSourceOptions

    def convert(self, row: dict[str, Any]) -> Conversation:
        assert isinstance(self.options, ChatSourceOptions)
        return sharegpt_conversation(row, self.options.role_map)
