"""Box: canonical form, COCO conversion, and each box format's render/parse round trip."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.box import BOX_FORMATS, Box, parse_box, render_box


def test_from_coco_xywh() -> None:
    b = Box.from_xywh([10, 20, 50, 30], 640, 427)
    assert (b.x1, b.y1, b.x2, b.y2, b.width, b.height) == (10, 20, 60, 50, 640, 427)


@pytest.mark.parametrize("bad", [[10, 20, 0, 30], [10, 20, -5, 30], [10, 20, 5, -1]])
def test_box_without_area_is_refused(bad: list[float]) -> None:
    with pytest.raises(ValidationError, match="no area"):
        Box.from_xywh(bad, 100, 100)


def test_inside_image() -> None:
    assert Box(x1=0, y1=0, x2=100, y2=50, width=100, height=50).inside_image()
    assert not Box(x1=90, y1=0, x2=120, y2=50, width=100, height=50).inside_image()


def test_rendered_strings() -> None:
    # a 200x100 image: llava pads it to a 200x200 square, so y gains a 50 px offset
    b = Box(x1=20, y1=10, x2=120, y2=60, width=200, height=100)
    assert render_box(b, "llava") == "[0.10, 0.30, 0.60, 0.55]"
    assert render_box(b, "llava", decimals=3) == "[0.100, 0.300, 0.600, 0.550]"
    assert render_box(b, "norm1000") == "[100, 100, 600, 600]"
    assert render_box(b, "absolute") == "[20, 10, 120, 60]"
    assert render_box(b, "norm1") == "[0.100, 0.100, 0.600, 0.600]"


@pytest.mark.parametrize("fmt", sorted(BOX_FORMATS))
@pytest.mark.parametrize("size", [(640, 427), (300, 500), (128, 128)])
def test_round_trip(fmt: str, size: tuple[int, int]) -> None:
    w, h = size
    for box in [Box(x1=0, y1=0, x2=w, y2=h, width=w, height=h),
                Box(x1=13.4, y1=27.9, x2=w / 2 + 3.3, y2=h - 11.2, width=w, height=h)]:
        text = render_box(box, fmt)
        back = parse_box(f"The box is {text}.", fmt, w, h)
        # precision of the format: 2 decimals of the long side (llava), one unit of 1/1000 (norm1000 clamps to 999), 1 px (absolute)
        tol = {"llava": 0.005 * max(w, h), "norm1000": 0.001 * max(w, h), "absolute": 0.5,
               "norm1": 0.0005 * max(w, h)}[fmt]
        for a, c in [(box.x1, back.x1), (box.y1, back.y1), (box.x2, back.x2), (box.y2, back.y2)]:
            assert abs(a - c) <= tol + 1e-9, (fmt, text, box, back)
        assert render_box(back, fmt) == text


def test_unknown_format_names_the_choices() -> None:
    with pytest.raises(ValueError, match="choose one of: llava, norm1000, absolute, norm1"):
        render_box(Box(x1=0, y1=0, x2=1, y2=1, width=2, height=2), "xyxy")


def test_parse_without_box() -> None:
    with pytest.raises(ValueError, match="no box"):
        parse_box("no numbers here", "llava", 10, 10)


@pytest.mark.parametrize("fmt", sorted(BOX_FORMATS))
def test_thin_boxes_never_collapse_when_rounded(fmt: str) -> None:
    # 1.4 px wide at the right edge of a 352 px image: 2 decimals of [0,1] cannot tell x1 from x2
    for box in [Box(x1=351.5, y1=0, x2=352.9, y2=5, width=352, height=230),
                Box(x1=0, y1=100.1, x2=3, y2=100.3, width=352, height=230)]:
        text = render_box(box, fmt)
        back = parse_box(text, fmt, 352, 230)  # would raise "box has no area" if it collapsed
        assert back.x2 > back.x1 and back.y2 > back.y1
    assert render_box(Box(x1=351.5, y1=0, x2=352.9, y2=5, width=352, height=230), "llava") == \
        "[0.99, 0.17, 1.00, 0.19]"
