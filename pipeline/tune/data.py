"""Reading what the build wrote: LLaVA JSON, or an HF datasets folder (save_to_disk or parquet).

Both become `TuneExample`s: an id, the images (paths under the image root, or already decoded PIL images
from an HF dataset) and chat messages `{role, content}` with `<image>` placeholders in user content.
A row that cannot be trained on becomes a `Reject` with a reason code; a file that cannot be read at
all raises `TuneDataError` naming the file and the fix.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from schemas.image import ImageResolver
from schemas.reject import REASONS, Reject
from schemas.sample import IMAGE_TOKEN

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


class TuneDataError(Exception):
    """A training data file is unusable as a whole. The message names the file and the fix."""


@dataclass
class TuneExample:
    """One conversation to train or evaluate on."""

    id: str
    messages: list[dict[str, str]]
    #: Absolute image paths, or decoded images (HF datasets embed them); one per `<image>`, in order.
    images: list[str | Image.Image] = field(default_factory=list)

    @property
    def text_only(self) -> bool:
        return not self.images


def _reject(reason: str, message: str, file: str, record: str | None) -> Reject:
    return Reject(reason=reason, message=message, stage="tune", source="tune_data", file=file, record=record,
                  sample_id=record)


def _check_messages(messages: list[dict[str, str]], n_images: int) -> tuple[str, str] | None:
    """Return (reason, message) when the conversation breaks a rule the trainer relies on."""
    turns = [m for m in messages if m["role"] != "system"]
    if not turns or turns[0]["role"] != "user":
        return "first_turn_not_user", "the conversation must start with a user (human) turn"
    for a, b in zip(turns, turns[1:]):
        if a["role"] == b["role"]:
            return "roles_not_alternating", f"two {a['role']} turns in a row"
    if turns[-1]["role"] != "assistant":
        return "roles_not_alternating", "the conversation ends without an assistant answer"
    for m in messages:
        if not m["content"].strip():
            return "empty_turn", f"a {m['role']} turn has no text"
    n_tokens = sum(m["content"].count(IMAGE_TOKEN) for m in messages)
    if any(IMAGE_TOKEN in m["content"] for m in messages if m["role"] != "user"):
        return "image_token_mismatch", "an <image> placeholder appears outside a user turn"
    if n_tokens != n_images:
        return "image_token_mismatch", f"{n_tokens} <image> placeholder(s) for {n_images} image(s)"
    return None


def load_llava_json(path: str, image_root: str) -> tuple[list[TuneExample], list[Reject]]:
    """Read a LLaVA JSON list (`id`, optional `image`, `conversations` of {from, value})."""
    try:
        with open(path, encoding="utf-8") as f:
            rows = json.load(f)
    except FileNotFoundError:
        raise TuneDataError(f"tune data {path}: file not found. Point `data_path` at the LLaVA JSON the build "
                            f"wrote (under outputs.dir)") from None
    except json.JSONDecodeError as e:
        raise TuneDataError(f"tune data {path}: not valid JSON ({e}). Rebuild it or fix the file") from None
    if not isinstance(rows, list):
        raise TuneDataError(f"tune data {path}: expected a JSON list of LLaVA records, got "
                            f"{type(rows).__name__}. Is this a LLaMA-Factory dataset_info.json or a COCO file?")
    resolver = ImageResolver(image_root)
    examples: list[TuneExample] = []
    rejects: list[Reject] = []
    for i, row in enumerate(rows):
        rid = str(row.get("id", f"#{i}")) if isinstance(row, dict) else f"#{i}"
        if not isinstance(row, dict) or not isinstance(row.get("conversations"), list):
            rejects.append(_reject("missing_key", "record has no `conversations` list", path, rid))
            continue
        messages: list[dict[str, str]] = []
        bad = None
        for turn in row["conversations"]:
            if not isinstance(turn, dict) or turn.get("from") not in _ROLES or not isinstance(turn.get("value"), str):
                bad = f"turn {turn!r} needs `from` (human, gpt or system) and a string `value`"
                break
            messages.append({"role": _ROLES[turn["from"]], "content": turn["value"]})
        if bad:
            rejects.append(_reject("bad_value", bad, path, rid))
            continue
        image = row.get("image")
        images_rel = [image] if isinstance(image, str) else list(image) if isinstance(image, list) else []
        problem = _check_messages(messages, len(images_rel))
        if problem:
            rejects.append(_reject(problem[0], problem[1], path, rid))
            continue
        paths: list[str | Image.Image] = []
        failure: tuple[str, str] | None = None
        for rel in images_rel:
            reason = resolver.check(rel)
            if reason is not None:
                failure = (reason, f"image {rel!r}: {REASONS[reason]} (image root {image_root})")
                break
            full = os.path.join(resolver.root, rel)
            try:
                with Image.open(full) as im:
                    im.size  # noqa: B018 - reading the header is the check
            except Exception as e:  # PIL raises many types for bad files
                failure = ("image_unreadable", f"image {full}: {e}")
                break
            paths.append(full)
        if failure:
            rejects.append(_reject(failure[0], failure[1], path, rid))
        else:
            examples.append(TuneExample(id=rid, messages=messages, images=paths))
    return examples, rejects


def _content_to_text(content: Any) -> str:
    """TRL-style content blocks ([{type: image}, {type: text, text}]) to text with `<image>` placeholders."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if block.get("type") == "image":
            parts.append(IMAGE_TOKEN)
        elif block.get("type") == "text":
            parts.append(block.get("text") or "")
    return "\n".join(parts) if parts and parts[0] == IMAGE_TOKEN else "".join(parts)


def _to_pil(value: Any) -> Image.Image:
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        return Image.open(io.BytesIO(value["bytes"]))
    if isinstance(value, dict) and value.get("path") and os.path.isfile(value["path"]):
        return Image.open(value["path"])
    raise ValueError(f"cannot decode image value of type {type(value).__name__}")


def load_hf_dataset(path: str) -> tuple[list[TuneExample], list[Reject]]:
    """Read an HF datasets folder (save_to_disk) or parquet file(s) with columns id, images, messages."""
    import datasets

    try:
        if os.path.isdir(path) and (os.path.exists(os.path.join(path, "state.json"))
                                    or os.path.exists(os.path.join(path, "dataset_dict.json"))):
            ds = datasets.load_from_disk(path)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
        else:
            files = [path] if os.path.isfile(path) else sorted(glob.glob(os.path.join(path, "**", "*.parquet"),
                                                                         recursive=True))
            ds = datasets.load_dataset("parquet", data_files=files, split="train")
    except Exception as e:
        raise TuneDataError(f"tune data {path}: could not be read as an HF dataset ({e}). Point `data_path` at "
                            f"the folder the hf output wrote") from None
    missing = {"messages"} - set(ds.column_names)
    if missing:
        raise TuneDataError(f"tune data {path}: HF dataset has columns {ds.column_names}; expected id, images, "
                            f"messages. Is this the hf output of the build?")
    examples: list[TuneExample] = []
    rejects: list[Reject] = []
    for i, row in enumerate(ds):
        rid = str(row.get("id") or f"#{i}")
        messages = [{"role": _ROLES.get(m.get("role", ""), m.get("role", "")),
                     "content": _content_to_text(m.get("content"))} for m in row["messages"] or []]
        if any(m["role"] not in ("user", "assistant", "system") for m in messages):
            rejects.append(_reject("bad_value", "a message role is not user, assistant or system", path, rid))
            continue
        raw_images = row.get("images") or []
        problem = _check_messages(messages, len(raw_images))
        if problem:
            rejects.append(_reject(problem[0], problem[1], path, rid))
            continue
        try:
            images: list[str | Image.Image] = [_to_pil(v) for v in raw_images]
        except Exception as e:
            rejects.append(_reject("image_unreadable", f"embedded image: {e}", path, rid))
            continue
        examples.append(TuneExample(id=rid, messages=messages, images=images))
    return examples, rejects


def load_examples(data_path: str, image_root: str) -> tuple[list[TuneExample], list[Reject]]:
    """Load LLaVA JSON (`*.json`) or an HF datasets output (folder or `*.parquet`)."""
    if data_path.endswith(".json"):
        return load_llava_json(data_path, image_root)
    if data_path.endswith(".parquet") or os.path.isdir(data_path):
        return load_hf_dataset(data_path)
    raise TuneDataError(f"tune data {data_path}: unknown format. Give a LLaVA JSON file (*.json) or the folder "
                        f"(or *.parquet) of an HF datasets output")


def _rank(seed: int, sample_id: str) -> str:
    return hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()


def split_heldout(examples: list[TuneExample], share: float, seed: int) -> tuple[list[TuneExample],
                                                                                 list[TuneExample]]:
    """Split into (train, heldout): the ceil(share * n) examples with the lowest hash of (seed, id).

    The choice depends only on the seed and the ids, never on file order or worker count.
    """
    if share <= 0 or not examples:
        return list(examples), []
    n_held = min(len(examples) - 1, math.ceil(share * len(examples)))
    if n_held <= 0:
        return list(examples), []
    order = sorted(examples, key=lambda e: _rank(seed, e.id))
    held_ids = {e.id for e in order[:n_held]}
    train = [e for e in examples if e.id not in held_ids]
    return train, order[:n_held]
