"""Parsers for what vision-language models write: captions and object boxes, each in its model's convention.

Every parser turns one raw reply into plain text or `Detection`s holding the canonical `schemas.box.Box`
(absolute pixels of the raw image). A reply that is not in the expected shape raises `UnparseableOutput`;
the describe stage turns that into a `describe_unparseable` reject that keeps the raw reply. A single box
that cannot be a box (no area, wholly outside the image) is not fatal: it is listed in `ParsedBoxes.dropped`
with why, so the stage can record it in the lineage rather than lose it silently.

Conventions (all of the raw image unless said otherwise):
- `florence2`: `label<loc_x1><loc_y1><loc_x2><loc_y2>`; each `<loc_N>` is a bin 0..999, the value being the
  bin's centre, `(N + 0.5) / 1000` of the side.
- `qwen2vl`: `<|object_ref_start|>label<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`, integers
  in [0, 1000).
- `qwen25vl`: JSON (often in a ```json fence) `[{"bbox_2d": [x1, y1, x2, y2], "label": ...}]` in absolute
  pixels of the image the processor fed the model; pass `input_size` when it resized the image.
- `norm1`: LLaVA-style lines `label: [x1, y1, x2, y2]` in [0, 1].
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from schemas.box import Box


class UnparseableOutput(ValueError):
    """A model reply that is not in the format its model family writes."""


@dataclass(frozen=True)
class Detection:
    """One labelled box a model found."""

    label: str
    box: Box


@dataclass
class ParsedBoxes:
    """The boxes of one reply, plus the entries that were not usable boxes and why."""

    detections: list[Detection] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


# ---- captions --------------------------------------------------------------------------------------------

#: Special tokens that decoders leave in replies when special tokens are not skipped.
_SPECIAL = re.compile(r"</?s>|<pad>|<unk>|<\|im_end\|>|<\|endoftext\|>|<end_of_utterance>|<\|eot_id\|>")
#: Florence-2 task tokens, echoed at the start of some replies.
_FLORENCE_TASK = re.compile(r"^\s*<[A-Z_]+>")
#: Assistant prefixes chat models sometimes write before the answer.
_ASSISTANT = re.compile(r"^\s*(?:assistant|ASSISTANT|Assistant)\s*:?\s*")


def parse_caption(text: str) -> str:
    """The caption in a reply: special tokens, an echoed task token and an `Assistant:` prefix removed,
    whitespace collapsed. Raises UnparseableOutput when nothing is left, or when the reply is box
    markup rather than prose."""
    t = _SPECIAL.sub("", text)
    t = _FLORENCE_TASK.sub("", t)
    t = _ASSISTANT.sub("", t)
    t = " ".join(t.split())
    if not t:
        raise UnparseableOutput(f"the reply holds no caption text: {text!r}")
    if _LOC.search(t) or "<|box_start|>" in t:
        raise UnparseableOutput(f"the reply is box markup, not a caption: {text!r}")
    return t


# ---- boxes -----------------------------------------------------------------------------------------------


def _make_box(x1: float, y1: float, x2: float, y2: float, width: int, height: int, label: str,
              out: ParsedBoxes) -> None:
    """Clip to the image and keep the box, or record in `out.dropped` why it is no box."""
    cx1, cy1 = min(max(x1, 0.0), float(width)), min(max(y1, 0.0), float(height))
    cx2, cy2 = min(max(x2, 0.0), float(width)), min(max(y2, 0.0), float(height))
    if cx2 <= cx1 or cy2 <= cy1:
        out.dropped.append(f"{label!r}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has no area inside the "
                           f"{width}x{height} image")
        return
    out.detections.append(Detection(label=label, box=Box(x1=cx1, y1=cy1, x2=cx2, y2=cy2, width=width,
                                                         height=height)))


def _clean_label(label: str) -> str:
    return " ".join(label.replace("<|object_ref_start|>", "").replace("<|object_ref_end|>", "").split())


_LOC = re.compile(r"<loc_(\d+)>")
#: A label followed by one or more groups of four location tokens.
_FLORENCE_OBJ = re.compile(r"([^<>]*?)((?:<loc_\d+>){4,})")


def parse_florence2(text: str, width: int, height: int) -> ParsedBoxes:
    """Florence-2 `<OD>` / `<DENSE_REGION_CAPTION>` replies: `car<loc_52><loc_333><loc_932><loc_774>...`.

    A label followed by 8, 12, ... tokens has that many boxes; a token count that is not a multiple of 4
    makes the reply unparseable. An empty reply means the model found nothing."""
    t = _FLORENCE_TASK.sub("", _SPECIAL.sub("", text)).strip()
    out = ParsedBoxes()
    if not t:
        return out
    pos = 0
    for m in _FLORENCE_OBJ.finditer(t):
        if t[pos:m.start()].strip():
            raise UnparseableOutput(f"florence2: text {t[pos:m.start()]!r} is not followed by <loc_N> tokens "
                                    f"in {text!r}")
        pos = m.end()
        label = _clean_label(m.group(1))
        bins = [int(v) for v in _LOC.findall(m.group(2))]
        if len(bins) % 4:
            raise UnparseableOutput(f"florence2: {len(bins)} <loc_N> tokens after {label!r}, not a multiple of 4 "
                                    f"(x1, y1, x2, y2) in {text!r}")
        if not label:
            raise UnparseableOutput(f"florence2: a box has no label in {text!r}")
        for i in range(0, len(bins), 4):
            b = bins[i:i + 4]
            if any(v > 999 for v in b):
                out.dropped.append(f"{label!r}: location bin above 999 in {b}")
                continue
            _make_box((b[0] + 0.5) * width / 1000, (b[1] + 0.5) * height / 1000,
                      (b[2] + 0.5) * width / 1000, (b[3] + 0.5) * height / 1000, width, height, label, out)
    rest = t[pos:].strip()
    if rest:
        raise UnparseableOutput(f"florence2: trailing text {rest!r} has no <loc_N> tokens in {text!r}")
    return out


_QWEN2_BOX = re.compile(
    r"(?:<\|object_ref_start\|>(?P<label>.*?)<\|object_ref_end\|>\s*)?"
    r"<\|box_start\|>\s*\(\s*(?P<x1>-?\d+(?:\.\d+)?)\s*,\s*(?P<y1>-?\d+(?:\.\d+)?)\s*\)\s*,\s*"
    r"\(\s*(?P<x2>-?\d+(?:\.\d+)?)\s*,\s*(?P<y2>-?\d+(?:\.\d+)?)\s*\)\s*<\|box_end\|>")


def parse_qwen2vl(text: str, width: int, height: int) -> ParsedBoxes:
    """Qwen2-VL grounding: `<|object_ref_start|>dog<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>`
    with integers in [0, 1000) of the raw image. A box without a reference takes the one before it."""
    out = ParsedBoxes()
    t = _SPECIAL.sub("", text)
    matches = list(_QWEN2_BOX.finditer(t))
    if not matches:
        if "<|box_start|>" in t:
            raise UnparseableOutput(f"qwen2vl: a <|box_start|> is not followed by (x1,y1),(x2,y2)<|box_end|> "
                                    f"in {text!r}")
        if t.strip():
            raise UnparseableOutput(f"qwen2vl: no <|box_start|>(x1,y1),(x2,y2)<|box_end|> in {text!r}")
        return out
    if t.count("<|box_start|>") != len(matches):
        raise UnparseableOutput(f"qwen2vl: {t.count('<|box_start|>') - len(matches)} malformed box(es) in {text!r}")
    last = ""
    for m in matches:
        label = _clean_label(m.group("label") or "") or last
        if not label:
            raise UnparseableOutput(f"qwen2vl: a box has no <|object_ref_start|>label<|object_ref_end|> "
                                    f"in {text!r}")
        last = label
        x1, y1, x2, y2 = (float(m.group(k)) for k in ("x1", "y1", "x2", "y2"))
        if not all(0 <= v <= 1000 for v in (x1, y1, x2, y2)):
            out.dropped.append(f"{label!r}: coordinates ({x1:g}, {y1:g}), ({x2:g}, {y2:g}) leave [0, 1000]")
            continue
        _make_box(x1 * width / 1000, y1 * height / 1000, x2 * width / 1000, y2 * height / 1000,
                  width, height, label, out)
    return out


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def _json_payload(text: str) -> Any:
    t = _SPECIAL.sub("", text).strip()
    m = _FENCE.search(t)
    if m:
        t = m.group(1).strip()
    else:
        starts = [i for i in (t.find("["), t.find("{")) if i >= 0]
        if not starts:
            raise UnparseableOutput(f"qwen25vl: no JSON list of {{\"bbox_2d\": ..., \"label\": ...}} in {text!r}")
        t = t[min(starts):]
    try:
        return json.JSONDecoder().raw_decode(t)[0]
    except json.JSONDecodeError as e:
        raise UnparseableOutput(f"qwen25vl: the reply's JSON does not parse ({e.msg} at {e.pos}) in {text!r}") from None


def parse_qwen25vl(text: str, width: int, height: int, input_size: tuple[int, int] | None = None) -> ParsedBoxes:
    """Qwen2.5-VL grounding JSON: `[{"bbox_2d": [x1, y1, x2, y2], "label": "dog"}, ...]` in absolute pixels.

    Qwen2.5-VL counts pixels of the image its processor fed it; `input_size` = (width, height) of that image
    rescales them to the raw image (None: the image was not resized)."""
    data = _json_payload(text)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise UnparseableOutput(f"qwen25vl: expected a JSON list of objects, got {type(data).__name__} in {text!r}")
    sx, sy = (1.0, 1.0) if input_size is None else (width / input_size[0], height / input_size[1])
    out = ParsedBoxes()
    for i, obj in enumerate(data):
        if not isinstance(obj, dict) or "bbox_2d" not in obj:
            raise UnparseableOutput(f"qwen25vl: entry {i} is not an object with a 'bbox_2d' key: {obj!r}")
        b = obj["bbox_2d"]
        if (not isinstance(b, list) or len(b) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)):
            raise UnparseableOutput(f"qwen25vl: entry {i}'s bbox_2d is not four numbers [x1, y1, x2, y2]: {b!r}")
        label = _clean_label(str(obj.get("label", "")))
        if not label:
            raise UnparseableOutput(f"qwen25vl: entry {i} has no 'label': {obj!r}")
        _make_box(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy, width, height, label, out)
    return out


_NUM = r"-?\d+(?:\.\d+)?"
_NORM1_LINE = re.compile(rf"^\s*(?:[-*\d.)]+\s+)?(?P<label>[^\[\]:]*?)\s*:?\s*"
                         rf"\[\s*(?P<a>{_NUM})\s*,\s*(?P<b>{_NUM})\s*,\s*(?P<c>{_NUM})\s*,\s*(?P<d>{_NUM})\s*\]\s*\.?\s*$")


def parse_norm1(text: str, width: int, height: int) -> ParsedBoxes:
    """LLaVA-style lines `label: [x1, y1, x2, y2]` with values in [0, 1] of the raw image (list bullets
    allowed). Every non-empty line must be such a line."""
    out = ParsedBoxes()
    t = _ASSISTANT.sub("", _SPECIAL.sub("", text))
    for line in t.splitlines():
        if not line.strip():
            continue
        m = _NORM1_LINE.match(line)
        if m is None:
            raise UnparseableOutput(f"norm1: line {line.strip()!r} is not 'label: [x1, y1, x2, y2]' in {text!r}")
        label = _clean_label(m.group("label"))
        if not label:
            raise UnparseableOutput(f"norm1: box {line.strip()!r} has no label in {text!r}")
        v = [float(m.group(k)) for k in "abcd"]
        if not all(0.0 <= x <= 1.0 for x in v):
            out.dropped.append(f"{label!r}: values {v} leave [0, 1]")
            continue
        _make_box(v[0] * width, v[1] * height, v[2] * width, v[3] * height, width, height, label, out)
    return out


#: Box conventions by name: what `describe.box_format` (or a backend's default) selects.
BOX_PARSERS: dict[str, Callable[..., ParsedBoxes]] = {
    "florence2": parse_florence2,
    "qwen2vl": parse_qwen2vl,
    "qwen25vl": parse_qwen25vl,
    "norm1": parse_norm1,
}


def parse_boxes(text: str, convention: str, width: int, height: int,
                input_size: tuple[int, int] | None = None) -> ParsedBoxes:
    """Parse a detection reply written in `convention` (a key of BOX_PARSERS)."""
    try:
        fn = BOX_PARSERS[convention]
    except KeyError:
        raise ValueError(f"unknown box convention {convention!r}; choose one of: {', '.join(BOX_PARSERS)}") from None
    if convention == "qwen25vl":
        return fn(text, width, height, input_size)
    return fn(text, width, height)
