"""The LLaMA-Factory writer: exact records, the data file, and the dataset_info.json merge."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from writer_samples import (BOXES, all_samples, boxed_sample, image_sample, multi_image_sample, system_sample,
                            text_only_sample)

from outputs.errors import WriterError
from outputs.llamafactory import LlamaFactoryWriter
from outputs.validators.llamafactory import OURS, Layout
from schemas.recipe import OutputFormat

TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
        "system_tag": "system"}


def writer(box_format: str = "llava", name: str | None = None) -> LlamaFactoryWriter:
    return LlamaFactoryWriter(OutputFormat(kind="llamafactory", box_format=box_format, name=name), "demo")


def test_image_sample() -> None:
    assert writer().to_record(image_sample()) == {
        "messages": [{"role": "user", "content": "<image>\nDescribe the image briefly."},
                     {"role": "assistant", "content": "A red square."}],
        "images": ["img/a.png"],
    }


def test_multi_image_sample() -> None:
    rec = writer().to_record(multi_image_sample())
    assert rec["images"] == ["img/a.png", "img/b.png"]
    assert [m["role"] for m in rec["messages"]] == ["user", "assistant", "user", "assistant"]
    assert rec["messages"][0]["content"] == "<image>\n<image>\nWhich one is red?"


def test_text_only_sample_has_an_empty_image_list() -> None:
    assert writer().to_record(text_only_sample()) == {
        "messages": [{"role": "user", "content": "Name a primary colour."},
                     {"role": "assistant", "content": "Red."}],
        "images": [],
    }


def test_system_turn_goes_to_the_system_column_first() -> None:
    rec = writer().to_record(system_sample())
    assert rec == {
        "system": "Answer in one word.",
        "messages": [{"role": "user", "content": "<image>\nWhat colour is it?"},
                     {"role": "assistant", "content": "Red."}],
        "images": ["img/a.png"],
    }
    assert list(rec) == ["system", "messages", "images"]


@pytest.mark.parametrize("box_format", sorted(BOXES))
def test_box_markers_render_in_each_box_format(box_format: str) -> None:
    kite, whole = BOXES[box_format]
    assert writer(box_format).to_record(boxed_sample())["messages"] == [
        {"role": "user", "content": f"<image>\nThe region {whole} holds what? Give its box."},
        {"role": "assistant", "content": f"A kite at {kite}."},
    ]


def test_write_data_and_dataset_info(tmp_path: Path) -> None:
    w = writer(name="set")
    samples = all_samples()
    rows = [w.encode(s) for s in samples]
    files = w.write(rows, tmp_path, "/data/images")
    assert files == [tmp_path / "set.json", tmp_path / "dataset_info.json"]
    text = files[0].read_text(encoding="utf-8")
    assert text == "[\n" + ",\n".join(rows) + "\n]\n"
    assert json.loads(text) == [w.to_record(s) for s in samples]
    assert json.loads(files[1].read_text(encoding="utf-8")) == {"set": {
        "file_name": "set.json", "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images", "system": "system"}, "tags": TAGS}}
    before = [f.read_bytes() for f in files]
    w.write(rows, tmp_path, "/data/images")
    assert [f.read_bytes() for f in files] == before
    assert sorted(os.listdir(tmp_path)) == ["dataset_info.json", "set.json"]


def test_system_column_is_declared_only_when_a_row_has_one(tmp_path: Path) -> None:
    w = writer(name="plain")
    w.write([w.encode(image_sample()), w.encode(text_only_sample())], tmp_path, "/data/images")
    info = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["plain"]["columns"] == {"messages": "messages", "images": "images"}


def test_dataset_info_merge_keeps_other_entries_and_their_order(tmp_path: Path) -> None:
    other = {"file_name": "other.json", "formatting": "alpaca", "columns": {"prompt": "q"}}
    (tmp_path / "dataset_info.json").write_text(
        json.dumps({"first": other, "set": {"file_name": "stale.json"}, "last": other}), encoding="utf-8")
    w = writer(name="set")
    w.write([w.encode(image_sample())], tmp_path, "/data/images")
    info = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))
    assert list(info) == ["first", "set", "last"]
    assert info["first"] == other and info["last"] == other
    assert info["set"] == w.entry(has_system=False)


def test_malformed_dataset_info_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "dataset_info.json").write_text('{"a": ', encoding="utf-8")
    w = writer(name="set")
    with pytest.raises(WriterError, match=r"dataset_info.json is not valid JSON \(line 1, column 7"):
        w.write([w.encode(image_sample())], tmp_path, "/data/images")


def test_the_entry_reads_back_as_the_validators_layout() -> None:
    assert Layout.from_entry(writer().entry(has_system=True)) == OURS


def test_usage_names_dataset_dir_and_media_dir() -> None:
    assert writer(name="set").usage("runs/demo", "/data/images") == (
        "llamafactory: dataset_dir: runs/demo, dataset: set, media_dir: /data/images "
        "(image paths in the file are relative to media_dir)")
