"""What the trainer-format validators report, and the checks the formats share.

A validator reads rows as a trainer's loader would and returns every `Violation` it finds, each with
the index of its row (None for a problem with the file as a whole) and a rule code from `RULES`.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

IMAGE_TOKEN = "<image>"

#: Rule codes and what each means. Every Violation carries one of these.
RULES: dict[str, str] = {
    "file_missing": "the data file does not exist",
    "malformed_json": "the file (or a JSONL line) is not valid JSON in UTF-8",
    "not_a_list": "the file's top level is not a JSON list of rows",
    "row_not_object": "a row is not a JSON object",
    "missing_id": "a LLaVA row has no non-empty `id`",
    "missing_conversations": "a LLaVA row has no non-empty `conversations` list",
    "missing_messages": "a row (LLaMA-Factory, HF, TRL, OpenAI chat) has no non-empty messages list",
    "turn_malformed": "a turn is not an object with a string role and a string text",
    "bad_image_field": "the image field is not a path, or a list of paths where the format wants one",
    "bad_system_field": "the system column holds something other than a string",
    "image_token_count": "the number of <image> placeholders differs from the number of images",
    "unknown_role": "a turn has a role the loader does not know",
    "first_turn_not_human": "the first LLaVA turn is not from `human`",
    "first_turn_not_user": "the first LLaMA-Factory message (after an optional system one) is not from the user",
    "roles_not_alternating": "two consecutive turns come from the same side",
    "system_not_first": "a system message comes after the first message",
    "last_turn_not_assistant": "the conversation does not end with an assistant turn",
    "empty_value": "a turn's text is empty",
    "image_missing": "an image file does not exist under the image folder",
    "dataset_info_missing": "there is no dataset_info.json beside the LLaMA-Factory data file",
    "dataset_info_malformed": "dataset_info.json is not a JSON object",
    "dataset_info_no_entry": "dataset_info.json has no entry whose file_name is the data file",
    "dataset_info_inconsistent": "the dataset_info.json entry does not match the rows (formatting, columns, tags)",
    # HF datasets, TRL and OpenAI chat (outputs/validators/hf.py, trl.py, openai_chat.py)
    "unreadable_dataset": "a parquet or Arrow file (or save_to_disk folder) cannot be read as a dataset",
    "missing_column": "the dataset or row lacks a column its loader reads (messages, images)",
    "content_malformed": "a TRL message's content is not a list of {type: text, text} and {type: image} blocks",
    "image_block_not_bare": "a TRL image block carries an `image` key (even null) or other data: TRL then does "
                            "not count it as a slot for the images column",
    "image_block_count": "the number of TRL image blocks differs from the number of images",
    "image_token_in_text": "a TRL text block holds a literal <image>, which processors whose image token is "
                           "<image> (LLaVA) count as one more image",
    "image_not_embedded": "a parquet or Arrow dataset holds an image as a path without its bytes, so it is not "
                          "self-contained",
    "image_undecodable": "an image's bytes (or file) cannot be decoded as an image",
}


class Violation(BaseModel):
    """One broken loader rule: the row (None: the whole file), the rule code and a message with the fix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    row: int | None
    rule: str
    message: str

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, v: str) -> str:
        if v not in RULES:
            raise ValueError(f"unknown rule code {v!r}; add it to outputs/validators/base.py RULES")
        return v


def where(i: int, row: Any) -> str:
    """`row 3` or `row 3 (id 'x')`, for messages."""
    rid = row.get("id") if isinstance(row, dict) else None
    return f"row {i} (id {rid!r})" if isinstance(rid, (str, int)) and not isinstance(rid, bool) else f"row {i}"


def json_type(value: Any) -> str:
    """The JSON name of a loaded value's type (object, array, string, ...), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def count_image_tokens(texts: list[str]) -> int:
    return sum(t.count(IMAGE_TOKEN) for t in texts)


def missing_images(paths: list[str], image_root: str) -> list[str]:
    """The paths that are not files when joined to `image_root` (as the loaders join them)."""
    return [p for p in paths if not os.path.isfile(os.path.join(image_root, p))]


def is_path_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(p, str) and p for p in value)


def as_list(data: Any) -> tuple[list[Any] | None, list[Violation]]:
    """The rows when `data` is a JSON list, else (None, the `not_a_list` violation)."""
    if isinstance(data, list):
        return data, []
    return None, [Violation(row=None, rule="not_a_list",
                            message=f"the file holds a JSON {json_type(data)}, expected a list of row objects; "
                                    "wrap the rows in [...]")]
