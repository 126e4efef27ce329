"""Canonical bounding boxes and the registry of box formats that render and parse them.

Every source converts its boxes into `Box` (absolute pixel x1, y1, x2, y2 plus the image size);
every output renders a `Box` through one entry of `BOX_FORMATS`, and each format parses back
what it renders (within the rounding of its precision).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel, ConfigDict, model_validator


class Box(BaseModel):
    """An axis-aligned box in absolute pixels, top-left origin, with the size of its image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x1: float
    y1: float
    x2: float
    y2: float
    width: int
    height: int

    @model_validator(mode="after")
    def _check(self) -> "Box":
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        if self.x2 <= self.x1 or self.y2 <= self.y1:
            raise ValueError(
                f"box has no area: x1={self.x1} y1={self.y1} x2={self.x2} y2={self.y2} "
                "(COCO boxes are [x, y, w, h] with w, h > 0)"
            )
        return self

    @classmethod
    def from_xywh(cls, xywh: list[float] | tuple[float, ...], width: int, height: int) -> "Box":
        """COCO's `[x, y, w, h]` (absolute pixels) to the canonical form."""
        x, y, w, h = (float(v) for v in xywh)
        return cls(x1=x, y1=y, x2=x + w, y2=y + h, width=width, height=height)

    def inside_image(self, tolerance: float = 1.0) -> bool:
        """True when the box lies within the image (allowing `tolerance` pixels of rounding)."""
        t = tolerance
        return self.x1 >= -t and self.y1 >= -t and self.x2 <= self.width + t and self.y2 <= self.height + t

    @property
    def area(self) -> float:
        return (self.x2 - self.x1) * (self.y2 - self.y1)

    def iou(self, other: "Box") -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


_NUM = r"-?\d+(?:\.\d+)?"
_BOX_RE = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")


def _fmt(values: tuple[float, ...], decimals: int, top: float | None = None) -> str:
    """Write x1, y1, x2, y2 at `decimals` places. A box thinner than one unit of that precision would
    collapse to zero width or height, which no parser accepts: it is widened to one unit instead
    (towards the inside of [0, top] when `top`, the largest value the format allows, is given)."""
    unit = 10.0 ** -decimals
    q = [round(v, decimals) if decimals else float(round(v)) for v in values]
    for lo, hi in ((0, 2), (1, 3)):
        if q[hi] - q[lo] < unit / 2:
            if top is not None and q[lo] + unit > top:
                q[lo] = round(q[hi] - unit, decimals)
            else:
                q[hi] = round(q[lo] + unit, decimals)
    if decimals == 0:
        return "[" + ", ".join(str(int(v)) for v in q) + "]"
    return "[" + ", ".join(f"{v:.{decimals}f}" for v in q) + "]"


def _parse4(text: str) -> tuple[float, float, float, float]:
    m = _BOX_RE.search(text)
    if m is None:
        raise ValueError(f"no box of the form [x1, y1, x2, y2] in {text!r}")
    return tuple(float(g) for g in m.groups())  # type: ignore[return-value]


@dataclass(frozen=True)
class BoxFormat:
    """One convention for writing a box as text. `render` and `parse` are inverses up to rounding."""

    name: str
    description: str
    render: Callable[[Box, int], str]
    parse: Callable[[str, int, int], Box]
    default_decimals: int


def _llava_render(b: Box, decimals: int) -> str:
    # LLaVA-1.5 pads the image to a square (centred) and writes coordinates in [0, 1] of that square.
    side = max(b.width, b.height)
    ox, oy = (side - b.width) / 2, (side - b.height) / 2
    vals = ((b.x1 + ox) / side, (b.y1 + oy) / side, (b.x2 + ox) / side, (b.y2 + oy) / side)
    return _fmt(tuple(min(1.0, max(0.0, v)) for v in vals), decimals, top=1.0)


def _llava_parse(text: str, width: int, height: int) -> Box:
    side = max(width, height)
    ox, oy = (side - width) / 2, (side - height) / 2
    a, b, c, d = _parse4(text)
    return Box(x1=a * side - ox, y1=b * side - oy, x2=c * side - ox, y2=d * side - oy, width=width, height=height)


def _norm1000_render(b: Box, decimals: int) -> str:
    # Qwen2-VL / InternVL: integers in [0, 1000) of the raw image.
    def q(v: float, size: int) -> int:
        return min(999, max(0, int(round(v / size * 1000))))

    return _fmt((q(b.x1, b.width), q(b.y1, b.height), q(b.x2, b.width), q(b.y2, b.height)), 0, top=999)


def _norm1000_parse(text: str, width: int, height: int) -> Box:
    a, b, c, d = _parse4(text)
    return Box(x1=a * width / 1000, y1=b * height / 1000, x2=c * width / 1000, y2=d * height / 1000,
               width=width, height=height)


def _absolute_render(b: Box, decimals: int) -> str:
    return _fmt((b.x1, b.y1, b.x2, b.y2), decimals, top=None)


def _absolute_parse(text: str, width: int, height: int) -> Box:
    a, b, c, d = _parse4(text)
    return Box(x1=a, y1=b, x2=c, y2=d, width=width, height=height)


def _norm1_render(b: Box, decimals: int) -> str:
    vals = (b.x1 / b.width, b.y1 / b.height, b.x2 / b.width, b.y2 / b.height)
    return _fmt(tuple(min(1.0, max(0.0, v)) for v in vals), decimals, top=1.0)


def _norm1_parse(text: str, width: int, height: int) -> Box:
    a, b, c, d = _parse4(text)
    return Box(x1=a * width, y1=b * height, x2=c * width, y2=d * height, width=width, height=height)


BOX_FORMATS: dict[str, BoxFormat] = {
    "llava": BoxFormat("llava", "[0,1] of the image padded to a centred square (LLaVA-1.5)", _llava_render,
                       _llava_parse, 2),
    "norm1000": BoxFormat("norm1000", "integers in [0,1000) of the raw image (Qwen2-VL, InternVL)",
                          _norm1000_render, _norm1000_parse, 0),
    "absolute": BoxFormat("absolute", "absolute pixels of the raw image", _absolute_render, _absolute_parse, 0),
    "norm1": BoxFormat("norm1", "[0,1] of the raw image", _norm1_render, _norm1_parse, 3),
}


def render_box(box: Box, fmt: str = "llava", decimals: int | None = None) -> str:
    """Render `box` as text in the named format, e.g. `[0.12, 0.30, 0.55, 0.91]` for `llava`."""
    f = get_box_format(fmt)
    return f.render(box, f.default_decimals if decimals is None else decimals)


def parse_box(text: str, fmt: str, width: int, height: int) -> Box:
    """Parse the first `[a, b, c, d]` in `text` written in format `fmt` back to a canonical Box."""
    return get_box_format(fmt).parse(text, width, height)


def get_box_format(name: str) -> BoxFormat:
    try:
        return BOX_FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown box format {name!r}; choose one of: {', '.join(BOX_FORMATS)}") from None
