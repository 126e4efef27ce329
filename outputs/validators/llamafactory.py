"""The rules LLaMA-Factory's sharegpt loader applies (FORMATS.md, "LLaMA-Factory sharegpt").

Rows are read through the columns and tags of the file's `dataset_info.json` entry (or, for bare rows,
those vlforge writes: messages/images/system columns, role/content/user/assistant tags), as the
loader does. It raises when the `<image>` count differs from `len(images)`, and silently drops rows
whose roles do not alternate user/assistant after an optional leading system message, or that do not
end with an assistant turn; these are reported here, with the row index. Image paths resolve against
`media_dir` (checked when one is given).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from outputs.validators.base import (Violation, as_list, count_image_tokens, is_path_list, json_type,
                                     missing_images, where)

DATASET_INFO = "dataset_info.json"


@dataclass(frozen=True)
class Layout:
    """Column names and message tags (None: not used). The defaults are LLaMA-Factory's own."""

    messages: str | None = "conversations"
    images: str | None = None
    system: str | None = None
    role_tag: str | None = "from"
    content_tag: str | None = "value"
    user_tag: str | None = "human"
    assistant_tag: str | None = "gpt"
    observation_tag: str | None = "observation"
    function_tag: str | None = "function_call"
    system_tag: str | None = "system"

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> "Layout":
        """The layout LLaMA-Factory derives from an entry: a `columns` or `tags` mapping that is present
        replaces every column or tag, missing keys becoming None; an absent one keeps the defaults."""
        base = cls()
        columns, tags = entry.get("columns"), entry.get("tags")
        cols = ("messages", "images", "system")
        tag_names = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
                     "system_tag")
        values = {k: getattr(base, k) for k in cols + tag_names}
        if isinstance(columns, dict):
            values.update({k: columns.get(k) for k in cols})
        if isinstance(tags, dict):
            values.update({k: tags.get(k) for k in tag_names})
        # A name that is not a string can name no column or role (check_entry reports it).
        return cls(**{k: v if isinstance(v, str) else None for k, v in values.items()})

    def side(self, role: str) -> int | None:
        """0 for the user side, 1 for the assistant side, None for any other role."""
        if role in (self.user_tag, self.observation_tag):
            return 0
        if role in (self.assistant_tag, self.function_tag):
            return 1
        return None


#: The layout of vlforge's LLaMA-Factory writer's entry; rows checked without a dataset_info entry use it.
OURS = Layout(messages="messages", images="images", system="system", role_tag="role", content_tag="content",
              user_tag="user", assistant_tag="assistant", observation_tag=None, function_tag=None,
              system_tag="system")


def check_row(i: int, row: Any, layout: Layout = OURS, media_dir: str | None = None) -> list[Violation]:
    """Every LLaMA-Factory rule row `i` breaks, read through `layout`."""
    if not isinstance(row, dict):
        return [Violation(row=i, rule="row_not_object",
                          message=f"row {i} is a JSON {json_type(row)}; each row must be an object "
                                  '{"messages", "images"}')]
    at = where(i, row)
    out: list[Violation] = []

    images: list[str] | None = []
    if layout.images is not None and row.get(layout.images) is not None:
        value = row[layout.images]
        images = value if is_path_list(value) else None
        if images is None:
            out.append(Violation(row=i, rule="bad_image_field",
                                 message=f"{at}: `{layout.images}` is {value!r}; it must be a list of relative "
                                         "paths ([] for a text-only row)"))
    if layout.system is not None and row.get(layout.system) is not None and not isinstance(row[layout.system], str):
        out.append(Violation(row=i, rule="bad_system_field",
                             message=f"{at}: `{layout.system}` is {row[layout.system]!r}; it must be a string"))

    msgs = row.get(layout.messages) if layout.messages is not None else None
    if not isinstance(msgs, list) or not msgs:
        out.append(Violation(row=i, rule="missing_messages",
                             message=f"{at} has no non-empty `{layout.messages}` list; add the messages "
                                     f'[{{"{layout.role_tag}": "{layout.user_tag}", "{layout.content_tag}": ...}}, ...]'))
        return out

    rk, ck = layout.role_tag, layout.content_tag
    bad = [k for k, m in enumerate(msgs)
           if not (isinstance(m, dict) and isinstance(m.get(rk), str) and isinstance(m.get(ck), str))]
    if bad:
        out.append(Violation(row=i, rule="turn_malformed",
                             message=f"{at}: message(s) {bad} are not objects with string `{rk}` and `{ck}`; "
                                     "fix those messages"))
        return out

    roles = [m[rk] for m in msgs]
    start = 1 if layout.system_tag is not None and roles[0] == layout.system_tag else 0
    late_system = [k for k in range(start, len(roles)) if layout.system_tag is not None and roles[k] == layout.system_tag]
    if late_system:
        out.append(Violation(row=i, rule="system_not_first",
                             message=f"{at}: system message(s) at {late_system}; a system message may only come "
                                     f"first (or put the text in the `{layout.system or 'system'}` column)"))
    unknown = [k for k in range(start, len(roles)) if roles[k] != layout.system_tag and layout.side(roles[k]) is None]
    if unknown:
        out.append(Violation(row=i, rule="unknown_role",
                             message=f"{at}: message(s) {unknown} have role {sorted({roles[k] for k in unknown})}; "
                                     f"the dataset's tags accept {layout.user_tag!r} and {layout.assistant_tag!r}"))

    sides = [layout.side(r) for r in roles[start:]]
    if not sides:
        out.append(Violation(row=i, rule="missing_messages",
                             message=f"{at} has only a system message; add user and assistant messages"))
        return out
    if sides[0] == 1:
        out.append(Violation(row=i, rule="first_turn_not_user",
                             message=f"{at}: message {start} is from {roles[start]!r}; the conversation must start "
                                     f"with {layout.user_tag!r} (after an optional system message)"))
    same = [k + start for k in range(1, len(sides)) if sides[k] is not None and sides[k] == sides[k - 1]]
    if same:
        out.append(Violation(row=i, rule="roles_not_alternating",
                             message=f"{at}: message(s) {same} come from the same side as the one before; "
                                     "LLaMA-Factory drops rows whose roles do not alternate user/assistant"))
    if sides[-1] != 1:
        out.append(Violation(row=i, rule="last_turn_not_assistant",
                             message=f"{at} ends with a {roles[-1]!r} message; LLaMA-Factory drops rows that do not "
                                     f"end with {layout.assistant_tag!r}"))

    contents = [m[ck] for m in msgs[start:]]
    empty = [k + start for k, c in enumerate(contents) if not c.strip()]
    if empty:
        out.append(Violation(row=i, rule="empty_value",
                             message=f"{at}: message(s) {empty} have empty `{ck}`; drop the row or fill the message"))

    if images is not None:
        n_tokens = count_image_tokens(contents)
        if n_tokens != len(images):
            out.append(Violation(row=i, rule="image_token_count",
                                 message=f"{at} has {n_tokens} <image> tag(s) for {len(images)} image(s); "
                                         "LLaMA-Factory raises on this: write one <image> per image"))
        if media_dir is not None and images:
            gone = missing_images(images, media_dir)
            if gone:
                out.append(Violation(row=i, rule="image_missing",
                                     message=f"{at}: image(s) {gone} not found under media_dir {media_dir}; "
                                             "check the paths or set media_dir to the image root"))
    return out


def check_entry(entry: Any, file_name: str, rows: list[Any]) -> list[Violation]:
    """Problems of the `dataset_info.json` entry of `file_name`, given the rows it describes."""
    def bad(msg: str) -> Violation:
        return Violation(row=None, rule="dataset_info_inconsistent", message=f"dataset_info.json entry for {file_name}: {msg}")

    if not isinstance(entry, dict):
        return [bad(f"is a JSON {json_type(entry)}, expected an object")]
    out: list[Violation] = []
    if entry.get("formatting") != "sharegpt":
        out.append(bad(f'"formatting" is {entry.get("formatting")!r}; set it to "sharegpt" (the default is alpaca)'))
    for key in ("columns", "tags"):
        if key in entry and not isinstance(entry[key], dict):
            out.append(bad(f'"{key}" is {entry[key]!r}; it must be an object'))
    layout = Layout.from_entry(entry)
    if layout.messages is None:
        out.append(bad('"columns" has no string "messages"; add "messages": "messages"'))
    for tag in ("role_tag", "content_tag", "user_tag", "assistant_tag"):
        if getattr(layout, tag) is None:
            out.append(bad(f'"tags" has no string "{tag}"; LLaMA-Factory then reads no message: add it'))
    objects = [r for r in rows if isinstance(r, dict)]
    for col, what in ((layout.images, "images"), (layout.system, "system")):
        if col is not None and objects and not any(col in r for r in objects):
            out.append(bad(f'"columns" names the {what} column {col!r} but no row has it; LLaMA-Factory fails on '
                           f"the missing column: remove it from \"columns\" or add it to the rows"))
    if layout.images is None and any(r.get("images") for r in objects):
        out.append(bad('rows have "images" but "columns" does not name an images column, so LLaMA-Factory ignores '
                       'them; add "images": "images"'))
    if layout.system is None and any(isinstance(r.get("system"), str) for r in objects):
        out.append(bad('rows have "system" but "columns" does not name a system column, so LLaMA-Factory ignores '
                       'it; add "system": "system"'))
    return out


def validate_llamafactory(rows: Any, media_dir: str | None = None, dataset_info: Any = None,
                          file_name: str | None = None) -> list[Violation]:
    """Every violation of LLaMA-Factory's loader rules in `rows` (the loaded JSON).

    With `dataset_info` (the loaded dataset_info.json) and `file_name`, the entry for that file is
    checked and its columns and tags are used to read the rows; without, vlforge's layout is assumed.
    """
    items, out = as_list(rows)
    layout = OURS
    if dataset_info is not None and file_name is not None:
        if not isinstance(dataset_info, dict):
            out.append(Violation(row=None, rule="dataset_info_malformed",
                                 message=f"dataset_info.json holds a JSON {json_type(dataset_info)}, expected an "
                                         "object of dataset entries"))
        else:
            entry = next((e for e in dataset_info.values() if isinstance(e, dict) and e.get("file_name") == file_name),
                         None)
            if entry is None:
                out.append(Violation(row=None, rule="dataset_info_no_entry",
                                     message=f"dataset_info.json has no entry with \"file_name\": {file_name!r}; "
                                             "add one (vlforge's llamafactory writer writes it)"))
            else:
                out.extend(check_entry(entry, file_name, items or []))
                layout = Layout.from_entry(entry)
    if items is None:
        return out
    for i, row in enumerate(items):
        out.extend(check_row(i, row, layout, media_dir))
    return out


def check_llamafactory_file(path: Path, rows: Any, media_dir: str | None) -> list[Violation]:
    """The file-level entry point: reads `dataset_info.json` beside `path`, then runs every rule."""
    info_path = path.parent / DATASET_INFO
    if not info_path.is_file():
        return [Violation(row=None, rule="dataset_info_missing",
                          message=f"no {DATASET_INFO} in {path.parent}; LLaMA-Factory finds datasets through it: "
                                  "add an entry for this file")] + validate_llamafactory(rows, media_dir)
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        return [Violation(row=None, rule="dataset_info_malformed",
                          message=f"{info_path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                                  "fix it")] + validate_llamafactory(rows, media_dir)
    except UnicodeDecodeError:
        return [Violation(row=None, rule="dataset_info_malformed",
                          message=f"{info_path} is not UTF-8 text; fix it")] + validate_llamafactory(rows, media_dir)
    return validate_llamafactory(rows, media_dir, info, path.name)
