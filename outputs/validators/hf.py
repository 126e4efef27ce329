"""The rules a Hugging Face datasets output is read by (FORMATS.md, "HF datasets").

Rows have a `messages` column of {"role", "content": string} (the sharegpt/OpenAI layout that
LLaMA-Factory and chat templates read from a HF dataset) and an `images` column. Checked: both
columns exist; messages are objects with string role and content, roles are system/user/assistant,
an optional system message first, then user and assistant alternating from the user to a last
assistant message, no empty content; the number of `<image>` placeholders equals the number of images;
images decode; in parquet or Arrow every image is embedded as bytes (with an image folder, paths in
JSON rows must exist under it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from outputs.validators.base import Violation, count_image_tokens, json_type, where
from outputs.validators.dataset_load import as_table
from outputs.validators.images import check_images
from outputs.validators.messages import order_violations

REQUIRED = ("messages", "images")
ROLES = ("system", "user", "assistant")
_ORDER = ("unknown_role", "system_not_first", "first_turn_not_user", "roles_not_alternating", "last_turn_not_assistant")
_LOADER = "a HF messages dataset"


def check_row(i: int, row: Any, image_root: str | None = None, in_dataset: bool = False,
              at: str | None = None) -> list[Violation]:
    """Every HF dataset rule row `i` breaks (`in_dataset`: read from parquet/Arrow, columns checked already)."""
    if not isinstance(row, dict):
        return [Violation(row=i, rule="row_not_object",
                          message=f"row {i} is a JSON {json_type(row)}; each row must be an object with "
                                  '"messages" and "images"')]
    at = at or where(i, row)
    out: list[Violation] = []
    if not in_dataset:
        out.extend(Violation(row=i, rule="missing_column",
                             message=f"{at} has no {col!r}; add it (an empty list of images for a text-only row)")
                   for col in REQUIRED if col not in row)

    msgs = row.get("messages")
    n_tokens: int | None = None
    if "messages" in row and (not isinstance(msgs, list) or not msgs):
        out.append(Violation(row=i, rule="missing_messages",
                             message=f"{at}: `messages` is not a non-empty list; add the conversation as "
                                     '[{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]'))
    elif isinstance(msgs, list):
        ok = [isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
              for m in msgs]
        bad = [k for k, good in enumerate(ok) if not good]
        if bad:
            out.append(Violation(row=i, rule="turn_malformed",
                                 message=f"{at}: message(s) {bad} are not objects with a string `role` and a string "
                                         "`content`; fix those messages"))
        roles = [m["role"] if isinstance(m, dict) and isinstance(m.get("role"), str) else None for m in msgs]
        out.extend(order_violations(i, at, roles, ROLES, _ORDER, _LOADER))
        contents = [m["content"] for m, good in zip(msgs, ok) if good]
        empty = [k for k, (m, good) in enumerate(zip(msgs, ok)) if good and not m["content"].strip()]
        if empty:
            out.append(Violation(row=i, rule="empty_value",
                                 message=f"{at}: message(s) {empty} have empty `content`; drop the row or fill them"))
        n_tokens = count_image_tokens(contents)

    if "images" in row:
        n_images, found = check_images(i, at, row["images"], image_root, in_dataset)
        out.extend(found)
        if n_images is not None and n_tokens is not None and n_tokens != n_images:
            out.append(Violation(row=i, rule="image_token_count",
                                 message=f"{at} has {n_tokens} <image> placeholder(s) for {n_images} image(s); write "
                                         "exactly one <image> per image (none for a text-only row)"))
    return out


def validate_hf(rows: Any, image_root: str | None = None) -> list[Violation]:
    """Every violation of the HF dataset rules in `rows` (loaded JSON rows, or a dataset's rows)."""
    table, out = as_table(rows, REQUIRED, _LOADER)
    if table is None:
        return out
    for i, row in enumerate(table.rows):
        out.extend(check_row(i, row, image_root, table.in_dataset, table.at(i, row)))
    return out


def check_hf_file(path: Path, rows: Any, image_root: str | None) -> list[Violation]:
    """The file-level entry point: a dataset needs nothing beside its files."""
    return validate_hf(rows, image_root)
