"""The OpenAI chat validator: each bad-row fixture is caught at its row; tool calls and developer messages pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from outputs.validators import VALIDATORS, Violation, validate_file, validate_openai_chat
from outputs.validators.openai_chat import check_openai_chat_file
from pipeline.cli import main

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "outputs"
# Row 0 (a system message) and row 7 (developer message, tool call with null content, tool reply) are valid.
OPENAI_BAD = [(1, "row_not_object"), (2, "missing_messages"), (3, "turn_malformed"), (4, "unknown_role"),
              (5, "last_turn_not_assistant"), (6, "image_token_count")]


def pairs(violations: list[Violation]) -> list[tuple[int | None, str]]:
    return [(v.row, v.rule) for v in violations]


def test_registered() -> None:
    assert VALIDATORS["openai_chat"] is check_openai_chat_file


def test_bad_rows_each_caught_at_their_row() -> None:
    assert pairs(validate_file(ASSETS / "openai_bad.jsonl", "openai_chat")) == OPENAI_BAD


def test_messages_name_the_row_and_the_fix() -> None:
    found = validate_file(ASSETS / "openai_bad.jsonl", "openai_chat")
    assert found[3].message == ("row 4: message(s) [1] have role(s) ['bot']; OpenAI chat fine-tuning accepts "
                                "['system', 'developer', 'user', 'assistant', 'tool']")
    assert found[4].message == ("row 5 ends with a 'user' message; OpenAI chat fine-tuning trains on the assistant's "
                                "replies: end with an assistant message")


def test_pure_rows() -> None:
    assert validate_openai_chat([{"messages": [{"role": "user", "content": "Hi"},
                                               {"role": "assistant", "content": "Hello"}]}]) == []
    assert pairs(validate_openai_chat({"messages": []})) == [(None, "not_a_list")]


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ASSETS / "openai_bad.jsonl"), "--format", "openai_chat"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "row 1: [row_not_object] row 1 is a JSON array; each line must be an object {\"messages\": [...]}"
    assert out[-1] == f"{ASSETS / 'openai_bad.jsonl'}: {len(OPENAI_BAD)} violation(s) of the openai_chat loader rules"
