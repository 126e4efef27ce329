"""Joining encoded rows into one JSON list file, the layout the LLaVA and LLaMA-Factory loaders read."""

from __future__ import annotations


def json_list_text(rows: list[str]) -> str:
    """`rows` (each one JSON value on one line) as a JSON list: one row per line, byte-stable.

    The result parses with `json.loads` and is diff-friendly; an empty list is `[]`.
    """
    if not rows:
        return "[]\n"
    return "[\n" + ",\n".join(rows) + "\n]\n"
