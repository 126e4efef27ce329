"""Reading a data file for validation: never raises, reports what cannot be read as violations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from outputs.validators.base import Violation


def load_rows(path: Path) -> tuple[Any, list[Violation]]:
    """(loaded JSON or None, violations). A `.jsonl` file is read line by line into a list of rows;
    anything else is one JSON document. Malformed JSON is one violation naming the line and column."""
    if not path.is_file():
        return None, [Violation(row=None, rule="file_missing", message=f"{path} does not exist; check the path")]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return None, [Violation(row=None, rule="malformed_json",
                                message=f"{path} is not UTF-8 text (byte {e.start}); re-save it as UTF-8")]
    if path.suffix == ".jsonl":
        rows: list[Any] = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                return None, [Violation(row=None, rule="malformed_json",
                                        message=f"{path} is not valid JSON Lines (line {n}, column {e.colno}: "
                                                f"{e.msg}); fix the line there")]
        return rows, []
    try:
        return json.loads(text), []
    except json.JSONDecodeError as e:
        return None, [Violation(row=None, rule="malformed_json",
                                message=f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                                        "fix the file there")]
