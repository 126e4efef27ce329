"""The LLaVA writer: exact records for each sample shape and box format, and the file it writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from writer_samples import (BOXES, all_samples, boxed_sample, image_sample, multi_image_sample, system_sample,
                            text_only_sample, text_only_system_sample)

from outputs.errors import WriterError
from outputs.llava import LlavaWriter, merge_system
from schemas.image import ImageRef
from schemas.recipe import OutputFormat
from schemas.sample import Lineage, Sample, Turn


def writer(box_format: str = "llava", name: str | None = None) -> LlavaWriter:
    return LlavaWriter(OutputFormat(kind="llava", box_format=box_format, name=name), "demo")


def test_image_sample() -> None:
    assert writer().to_record(image_sample()) == {
        "id": "hand/1/caption/0",
        "image": "img/a.png",
        "conversations": [{"from": "human", "value": "<image>\nDescribe the image briefly."},
                          {"from": "gpt", "value": "A red square."}],
    }


def test_multi_image_sample_has_a_list_of_images() -> None:
    assert writer().to_record(multi_image_sample()) == {
        "id": "hand/2/compare/0",
        "image": ["img/a.png", "img/b.png"],
        "conversations": [{"from": "human", "value": "<image>\n<image>\nWhich one is red?"},
                          {"from": "gpt", "value": "The first."},
                          {"from": "human", "value": "And the second?"},
                          {"from": "gpt", "value": "Blue."}],
    }


def test_text_only_sample_has_no_image_key() -> None:
    rec = writer().to_record(text_only_sample())
    assert rec == {"id": "hand/3/text/0",
                   "conversations": [{"from": "human", "value": "Name a primary colour."},
                                     {"from": "gpt", "value": "Red."}]}
    assert "image" not in rec


def test_system_turn_is_merged_after_the_image_placeholder() -> None:
    assert writer().to_record(system_sample())["conversations"] == [
        {"from": "human", "value": "<image>\nAnswer in one word.\n\nWhat colour is it?"},
        {"from": "gpt", "value": "Red."},
    ]


def test_system_turn_of_a_text_only_sample_goes_first() -> None:
    assert writer().to_record(text_only_system_sample())["conversations"][0] == {
        "from": "human", "value": "Be brief.\n\nSay hi."}


@pytest.mark.parametrize(("text", "expected"), [
    ("<image>\n<image>\nCompare.", "<image>\n<image>\nSYS\n\nCompare."),
    ("<image>Compare.", "<image>\nSYS\n\nCompare."),
    ("<image>\n", "<image>\nSYS"),
    ("Look at <image>\nthis.", "SYS\n\nLook at <image>\nthis."),
])
def test_merge_system_keeps_leading_placeholders_first(text: str, expected: str) -> None:
    assert merge_system("SYS", text) == expected


@pytest.mark.parametrize("box_format", sorted(BOXES))
def test_box_markers_render_in_each_box_format(box_format: str) -> None:
    kite, whole = BOXES[box_format]
    assert writer(box_format).to_record(boxed_sample())["conversations"] == [
        {"from": "human", "value": f"<image>\nThe region {whole} holds what? Give its box."},
        {"from": "gpt", "value": f"A kite at {kite}."},
    ]


def test_system_turn_after_the_start_is_an_error_naming_the_sample() -> None:
    s = Sample(id="hand/9/x/0", images=[ImageRef(path="img/a.png")], task="t", source="hand",
               lineage=Lineage(source="hand"),
               turns=[Turn(role="user", text="<image>\nHi?"), Turn(role="system", text="Late."),
                      Turn(role="assistant", text="Hello.")])
    with pytest.raises(WriterError, match=r"llava: sample 'hand/9/x/0' has a system turn at position 1"):
        writer().to_record(s)


def test_encode_is_one_json_line_in_record_key_order() -> None:
    assert writer().encode(image_sample()) == (
        '{"id":"hand/1/caption/0","image":"img/a.png","conversations":'
        '[{"from":"human","value":"<image>\\nDescribe the image briefly."},'
        '{"from":"gpt","value":"A red square."}]}'
    )


def test_write_is_a_json_list_byte_stable_and_atomic(tmp_path: Path) -> None:
    w = writer(name="set")
    samples = all_samples()
    rows = [w.encode(s) for s in samples]
    files = w.write(rows, tmp_path / "a", "/data/images")
    assert files == [tmp_path / "a" / "set.json"]
    text = files[0].read_text(encoding="utf-8")
    assert text == "[\n" + ",\n".join(rows) + "\n]\n"
    assert json.loads(text) == [w.to_record(s) for s in samples]
    first = files[0].read_bytes()
    w.write(rows, tmp_path / "a", "/data/images")
    assert files[0].read_bytes() == first
    assert os.listdir(tmp_path / "a") == ["set.json"]


def test_write_of_no_rows_is_an_empty_list(tmp_path: Path) -> None:
    (path,) = writer(name="empty").write([], tmp_path, "/data/images")
    assert path.read_text(encoding="utf-8") == "[]\n"


def test_usage_names_the_data_file_and_the_image_folder() -> None:
    assert writer(name="set").usage("runs/demo", "/data/images") == (
        "llava: --data_path runs/demo/set.json --image_folder /data/images "
        "(image paths in the file are relative to the image folder)")
