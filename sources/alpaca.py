"""Alpaca instruction data: a JSON list (or JSON Lines) of `{instruction, input, output}`.

A non-empty `input` is appended to the instruction after a blank line, as in Alpaca's own prompt.
LLaMA-Factory's optional Alpaca columns are read too: `system` (a system turn) and `history`
(earlier `[instruction, response]` pairs, oldest first, before the final exchange).
"""

from __future__ import annotations

from typing import Any, ClassVar

from sources.text_base import Conversation, Role, RowError, TextSource, field_text


def alpaca_conversation(row: dict[str, Any]) -> Conversation:
    """One Alpaca row as turns: [system], history pairs, then the instruction (+ input) and the output."""
    instruction = field_text(row, "instruction", "empty_question")
    output = field_text(row, "output", "empty_answer")
    extra = field_text(row, "input", None)
    system = field_text(row, "system", None)
    turns: list[tuple[Role, str]] = [("system", system)] if system else []
    history = row.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise RowError("bad_value", f"'history' holds a {type(history).__name__}, expected a list of "
                                        "[instruction, response] pairs")
        for k, pair in enumerate(history):
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(isinstance(x, str) for x in pair)):
                raise RowError("bad_value", f"history[{k}] is {pair!r}, expected an [instruction, response] pair "
                                            "of two strings")
            q, a = pair[0].strip(), pair[1].strip()
            if not q or not a:
                raise RowError("empty_turn", f"history[{k}] has an empty {'instruction' if not q else 'response'}")
            turns += [("user", q), ("assistant", a)]
    user = f"{instruction}\n\n{extra}" if extra else instruction
    return Conversation(turns=turns + [("user", user), ("assistant", output)])


class AlpacaSource(TextSource):
    """Reads Alpaca rows as text-only samples, one per row."""

    kind: ClassVar[str] = "alpaca"
    layout: ClassVar[str] = "alpaca"

    def convert(self, row: dict[str, Any]) -> Conversation:
        return alpaca_conversation(row)
