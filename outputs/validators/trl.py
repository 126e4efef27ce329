"""The rules TRL's vision SFT path applies (FORMATS.md, "TRL vision SFT").

`DataCollatorForVisionLanguageModeling` reads `messages` and `images` from each row and calls
`trl.data_utils.prepare_multimodal_messages(messages, images)`, which:
- accepts roles system, user, assistant and tool, and raises on any other;
- turns string content into a text block, putting one image block per image before the FIRST user
  message whose content is a string;
- counts as image slots only image blocks WITHOUT an `"image"` key, and raises when that count differs
  from `len(images)`; a block that carries `"image"` (even null) is taken as already filled.
Checked here, beyond those: content blocks are {type: text, text: string} or {type: image}; an image
block has no other data (null fields are what Arrow's struct columns add on reading, and TRL ignores
them); no literal `<image>` in text (LLaVA-style processors would count it as an image); an optional
system message first, then user and assistant alternating; images decode and, in parquet or Arrow,
are embedded as bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from outputs.validators.base import IMAGE_TOKEN, Violation, json_type, where
from outputs.validators.dataset_load import as_table
from outputs.validators.images import check_images
from outputs.validators.messages import order_violations

REQUIRED = ("messages", "images")
ROLES = ("system", "user", "assistant", "tool")
_ORDER = ("unknown_role", "system_not_first", "roles_not_alternating")
_LOADER = "TRL"


def _content_problems(content: Any, has_tool_calls: bool) -> tuple[bool, int, bool, bool]:
    """(content malformed, TRL image slots, an image block not bare, a literal <image> in text)."""
    if isinstance(content, str):
        return False, 0, False, IMAGE_TOKEN in content
    if content is None:
        return not has_tool_calls, 0, False, False
    if not isinstance(content, list):
        return True, 0, False, False
    malformed, slots, not_bare, token = False, 0, False, False
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            token = token or IMAGE_TOKEN in block["text"]
        elif kind == "image":
            if "image" in block or any(v is not None for k, v in block.items() if k != "type"):
                not_bare = True
            if "image" not in block:
                slots += 1
        else:
            malformed = True
    return malformed, slots, not_bare, token


def check_row(i: int, row: Any, image_root: str | None = None, in_dataset: bool = False,
              at: str | None = None) -> list[Violation]:
    """Every TRL rule row `i` breaks (`in_dataset`: read from parquet/Arrow, columns checked already)."""
    if not isinstance(row, dict):
        return [Violation(row=i, rule="row_not_object",
                          message=f"row {i} is a JSON {json_type(row)}; each row must be an object with "
                                  '"messages" and "images"')]
    at = at or where(i, row)
    out: list[Violation] = []
    if not in_dataset:
        out.extend(Violation(row=i, rule="missing_column",
                             message=f"{at} has no {col!r}; TRL's vision collator reads it: add it "
                                     "(an empty list of images for a text-only row)")
                   for col in REQUIRED if col not in row)

    msgs = row.get("messages")
    slots: int | None = None
    if "messages" in row and (not isinstance(msgs, list) or not msgs):
        out.append(Violation(row=i, rule="missing_messages",
                             message=f"{at}: `messages` is not a non-empty list; add the conversation as "
                                     '[{"role": "user", "content": [...]}, {"role": "assistant", "content": [...]}]'))
    elif isinstance(msgs, list):
        bad_turns, bad_content, not_bare, token = [], [], [], []
        roles: list[str | None] = []
        slots, string_user = 0, False
        for k, m in enumerate(msgs):
            if not (isinstance(m, dict) and isinstance(m.get("role"), str)):
                bad_turns.append(k)
                roles.append(None)
                continue
            roles.append(m["role"])
            malformed, n, loose, literal = _content_problems(m.get("content"), bool(m.get("tool_calls")))
            if malformed:
                bad_content.append(k)
            if loose:
                not_bare.append(k)
            if literal:
                token.append(k)
            if m["role"] != "tool":
                slots += n
            string_user = string_user or (m["role"] == "user" and isinstance(m.get("content"), str))
        if bad_turns:
            out.append(Violation(row=i, rule="turn_malformed",
                                 message=f"{at}: message(s) {bad_turns} are not objects with a string `role`; "
                                         "fix those messages"))
        if bad_content:
            out.append(Violation(row=i, rule="content_malformed",
                                 message=f"{at}: message(s) {bad_content} have content that is not a list of "
                                         '{"type": "text", "text": ...} and {"type": "image"} blocks; fix it'))
        if not_bare:
            out.append(Violation(row=i, rule="image_block_not_bare",
                                 message=f"{at}: message(s) {not_bare} have image blocks with more than "
                                         '{"type": "image"} (an "image" key, even null, makes TRL skip the block '
                                         'when it places the images); write exactly {"type": "image"}'))
        if token:
            out.append(Violation(row=i, rule="image_token_in_text",
                                 message=f"{at}: message(s) {token} have a literal <image> in their text; use an "
                                         '{"type": "image"} block for an image, or reword the text'))
        out.extend(order_violations(i, at, roles, ROLES, _ORDER, _LOADER))
        if string_user and "images" in row and isinstance(row["images"], list):
            slots += len(row["images"])  # TRL puts one block per image before the first string user message

    if "images" in row:
        n_images, found = check_images(i, at, row["images"], image_root, in_dataset)
        out.extend(found)
        if n_images is not None and slots is not None and slots != n_images:
            out.append(Violation(row=i, rule="image_block_count",
                                 message=f"{at} has {slots} image block(s) for {n_images} image(s); TRL raises on "
                                         'this: write one {"type": "image"} block per image'))
    return out


def validate_trl(rows: Any, image_root: str | None = None) -> list[Violation]:
    """Every violation of TRL's vision SFT rules in `rows` (loaded JSON rows, or a dataset's rows)."""
    table, out = as_table(rows, REQUIRED, "TRL's vision collator")
    if table is None:
        return out
    for i, row in enumerate(table.rows):
        out.extend(check_row(i, row, image_root, table.in_dataset, table.at(i, row)))
    return out


def check_trl_file(path: Path, rows: Any, image_root: str | None) -> list[Violation]:
    """The file-level entry point: a dataset needs nothing beside its files."""
    return validate_trl(rows, image_root)
