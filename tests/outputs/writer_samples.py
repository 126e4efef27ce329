"""Hand-built samples shared by the writer and validator tests (one per shape a writer must handle)."""

from __future__ import annotations

from schemas.box import Box
from schemas.image import ImageRef
from schemas.sample import Lineage, Sample, Turn

#: A 200x100 image: wide, so LLaVA's square padding shifts y by 50 px.
KITE = Box(x1=30, y1=20, x2=130, y2=70, width=200, height=100)
WHOLE = Box(x1=0, y1=0, x2=200, y2=100, width=200, height=100)


def _sample(sid: str, turns: list[tuple[str, str]], images: list[str] = (), boxes: list[Box] = ()) -> Sample:
    return Sample(id=sid, images=[ImageRef(path=p) for p in images],
                  turns=[Turn(role=r, text=t) for r, t in turns], boxes=list(boxes), task="test", source="hand",
                  lineage=Lineage(source="hand"))


def image_sample() -> Sample:
    return _sample("hand/1/caption/0", [("user", "<image>\nDescribe the image briefly."),
                                        ("assistant", "A red square.")], ["img/a.png"])


def multi_image_sample() -> Sample:
    return _sample("hand/2/compare/0", [("user", "<image>\n<image>\nWhich one is red?"),
                                        ("assistant", "The first."),
                                        ("user", "And the second?"),
                                        ("assistant", "Blue.")], ["img/a.png", "img/b.png"])


def text_only_sample() -> Sample:
    return _sample("hand/3/text/0", [("user", "Name a primary colour."), ("assistant", "Red.")])


def system_sample() -> Sample:
    return _sample("hand/4/vqa/0", [("system", "Answer in one word."),
                                    ("user", "<image>\nWhat colour is it?"),
                                    ("assistant", "Red.")], ["img/a.png"])


def text_only_system_sample() -> Sample:
    return _sample("hand/5/text/0", [("system", "Be brief."), ("user", "Say hi."), ("assistant", "Hi.")])


def boxed_sample() -> Sample:
    """Box 1 in the question, box 0 in the answer: checks that markers pick the right box."""
    return _sample("hand/6/rec/0", [("user", "<image>\nThe region <box:1> holds what? Give its box."),
                                    ("assistant", "A kite at <box:0>.")], ["img/a.png"], [KITE, WHOLE])


#: Expected renderings of KITE and WHOLE, computed by hand (see each format in schemas/box.py):
#: llava: side 200, y offset 50 -> KITE (30, 70, 130, 120)/200, WHOLE (0, 50, 200, 150)/200, 2 decimals.
#: norm1000: x/200*1000, y/100*1000, clamped to 999. absolute: pixels as integers. norm1: 3 decimals.
BOXES = {
    "llava": ("[0.15, 0.35, 0.65, 0.60]", "[0.00, 0.25, 1.00, 0.75]"),
    "norm1000": ("[150, 200, 650, 700]", "[0, 0, 999, 999]"),
    "absolute": ("[30, 20, 130, 70]", "[0, 0, 200, 100]"),
    "norm1": ("[0.150, 0.200, 0.650, 0.700]", "[0.000, 0.000, 1.000, 1.000]"),
}


def all_samples() -> list[Sample]:
    return [image_sample(), multi_image_sample(), text_only_sample(), system_sample(), text_only_system_sample(),
            boxed_sample()]
