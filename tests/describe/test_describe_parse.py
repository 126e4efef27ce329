"""Parsers of describe-model replies, on reply strings written by hand in each model family's real format."""

from __future__ import annotations

import pytest

from pipeline.describe.parse import (
    UnparseableOutput,
    parse_boxes,
    parse_caption,
    parse_florence2,
    parse_norm1,
    parse_qwen2vl,
    parse_qwen25vl,
)
from schemas.box import Box


def _xyxy(b: Box) -> tuple[float, float, float, float]:
    return (round(b.x1, 3), round(b.y1, 3), round(b.x2, 3), round(b.y2, 3))


# ---- captions ----------------------------------------------------------------------------------------------

def test_caption_strips_special_and_task_tokens() -> None:
    raw = "</s><s><MORE_DETAILED_CAPTION>The image shows a cat\n  sitting on a  red sofa.</s><pad><pad>"
    assert parse_caption(raw) == "The image shows a cat sitting on a red sofa."


def test_caption_strips_chat_end_tokens_and_assistant_prefix() -> None:
    assert parse_caption("Assistant: A dog runs on the beach.<end_of_utterance>") == "A dog runs on the beach."
    assert parse_caption("A red bus.<|im_end|>") == "A red bus."


@pytest.mark.parametrize("raw", ["", "</s><pad>", "   \n", "car<loc_1><loc_2><loc_3><loc_4>",
                                 "<|box_start|>(1,2),(3,4)<|box_end|>"])
def test_caption_unparseable(raw: str) -> None:
    with pytest.raises(UnparseableOutput):
        parse_caption(raw)


# ---- Florence-2 ----------------------------------------------------------------------------------------------

def test_florence2_bins_are_bin_centres_of_raw_image() -> None:
    raw = "</s><s>car<loc_52><loc_333><loc_932><loc_774>door handle<loc_0><loc_0><loc_999><loc_999></s>"
    out = parse_florence2(raw, 640, 480)
    assert [d.label for d in out.detections] == ["car", "door handle"]
    # (bin + 0.5) / 1000 of each side
    assert _xyxy(out.detections[0].box) == (33.6, 160.08, 596.8, 371.76)
    assert _xyxy(out.detections[1].box) == (0.32, 0.24, 639.68, 479.76)
    assert (out.detections[0].box.width, out.detections[0].box.height) == (640, 480)
    assert out.dropped == []


def test_florence2_label_with_several_boxes() -> None:
    out = parse_florence2("person<loc_0><loc_0><loc_99><loc_99><loc_500><loc_500><loc_599><loc_599>", 1000, 1000)
    assert [(d.label, _xyxy(d.box)) for d in out.detections] == [
        ("person", (0.5, 0.5, 99.5, 99.5)), ("person", (500.5, 500.5, 599.5, 599.5))]


def test_florence2_empty_reply_is_no_objects_and_degenerate_box_is_recorded() -> None:
    assert parse_florence2("</s><s></s>", 10, 10).detections == []
    out = parse_florence2("cat<loc_500><loc_10><loc_500><loc_20>dog<loc_1><loc_1><loc_2><loc_2>", 100, 100)
    assert [d.label for d in out.detections] == ["dog"]
    assert len(out.dropped) == 1 and out.dropped[0].startswith("'cat': box (50.05, 1.05, 50.05, 2.05) has no area")


@pytest.mark.parametrize("raw", [
    "car<loc_1><loc_2><loc_3>",                       # three tokens
    "car<loc_1><loc_2><loc_3><loc_4><loc_5>",         # five tokens
    "a car on the road",                              # prose, no boxes
    "car<loc_1><loc_2><loc_3><loc_4> and more text",  # trailing text
    "<loc_1><loc_2><loc_3><loc_4>",                   # no label
])
def test_florence2_broken(raw: str) -> None:
    with pytest.raises(UnparseableOutput):
        parse_florence2(raw, 100, 100)


# ---- Qwen2-VL ---------------------------------------------------------------------------------------------------

def test_qwen2vl_norm1000_of_raw_image() -> None:
    raw = ("<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(100,200),(500,750)<|box_end|>"
           " and <|object_ref_start|>a ball<|object_ref_end|><|box_start|>(0, 0), (999, 999)<|box_end|><|im_end|>")
    out = parse_qwen2vl(raw, 640, 480)
    assert [(d.label, _xyxy(d.box)) for d in out.detections] == [
        ("the dog", (64.0, 96.0, 320.0, 360.0)), ("a ball", (0.0, 0.0, 639.36, 479.52))]


def test_qwen2vl_box_without_ref_takes_previous_label_and_out_of_range_is_dropped() -> None:
    raw = ("<|object_ref_start|>cup<|object_ref_end|><|box_start|>(10,10),(20,20)<|box_end|>"
           "<|box_start|>(30,30),(40,40)<|box_end|>"
           "<|object_ref_start|>sun<|object_ref_end|><|box_start|>(10,10),(1200,20)<|box_end|>")
    out = parse_qwen2vl(raw, 1000, 1000)
    assert [(d.label, _xyxy(d.box)) for d in out.detections] == [
        ("cup", (10.0, 10.0, 20.0, 20.0)), ("cup", (30.0, 30.0, 40.0, 40.0))]
    assert out.dropped == ["'sun': coordinates (10, 10), (1200, 20) leave [0, 1000]"]


@pytest.mark.parametrize("raw", [
    "<|object_ref_start|>dog<|object_ref_end|><|box_start|>(100,200),(500<|box_end|>",   # cut box
    "<|box_start|>(1,2),(3,4)<|box_end|>",                                              # no label at all
    "There is a dog in the picture.",                                                   # prose
    "<|object_ref_start|>a<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|><|box_start|>(1,2)<|box_end|>",
])
def test_qwen2vl_broken(raw: str) -> None:
    with pytest.raises(UnparseableOutput):
        parse_qwen2vl(raw, 100, 100)


# ---- Qwen2.5-VL --------------------------------------------------------------------------------------------------

QWEN25_REPLY = """```json
[
  {"bbox_2d": [28, 56, 280, 224], "label": "cat"},
  {"bbox_2d": [300, 10, 320, 40], "label": "lamp"}
]
```"""


def test_qwen25vl_absolute_pixels_in_a_json_fence() -> None:
    out = parse_qwen25vl(QWEN25_REPLY, 640, 480)
    assert [(d.label, _xyxy(d.box)) for d in out.detections] == [
        ("cat", (28.0, 56.0, 280.0, 224.0)), ("lamp", (300.0, 10.0, 320.0, 40.0))]


def test_qwen25vl_rescales_from_processor_input_size_and_clips() -> None:
    # The processor fed a 644x476 image (multiples of 28) for a 1288x952 raw image: everything doubles.
    out = parse_qwen25vl('[{"bbox_2d": [28, 56, 700, 224], "label": "cat"}]', 1288, 952, input_size=(644, 476))
    assert [(d.label, _xyxy(d.box)) for d in out.detections] == [("cat", (56.0, 112.0, 1288.0, 448.0))]


def test_qwen25vl_bare_json_with_preamble_and_single_object() -> None:
    out = parse_qwen25vl('Here it is: {"bbox_2d": [1, 2, 3, 4], "label": "key"}', 10, 10)
    assert [(d.label, _xyxy(d.box)) for d in out.detections] == [("key", (1.0, 2.0, 3.0, 4.0))]


@pytest.mark.parametrize("raw", [
    '```json\n[{"bbox_2d": [1, 2, 3], "label": "cat"}]\n```',          # three numbers
    '[{"bbox_2d": [1, 2, 3, 4], "label": "cat"}',                       # truncated JSON
    '[{"box": [1, 2, 3, 4], "label": "cat"}]',                          # wrong key
    '[{"bbox_2d": [1, 2, 3, 4]}]',                                      # no label
    '[{"bbox_2d": ["a", 2, 3, 4], "label": "cat"}]',                    # not numbers
    "I cannot see any objects.",                                        # prose
    '"just a string"',
])
def test_qwen25vl_broken(raw: str) -> None:
    with pytest.raises(UnparseableOutput):
        parse_qwen25vl(raw, 100, 100)


# ---- LLaVA-style [0, 1] -------------------------------------------------------------------------------------------

def test_norm1_lines() -> None:
    raw = "ASSISTANT: 1. dog: [0.1, 0.2, 0.5, 0.75]\n- red ball [0.0, 0.0, 1.0, 1.0].\n\n</s>"
    out = parse_norm1(raw, 640, 480)
    assert [(d.label, _xyxy(d.box)) for d in out.detections] == [
        ("dog", (64.0, 96.0, 320.0, 360.0)), ("red ball", (0.0, 0.0, 640.0, 480.0))]


def test_norm1_out_of_range_dropped() -> None:
    out = parse_norm1("tree: [0.1, 0.2, 1.5, 0.75]", 100, 100)
    assert out.detections == [] and out.dropped == ["'tree': values [0.1, 0.2, 1.5, 0.75] leave [0, 1]"]


@pytest.mark.parametrize("raw", ["dog: [0.1, 0.2, 0.5]", "a dog and a cat", "[0.1, 0.2, 0.5, 0.6]",
                                 "dog: [0.1, 0.2, 0.5, 0.6]\nthat is all"])
def test_norm1_broken(raw: str) -> None:
    with pytest.raises(UnparseableOutput):
        parse_norm1(raw, 100, 100)


def test_parse_boxes_dispatch_and_unknown_convention() -> None:
    out = parse_boxes('[{"bbox_2d": [2, 2, 4, 4], "label": "x"}]', "qwen25vl", 10, 10, input_size=(5, 5))
    assert _xyxy(out.detections[0].box) == (4.0, 4.0, 8.0, 8.0)
    with pytest.raises(ValueError, match="unknown box convention 'yolo'"):
        parse_boxes("", "yolo", 10, 10)
