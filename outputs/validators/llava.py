"""The rules LLaVA's training loader assumes of its JSON list (FORMATS.md, "LLaVA").

Each row needs an `id` and a non-empty `conversations` list of {"from": "human" | "gpt", "value"};
the first turn is from `human` and the sides strictly alternate; no value is empty; the number of
`<image>` placeholders in the whole conversation equals the number of images (1 for a string
`image`, k for a list of k, 0 when `image` is absent); and, when an image folder is given, every
image file exists under it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from outputs.validators.base import (Violation, as_list, count_image_tokens, is_path_list, json_type,
                                     missing_images, where)

_ROLES = ("human", "gpt")


def _image_paths(row: dict[str, Any]) -> list[str] | None:
    """The row's image paths, or None when `image` is neither a path nor a list of paths."""
    image = row.get("image")
    if image is None:
        return []
    if isinstance(image, str) and image:
        return [image]
    return image if is_path_list(image) and image else None


def _plainly_valid(row: Any) -> bool:
    """True only for the common shape that breaks no rule: a string id, one image path or none, and
    non-empty human/gpt turns alternating from human with one `<image>` per image. Anything else (which may
    or may not be valid) goes through the full check; this keeps the per-row cost of export low."""
    if row.__class__ is not dict:
        return False
    rid = row.get("id")
    if rid.__class__ is not str or not rid:
        return False
    image = row.get("image")
    if image is None:
        n_images = 0
    elif image.__class__ is str and image:
        n_images = 1
    else:
        return False
    conv = row.get("conversations")
    if conv.__class__ is not list or not conv:
        return False
    tokens = 0
    for k, t in enumerate(conv):
        if t.__class__ is not dict:
            return False
        v = t.get("value")
        if t.get("from") != _ROLES[k % 2] or v.__class__ is not str or not v.strip():
            return False
        tokens += v.count("<image>")
    return tokens == n_images


def check_row(i: int, row: Any, image_root: str | None = None) -> list[Violation]:
    """Every LLaVA rule row `i` breaks."""
    if image_root is None and _plainly_valid(row):
        return []
    if not isinstance(row, dict):
        return [Violation(row=i, rule="row_not_object",
                          message=f"row {i} is a JSON {json_type(row)}; each row must be an object "
                                  '{"id", "image", "conversations"}')]
    at = where(i, row)
    out: list[Violation] = []
    rid = row.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool) or rid == "":
        out.append(Violation(row=i, rule="missing_id", message=f"{at} has no `id`; give each row a unique id"))

    images = _image_paths(row)
    if images is None:
        out.append(Violation(row=i, rule="bad_image_field",
                             message=f"{at}: `image` is {row.get('image')!r}; write one relative path, a non-empty "
                                     "list of paths, or leave `image` out for a text-only row"))

    conv = row.get("conversations")
    if not isinstance(conv, list) or not conv:
        out.append(Violation(row=i, rule="missing_conversations",
                             message=f"{at} has no non-empty `conversations` list; add the turns "
                                     '[{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]'))
        return out

    bad = [k for k, t in enumerate(conv)
           if not (isinstance(t, dict) and isinstance(t.get("from"), str) and isinstance(t.get("value"), str))]
    if bad:
        out.append(Violation(row=i, rule="turn_malformed",
                             message=f"{at}: turn(s) {bad} are not objects with string `from` and `value`; "
                                     "fix those turns"))
    turns = [t for t in conv if isinstance(t, dict)]
    values = [t["value"] for t in turns if isinstance(t.get("value"), str)]
    roles = [t.get("from") if isinstance(t, dict) else None for t in conv]

    if images is not None:
        n_tokens = count_image_tokens(values)
        if n_tokens != len(images):
            out.append(Violation(row=i, rule="image_token_count",
                                 message=f"{at} has {n_tokens} <image> placeholder(s) for {len(images)} image(s); "
                                         "write exactly one <image> per image (none for a text-only row)"))

    unknown = [k for k, r in enumerate(roles) if isinstance(r, str) and r not in _ROLES]
    if unknown:
        out.append(Violation(row=i, rule="unknown_role",
                             message=f"{at}: turn(s) {unknown} have `from` "
                                     f"{sorted({roles[k] for k in unknown})}; LLaVA knows only 'human' and 'gpt' "
                                     "(merge a system text into the first human turn)"))
    if roles[0] in _ROLES and roles[0] != "human":
        out.append(Violation(row=i, rule="first_turn_not_human",
                             message=f"{at} starts with a {roles[0]!r} turn; the first turn must be from 'human'"))
    same = [k for k in range(1, len(roles)) if roles[k] in _ROLES and roles[k] == roles[k - 1]]
    if same:
        out.append(Violation(row=i, rule="roles_not_alternating",
                             message=f"{at}: turn(s) {same} come from the same side as the turn before; "
                                     "'human' and 'gpt' must strictly alternate"))

    empty = [k for k, t in enumerate(conv) if isinstance(t, dict) and isinstance(t.get("value"), str)
             and not t["value"].strip()]
    if empty:
        out.append(Violation(row=i, rule="empty_value",
                             message=f"{at}: turn(s) {empty} have an empty `value`; drop the row or fill the turn"))

    if image_root is not None and images:
        gone = missing_images(images, image_root)
        if gone:
            out.append(Violation(row=i, rule="image_missing",
                                 message=f"{at}: image(s) {gone} not found under the image folder {image_root}; "
                                         "check the paths or the image folder"))
    return out


def validate_llava(rows: Any, image_root: str | None = None) -> list[Violation]:
    """Every violation of LLaVA's loader rules in `rows` (the loaded JSON), in row order."""
    items, out = as_list(rows)
    if items is None:
        return out
    for i, row in enumerate(items):
        out.extend(check_row(i, row, image_root))
    return out


def check_llava_file(path: Path, rows: Any, image_root: str | None) -> list[Violation]:
    """The file-level entry point: LLaVA needs nothing beside the data file."""
    return validate_llava(rows, image_root)
