"""The rules of OpenAI chat fine-tuning data (JSON Lines of {"messages": [{"role", "content"}...]}).

Each row is an object with a non-empty `messages` list; each message has a string `role` among
system, developer, user, assistant and tool, and a string `content` (an assistant message that makes
`tool_calls` may have null content); the last message is the assistant's (the reply trained on). The
format vlforge writes is text-only, so a `<image>` placeholder in a message is a leftover with no image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from outputs.validators.base import IMAGE_TOKEN, Violation, as_list, json_type, where
from outputs.validators.messages import order_violations

ROLES = ("system", "developer", "user", "assistant", "tool")
_ORDER = ("unknown_role", "last_turn_not_assistant")
_LOADER = "OpenAI chat fine-tuning"


def _message_ok(m: Any) -> bool:
    if not (isinstance(m, dict) and isinstance(m.get("role"), str)):
        return False
    content = m.get("content")
    return isinstance(content, str) or (content is None and m["role"] == "assistant" and bool(m.get("tool_calls")))


def check_row(i: int, row: Any) -> list[Violation]:
    """Every OpenAI chat rule row `i` breaks."""
    if not isinstance(row, dict):
        return [Violation(row=i, rule="row_not_object",
                          message=f"row {i} is a JSON {json_type(row)}; each line must be an object "
                                  '{"messages": [...]}')]
    at = where(i, row)
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return [Violation(row=i, rule="missing_messages",
                          message=f"{at} has no non-empty `messages` list; add the conversation as "
                                  '[{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]')]
    out: list[Violation] = []
    ok = [_message_ok(m) for m in msgs]
    bad = [k for k, good in enumerate(ok) if not good]
    if bad:
        out.append(Violation(row=i, rule="turn_malformed",
                             message=f"{at}: message(s) {bad} are not objects with a string `role` and a string "
                                     "`content` (this format is text-only: no content parts); fix those messages"))
    roles = [m["role"] if isinstance(m, dict) and isinstance(m.get("role"), str) else None for m in msgs]
    out.extend(order_violations(i, at, roles, ROLES, _ORDER, _LOADER))
    placeholders = [k for k, (m, good) in enumerate(zip(msgs, ok))
                    if good and isinstance(m["content"], str) and IMAGE_TOKEN in m["content"]]
    if placeholders:
        out.append(Violation(row=i, rule="image_token_count",
                             message=f"{at}: message(s) {placeholders} hold an <image> placeholder, but this text-only "
                                     "format has no images; drop the row or the placeholder"))
    return out


def validate_openai_chat(rows: Any) -> list[Violation]:
    """Every violation of the OpenAI chat rules in `rows` (the loaded JSON Lines), in row order."""
    items, out = as_list(rows)
    if items is None:
        return out
    for i, row in enumerate(items):
        out.extend(check_row(i, row))
    return out


def check_openai_chat_file(path: Path, rows: Any, image_root: str | None) -> list[Violation]:
    """The file-level entry point: the format has no images, so `image_root` is not used."""
    return validate_openai_chat(rows)
