"""The HF datasets validator: each bad-row fixture is caught at its row, dataset files (parquet, save_to_disk)
are read too, and a dataset written the naive way (`Dataset.to_parquet` of image paths) is caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from outputs.validators import VALIDATORS, Violation, validate_file, validate_hf
from outputs.validators.hf import check_hf_file
from pipeline.cli import main

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "outputs"
IMAGES = str(ASSETS)
HF_BAD = [(1, "row_not_object"), (2, "missing_column"), (3, "missing_messages"), (4, "turn_malformed"),
          (5, "unknown_role"), (6, "system_not_first"), (7, "first_turn_not_user"), (8, "roles_not_alternating"),
          (9, "last_turn_not_assistant"), (10, "empty_value"), (11, "image_token_count"), (12, "bad_image_field"),
          (13, "image_missing"), (14, "image_undecodable")]

GOOD = {"id": "ok", "messages": [{"role": "user", "content": "<image>\nWhat is it?"},
                                 {"role": "assistant", "content": "A square."}]}


def pairs(violations: list[Violation]) -> list[tuple[int | None, str]]:
    return [(v.row, v.rule) for v in violations]


def test_registered() -> None:
    assert VALIDATORS["hf"] is check_hf_file


def test_bad_rows_each_caught_at_their_row() -> None:
    assert pairs(validate_file(ASSETS / "hf_bad.jsonl", "hf", IMAGES)) == HF_BAD


def test_image_files_are_checked_only_with_an_image_folder() -> None:
    assert pairs(validate_file(ASSETS / "hf_bad.jsonl", "hf")) == HF_BAD[:-2]


def test_messages_name_the_row_and_the_fix() -> None:
    found = validate_file(ASSETS / "hf_bad.jsonl", "hf", IMAGES)
    assert found[10].message == ("row 11 (id 'two-tokens-one-image') has 2 <image> placeholder(s) for 1 image(s); "
                                 "write exactly one <image> per image (none for a text-only row)")
    assert found[13].message.startswith("row 14 (id 'image-not-an-image'): image(s) 0 'img/broken.png' "
                                        "(UnidentifiedImageError: ")


def test_pure_rows() -> None:
    assert validate_hf([dict(GOOD, images=["img/a.png"])], IMAGES) == []
    assert pairs(validate_hf({"rows": []})) == [(None, "not_a_list")]


def _write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_images_saved_as_paths_by_to_parquet_are_not_embedded(tmp_path: Path) -> None:
    from datasets import Dataset

    from outputs.hf import hf_features

    row = dict(GOOD, images=[str(ASSETS / "img" / "a.png")], task="t", source="s", lineage="{}")
    path = tmp_path / "naive.parquet"
    Dataset.from_list([row], features=hf_features()).to_parquet(str(path))
    (v,) = validate_file(path, "hf")
    assert (v.row, v.rule) == (0, "image_not_embedded")
    assert v.message.startswith("row 0 (id 'ok'): image(s) [0] are stored as a path without bytes; embed")


def test_undecodable_bytes_and_a_missing_column_in_parquet(tmp_path: Path) -> None:
    garbage = {"bytes": b"not an image", "path": "x.png"}
    bad_bytes = _write_parquet(tmp_path / "a.parquet", [dict(GOOD, images=[garbage])])
    assert pairs(validate_file(bad_bytes, "hf")) == [(0, "image_undecodable")]
    no_images = _write_parquet(tmp_path / "b.parquet", [dict(GOOD)])
    found = validate_file(no_images, "hf")
    assert pairs(found) == [(None, "missing_column")]
    assert found[0].message == (f"{no_images}: the dataset has no 'images' column (columns: ['id', 'messages']); "
                                "a HF messages dataset reads it: add it")


def test_a_folder_of_shards_names_the_shard_of_each_violation(tmp_path: Path) -> None:
    image = {"bytes": (ASSETS / "img" / "a.png").read_bytes(), "path": "a.png"}
    _write_parquet(tmp_path / "data" / "d-00000-of-00002.parquet", [dict(GOOD, images=[image])])
    _write_parquet(tmp_path / "data" / "d-00001-of-00002.parquet", [dict(GOOD, images=[image, image])])
    (v,) = validate_file(tmp_path, "hf")
    assert (v.row, v.rule) == (1, "image_token_count")
    assert v.message.startswith("row 1 (id 'ok') [d-00001-of-00002.parquet row 0] has 1 <image> placeholder(s)")


def test_shards_with_different_columns(tmp_path: Path) -> None:
    _write_parquet(tmp_path / "x-00000-of-00002.parquet", [dict(GOOD, images=[])])
    _write_parquet(tmp_path / "x-00001-of-00002.parquet", [dict(GOOD, images=[], extra=1)])
    found = validate_file(tmp_path, "hf")
    assert pairs(found) == [(None, "unreadable_dataset"), (0, "image_token_count"), (1, "image_token_count")]
    assert "load_dataset cannot join shards of different columns" in found[0].message


def test_a_file_that_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("not parquet")
    (v,) = validate_file(path, "hf")
    assert v.rule == "unreadable_dataset" and v.message.startswith(f"{path} cannot be read as parquet")


def test_a_folder_without_a_dataset_and_a_missing_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (v,) = validate_file(tmp_path / "empty", "hf")
    assert v.rule == "file_missing" and "holds no parquet file and no save_to_disk dataset" in v.message
    assert pairs(validate_file(tmp_path / "nothing", "hf")) == [(None, "file_missing")]


def test_cli_lists_every_violation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ASSETS / "hf_bad.jsonl"), "--format", "hf", "--images", IMAGES]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(HF_BAD) + 1
    assert lines[0].startswith("row 1: [row_not_object] row 1 is a JSON array")
    assert lines[-1] == f"{ASSETS / 'hf_bad.jsonl'}: {len(HF_BAD)} violation(s) of the hf loader rules"
