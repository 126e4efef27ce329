"""The HF datasets writer: exact records, and parquet / save_to_disk files that `datasets` loads offline with
the image bytes embedded, sharded, byte-stable and written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataset_helpers import IMAGES, folder_listing, load_parquet, make_image_root, undecoded
from writer_samples import BOXES, all_samples, boxed_sample, image_sample, system_sample, text_only_sample

from outputs.errors import WriterError
from outputs.hf import HfWriter
from outputs.registry import WRITERS
from outputs.validators import validate_file
from schemas.image import ImageRef
from schemas.recipe import OutputFormat
from schemas.sample import Lineage, Sample, Turn

HAND_LINEAGE = '{"source":"hand","ann_ids":[],"filters":[]}'


def writer(box_format: str = "llava", name: str | None = None, shard_rows: int | None = None) -> HfWriter:
    return HfWriter(OutputFormat(kind="hf", box_format=box_format, name=name, shard_rows=shard_rows), "demo")


def test_registered_under_its_kind() -> None:
    assert WRITERS["hf"] is HfWriter


def test_image_sample_record() -> None:
    assert writer().to_record(image_sample()) == {
        "id": "hand/1/caption/0",
        "images": ["img/a.png"],
        "messages": [{"role": "user", "content": "<image>\nDescribe the image briefly."},
                     {"role": "assistant", "content": "A red square."}],
        "task": "test",
        "source": "hand",
        "lineage": HAND_LINEAGE,
    }


def test_system_turn_stays_a_system_message() -> None:
    assert writer().to_record(system_sample())["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "<image>\nWhat colour is it?"},
        {"role": "assistant", "content": "Red."},
    ]


def test_text_only_sample_has_an_empty_image_list() -> None:
    rec = writer().to_record(text_only_sample())
    assert rec["images"] == []
    assert rec["messages"] == [{"role": "user", "content": "Name a primary colour."},
                               {"role": "assistant", "content": "Red."}]


@pytest.mark.parametrize("box_format", sorted(BOXES))
def test_box_markers_render_in_each_box_format(box_format: str) -> None:
    kite, whole = BOXES[box_format]
    assert writer(box_format).to_record(boxed_sample())["messages"] == [
        {"role": "user", "content": f"<image>\nThe region {whole} holds what? Give its box."},
        {"role": "assistant", "content": f"A kite at {kite}."},
    ]


def test_lineage_is_a_json_string_without_nulls() -> None:
    s = Sample(id="coco/7/caption_short/0", images=[ImageRef(path="img/a.png")], task="caption_short", source="coco",
               turns=[Turn(role="user", text="<image>\nCaption?"), Turn(role="assistant", text="A cat.")],
               lineage=Lineage(source="coco", source_kind="coco_captions", file="captions.json", ann_ids=["7"],
                               template_id="caption_short/plain", template_version=1))
    assert writer().to_record(s)["lineage"] == (
        '{"source":"coco","source_kind":"coco_captions","file":"captions.json","ann_ids":["7"],'
        '"template_id":"caption_short/plain","template_version":1,"filters":[]}')


def test_encode_is_one_json_line_with_image_paths() -> None:
    assert writer().encode(image_sample()) == (
        '{"id":"hand/1/caption/0","images":["img/a.png"],"messages":[{"role":"user","content":"<image>\\n'
        'Describe the image briefly."},{"role":"assistant","content":"A red square."}],"task":"test",'
        '"source":"hand","lineage":"{\\"source\\":\\"hand\\",\\"ann_ids\\":[],\\"filters\\":[]}"}')


def _check_loaded(ds, root: Path) -> None:
    """`ds` holds all_samples() in order, with each image's bytes equal to its source file."""
    w = writer()
    expected = [w.to_record(s) for s in all_samples()]
    assert len(ds) == 6
    assert ds.column_names == ["id", "images", "messages", "task", "source", "lineage"]
    assert ds["id"] == [r["id"] for r in expected]
    assert ds["messages"] == [r["messages"] for r in expected]
    assert ds["task"] == ["test"] * 6 and ds["source"] == ["hand"] * 6
    assert [json.loads(x) for x in ds["lineage"]] == [{"source": "hand", "ann_ids": [], "filters": []}] * 6
    stored = undecoded(ds)["images"]
    assert [[im["path"] for im in row] for row in stored] == [[Path(p).name for p in r["images"]] for r in expected]
    for row, rec in zip(stored, expected):
        assert [im["bytes"] for im in row] == [(root / p).read_bytes() for p in rec["images"]]
    sizes = {rel: size for rel, size, _ in IMAGES}
    assert [[im.size for im in row] for row in ds["images"]] == [[sizes[p] for p in r["images"]] for r in expected]


def test_parquet_round_trip_embeds_the_image_bytes(tmp_path: Path) -> None:
    from datasets import Image, List

    root = make_image_root(tmp_path)
    w = writer()
    out = tmp_path / "run" / "hf"
    files = w.write([w.encode(s) for s in all_samples()], out, str(root))
    assert files == [out / "data" / "demo-00000-of-00001.parquet", out / "arrow" / "demo"]
    ds = load_parquet(files[:1], tmp_path / "cache")
    assert ds.features["images"] == List(Image())
    _check_loaded(ds, root)


def test_the_folder_loads_with_the_name_as_split(tmp_path: Path) -> None:
    from datasets import load_dataset

    root = make_image_root(tmp_path)
    w = writer()
    w.write([w.encode(s) for s in all_samples()], tmp_path / "hf", str(root))
    loaded = load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["demo"]
    _check_loaded(loaded["demo"], root)


def test_load_from_disk_round_trip(tmp_path: Path) -> None:
    from datasets import load_from_disk

    root = make_image_root(tmp_path)
    w = writer()
    files = w.write([w.encode(s) for s in all_samples()], tmp_path / "hf", str(root))
    _check_loaded(load_from_disk(str(files[-1])), root)


def test_shards_by_rows_and_a_rewrite_removes_stale_shards(tmp_path: Path) -> None:
    root = make_image_root(tmp_path)
    rows = [writer().encode(s) for s in all_samples()]
    out = tmp_path / "hf"
    files = writer(shard_rows=4).write(rows, out, str(root))
    assert [f.name for f in files] == ["demo-00000-of-00002.parquet", "demo-00001-of-00002.parquet", "demo"]
    assert [len(load_parquet([f], tmp_path / "cache")) for f in files[:2]] == [4, 2]
    assert sorted(p.name for p in (out / "arrow" / "demo").glob("*.arrow")) == ["data-00000-of-00002.arrow",
                                                                             "data-00001-of-00002.arrow"]
    writer().write(rows, out, str(root))
    assert folder_listing(out) == ["arrow", "arrow/demo", "arrow/demo/data-00000-of-00001.arrow",
                                   "arrow/demo/dataset_info.json", "arrow/demo/state.json", "data",
                                   "data/demo-00000-of-00001.parquet"]


def test_same_rows_give_byte_identical_files(tmp_path: Path) -> None:
    root = make_image_root(tmp_path)
    w = writer(shard_rows=4)
    rows = [w.encode(s) for s in all_samples()]
    w.write(rows, tmp_path / "a", str(root))
    w.write(rows, tmp_path / "b", str(root))
    listing = folder_listing(tmp_path / "a")
    assert listing == folder_listing(tmp_path / "b")
    for rel in listing:
        if (tmp_path / "a" / rel).is_file():
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_two_names_share_the_folder(tmp_path: Path) -> None:
    root = make_image_root(tmp_path)
    samples = all_samples()
    writer(name="first").write([writer().encode(s) for s in samples[:2]], tmp_path / "hf", str(root))
    writer(name="second").write([writer().encode(s) for s in samples[2:]], tmp_path / "hf", str(root))
    first = load_parquet([tmp_path / "hf" / "data" / "first-00000-of-00001.parquet"], tmp_path / "cache")
    second = load_parquet([tmp_path / "hf" / "data" / "second-00000-of-00001.parquet"], tmp_path / "cache")
    assert first["id"] == [s.id for s in samples[:2]] and second["id"] == [s.id for s in samples[2:]]


def test_no_rows_is_one_empty_shard_with_the_features(tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from datasets import Features, load_from_disk

    from outputs.hf import hf_features

    files = writer().write([], tmp_path / "hf", str(tmp_path))
    assert [f.name for f in files] == ["demo-00000-of-00001.parquet", "demo"]
    table = pq.read_table(files[0])
    assert table.num_rows == 0 and Features.from_arrow_schema(table.schema) == hf_features()
    ds = load_from_disk(str(files[1]))
    assert len(ds) == 0 and ds.features == hf_features()


def test_missing_image_is_an_error_naming_the_sample_and_leaves_the_output_alone(tmp_path: Path) -> None:
    root = make_image_root(tmp_path)
    w = writer()
    out = tmp_path / "hf"
    w.write([w.encode(image_sample())], out, str(root))
    before = {rel: (out / rel).read_bytes() for rel in folder_listing(out) if (out / rel).is_file()}
    (root / "img" / "b.png").unlink()
    with pytest.raises(WriterError, match=r"hf: image 'img/b.png' of sample 'hand/2/compare/0' cannot be read from "
                                          r"the image root .*restore it and rerun"):
        w.write([w.encode(s) for s in all_samples()], out, str(root))
    assert {rel: (out / rel).read_bytes() for rel in folder_listing(out) if (out / rel).is_file()} == before


def test_our_output_passes_the_hf_validator(tmp_path: Path) -> None:
    root = make_image_root(tmp_path)
    w = writer(shard_rows=4)
    out = tmp_path / "hf"
    files = w.write([w.encode(s) for s in all_samples()], out, str(root))
    for path in (out, out / "data", files[0], files[-1]):
        assert validate_file(path, "hf") == [], path


def test_usage_names_both_ways_to_load() -> None:
    assert writer(name="set").usage("runs/demo/hf", "/data/images") == (
        'hf: datasets.load_dataset("parquet", data_files="runs/demo/hf/data/set-?????-of-?????.parquet", '
        'split="train") or datasets.load_from_disk("runs/demo/hf/arrow/set") (images embedded as bytes)')
