"""The OpenAI chat writer: text-only samples only (the export stage gives it no row for a sample with images),
exact JSONL, shards that replace each other cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from writer_samples import all_samples, image_sample, text_only_sample, text_only_system_sample

from outputs.errors import WriterError
from outputs.llava import LlavaWriter
from outputs.openai_chat import OpenAIChatWriter
from outputs.registry import WRITERS
from outputs.validators import validate_file
from pipeline.export import ExportedShard, ExportStage
from schemas.box import Box
from schemas.recipe import OutputFormat
from schemas.sample import Lineage, Sample, Turn


def writer(name: str | None = None, shard_rows: int | None = None, box_format: str = "llava") -> OpenAIChatWriter:
    return OpenAIChatWriter(OutputFormat(kind="openai_chat", name=name, shard_rows=shard_rows, box_format=box_format),
                            "demo")


def test_registered_and_text_only() -> None:
    assert WRITERS["openai_chat"] is OpenAIChatWriter
    assert OpenAIChatWriter.accepts_images is False and OpenAIChatWriter.accepts_text_only is True


def test_text_only_records() -> None:
    w = writer()
    assert w.to_record(text_only_sample()) == {"messages": [{"role": "user", "content": "Name a primary colour."},
                                                            {"role": "assistant", "content": "Red."}]}
    assert w.encode(text_only_system_sample()) == (
        '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hi."},'
        '{"role":"assistant","content":"Hi."}]}')


def test_box_markers_render_in_the_format_box_convention() -> None:
    s = Sample(id="hand/7/text/0", boxes=[Box(x1=30, y1=20, x2=130, y2=70, width=200, height=100)], task="t",
               source="hand", lineage=Lineage(source="hand"),
               turns=[Turn(role="user", text="What is at <box:0>?"), Turn(role="assistant", text="A kite.")])
    assert writer(box_format="absolute").to_record(s)["messages"][0] == {"role": "user",
                                                                         "content": "What is at [30, 20, 130, 70]?"}


def test_a_sample_with_images_is_an_error_naming_it() -> None:
    with pytest.raises(WriterError, match=r"openai_chat: sample 'hand/1/caption/0' has 1 image\(s\); this format "
                                          r"holds text-only samples"):
        writer().to_record(image_sample())


def test_export_stage_gives_image_samples_no_row_here() -> None:
    llava = LlavaWriter(OutputFormat(kind="llava"), "demo")
    openai = writer()
    (shard,) = ExportStage(writers=[llava, openai]).process_batch(all_samples())
    assert isinstance(shard, ExportedShard)
    assert [r is not None for r in shard.rows[0]] == [True] * 6
    assert [r is not None for r in shard.rows[1]] == [False, False, True, False, True, False]
    assert shard.rows[1][2] == openai.encode(text_only_sample())


def test_write_is_jsonl_in_order(tmp_path: Path) -> None:
    w = writer(name="chat")
    rows = [w.encode(text_only_sample()), w.encode(text_only_system_sample())]
    assert w.write(rows, tmp_path, "/unused") == [tmp_path / "chat.jsonl"]
    assert (tmp_path / "chat.jsonl").read_text(encoding="utf-8") == rows[0] + "\n" + rows[1] + "\n"
    assert w.usage(tmp_path, "/unused") == (
        f"openai_chat: the 2 text-only sample(s) in {tmp_path / 'chat.jsonl'}; samples with images are left out "
        "of this format (they are in the image formats)")


def test_no_rows_is_an_empty_file(tmp_path: Path) -> None:
    (path,) = writer().write([], tmp_path, "/unused")
    assert path.read_text(encoding="utf-8") == ""


def test_shards_replace_each_other(tmp_path: Path) -> None:
    rows = [json.dumps({"messages": [{"role": "user", "content": f"Q{k}"}, {"role": "assistant", "content": "A"}]})
            for k in range(5)]
    files = writer(shard_rows=2).write(rows, tmp_path, "/unused")
    assert [f.name for f in files] == ["demo-00000-of-00003.jsonl", "demo-00001-of-00003.jsonl",
                                       "demo-00002-of-00003.jsonl"]
    assert [f.read_text(encoding="utf-8").splitlines() for f in files] == [rows[0:2], rows[2:4], rows[4:]]
    writer(shard_rows=3).write(rows, tmp_path, "/unused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-00000-of-00002.jsonl", "demo-00001-of-00002.jsonl"]
    writer().write(rows, tmp_path, "/unused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.jsonl"]
    writer(shard_rows=4).write(rows, tmp_path, "/unused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-00000-of-00002.jsonl", "demo-00001-of-00002.jsonl"]


def test_our_output_passes_the_openai_validator(tmp_path: Path) -> None:
    w = writer()
    (path,) = w.write([w.encode(s) for s in all_samples() if not s.images], tmp_path, "/unused")
    assert validate_file(path, "openai_chat") == []
