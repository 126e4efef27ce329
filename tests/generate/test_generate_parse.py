"""Parsing replies into question-answer pairs: good, partial and broken replies for each prompt kind."""

from __future__ import annotations

import pytest

from pipeline.generate.parse import ParsedReply, parse_reply
from pipeline.llm.client import ReplyParseError

CONV = ('{"conversation": [{"question": "What is the dog doing?", "answer": "It is running."}, '
        '{"question": "Where?", "answer": "On the grass."}]}')


def test_good_replies() -> None:
    assert parse_reply("conversation", CONV) == ParsedReply(
        [("What is the dog doing?", "It is running."), ("Where?", "On the grass.")], False, 0)
    assert parse_reply("detail", '{"description": "  A dog runs on grass.  "}') == ParsedReply(
        [(None, "A dog runs on grass.")], False, 0)
    assert parse_reply("complex", '```json\n{"question": "Why?", "answer": "Because."}\n```') == ParsedReply(
        [("Why?", "Because.")], False, 0)
    # A bare list of pairs is accepted for a conversation; pairs beyond max_pairs are cut.
    assert parse_reply("conversation", '[{"question": "a?", "answer": "b"}, {"question": "c?", "answer": "d"}]',
                       max_pairs=1) == ParsedReply([("a?", "b")], False, 0)


def test_partial_replies_keep_the_complete_pairs() -> None:
    cut = CONV[: CONV.index('"answer": "On')]
    assert parse_reply("conversation", cut, "length") == ParsedReply(
        [("What is the dog doing?", "It is running.")], True, 0)
    mixed = ('{"conversation": [{"question": "Q1?", "answer": "A1."}, {"question": "Q2?"}, '
             '{"question": "Q3?", "answer": 3}, {"question": "Q4?", "answer": "A4."}]}')
    assert parse_reply("conversation", mixed) == ParsedReply([("Q1?", "A1."), ("Q4?", "A4.")], True, 2)


@pytest.mark.parametrize("kind,text,finish,needle", [
    ("conversation", "Sure! The dog is running on the grass.", "stop", "no JSON object"),
    ("conversation", '{"conversation": [{"question": "Q?", "ans', "length",
     "the reply's JSON is cut off before any complete element (3 bracket(s) left open) (the reply hit the "
     "token limit)"),
    ("conversation", '{"dialogue": "none"}', "stop", 'expected {"conversation": [{"question": ..., "answer": ...}, '
                                                      '...]}, got an object with keys \'dialogue\''),
    ("conversation", '{"conversation": [{"q": "a", "a": "b"}]}', "stop",
     'no item of "conversation" has a "question" and an "answer" string (1 item(s))'),
    ("detail", '{"text": "A dog."}', "stop", 'expected {"description": "..."}, got an object with keys \'text\''),
    ("detail", '{"description": "A dog runs and', "length", "cut off before any complete element"),
    ("complex", '["a", "b"]', "stop", 'expected {"question": "...", "answer": "..."}, got a list of 2 item(s)'),
])
def test_broken_replies_say_what_is_wrong(kind: str, text: str, finish: str, needle: str) -> None:
    with pytest.raises(ReplyParseError) as err:
        parse_reply(kind, text, finish)
    assert needle in str(err.value)
