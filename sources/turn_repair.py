"""Safe repairs of chat rows (ShareGPT, OpenAI messages) into system? (user, assistant)+ conversations.

Raw chat dumps start with the assistant, repeat a role, end on an unanswered question or carry empty
turns. What can be fixed without changing what was said is fixed, and each fix is named (it goes into the
sample's `Lineage.filters` as `repaired:<name>`); anything else raises RowError with a reason code.

Repairs, in the order they are applied:
- `dropped_empty_system`: an empty leading system message is dropped.
- `merged_consecutive_system`: several leading system messages become one (joined by a blank line).
- `dropped_trailing_empty_turn`: empty turns at the end are dropped.
- `dropped_leading_assistant`: assistant turns before the first user turn are dropped.
- `merged_consecutive_user` / `merged_consecutive_assistant`: two turns in a row from one role become one
  (joined by a blank line).
- `dropped_trailing_user`: a last user turn, which has no answer, is dropped.

Rejected: a system message after the conversation began (`system_not_first`), an empty turn that is
not at the end (`empty_turn`), and a conversation with no user/assistant exchange left
(`empty_conversation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sources.text_base import Conversation, Role, RowError


@dataclass
class RawTurn:
    """One turn as read: its role already normalised, its text stripped ('' when empty), and where it was."""

    role: Role
    text: str
    label: str


def repair_turns(raw: list[RawTurn]) -> Conversation:
    """Repair `raw` into an optional system turn then alternating user/assistant turns ending with the
    assistant; raise RowError when that cannot be done safely."""
    repairs: list[str] = []

    def note(name: str) -> None:
        if name not in repairs:
            repairs.append(name)

    if not raw:
        raise RowError("empty_conversation", "the conversation has no turns")

    k = 0
    system: list[str] = []
    while k < len(raw) and raw[k].role == "system":
        if raw[k].text:
            system.append(raw[k].text)
        else:
            note("dropped_empty_system")
        k += 1
    if len(system) > 1:
        note("merged_consecutive_system")
    rest = raw[k:]
    for t in rest:
        if t.role == "system":
            raise RowError("system_not_first", f"{t.label} is a system message after the conversation began; only "
                                               "system messages before the first user or assistant turn are kept. "
                                               "Move it to the start or remove it")
    while rest and not rest[-1].text:
        rest.pop()
        note("dropped_trailing_empty_turn")
    for t in rest:
        if not t.text:
            raise RowError("empty_turn", f"{t.label} ({t.role}) is empty in the middle of the conversation; only "
                                         "empty turns at the end are dropped. Fill it in or remove the row")
    lead = 0
    while lead < len(rest) and rest[lead].role == "assistant":
        lead += 1
    if lead:
        note("dropped_leading_assistant")
        rest = rest[lead:]

    merged: list[tuple[Role, str]] = []
    for t in rest:
        if merged and merged[-1][0] == t.role:
            merged[-1] = (t.role, merged[-1][1] + "\n\n" + t.text)
            note(f"merged_consecutive_{t.role}")
        else:
            merged.append((t.role, t.text))
    if merged and merged[-1][0] == "user":
        merged.pop()
        note("dropped_trailing_user")
    if not merged:
        after = f" after the repairs {', '.join(repairs)}" if repairs else ""
        raise RowError("empty_conversation", f"no user turn answered by the assistant is left{after}; the row has "
                                             "nothing to train on")
    head: list[tuple[Role, str]] = [("system", "\n\n".join(system))] if system else []
    return Conversation(turns=head + merged, repairs=repairs)


def role_table(builtin: dict[str, Role], role_map: dict[str, Role]) -> dict[str, Role]:
    """Role names (lower case) -> role: the built-in names plus the recipe's `role_map`, which wins."""
    return {**builtin, **{name.strip().lower(): role for name, role in role_map.items()}}


def role_of(name: Any, table: dict[str, Role], label: str, key: str) -> Role:
    """The role a turn's role name stands for (case and surrounding spaces ignored); RowError otherwise."""
    if name is None:
        raise RowError("missing_key", f"{label} has no {key!r} value; add it")
    if not isinstance(name, str):
        raise RowError("bad_value", f"{label} has {key!r} {name!r}, expected a role name")
    role = table.get(name.strip().lower())
    if role is None:
        raise RowError("unknown_role", f"{label} has role {name!r}, which is none of {', '.join(sorted(table))}; "
                                       f"map it with `role_map: {{{name}: user}}` (or assistant, system) in the "
                                       "recipe, or fix the row")
    return role
