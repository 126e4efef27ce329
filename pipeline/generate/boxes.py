"""Boxes that a generated answer writes as coordinates become `<box:N>` markers.

The prompt gives boxes as `[x1, y1, x2, y2]` in [0, 1] of the image with 2 decimals (the `norm1` box
format). An answer that repeats such a box would otherwise keep that convention in its text whatever the
output's box format; as a marker, each output writes it in its own format. Anything else in brackets
(values outside [0, 1], a box with no area) stays text.
"""

from __future__ import annotations

import re

from schemas.box import Box, parse_box

_BOX_TEXT_RE = re.compile(r"\[\s*\d*\.?\d+\s*,\s*\d*\.?\d+\s*,\s*\d*\.?\d+\s*,\s*\d*\.?\d+\s*\]")


def boxes_to_markers(text: str, size: tuple[int, int] | None, boxes: list[Box]) -> str:
    """Replace each box in `text` by `<box:N>`, appending it to `boxes` (N counts on from what `boxes`
    holds); `size` is the image's (width, height), None leaves the text as it is."""
    if size is None or "[" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        try:
            values = [float(v) for v in m.group(0).strip("[] ").split(",")]
            if not all(0.0 <= v <= 1.0 for v in values):
                return m.group(0)
            box = parse_box(m.group(0), "norm1", size[0], size[1])
        except ValueError:
            return m.group(0)
        boxes.append(box)
        return f"<box:{len(boxes) - 1}>"

    return _BOX_TEXT_RE.sub(sub, text)
