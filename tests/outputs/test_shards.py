"""Shard planning, naming and publishing (outputs/shards.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from outputs.shards import plan_shards, publish_folder, remove_stale_shards, shard_name, temp_folder


def test_shard_name_is_the_hub_pattern() -> None:
    assert shard_name("demo", 2, 13, "parquet") == "demo-00002-of-00013.parquet"


@pytest.mark.parametrize(("sizes", "max_rows", "max_bytes", "ranges"), [
    ([], 3, 100, [(0, 0)]),
    ([1] * 7, 3, 100, [(0, 3), (3, 6), (6, 7)]),
    ([1] * 6, 3, 100, [(0, 3), (3, 6)]),
    ([40, 40, 40, 10], 10, 100, [(0, 2), (2, 4)]),
    ([150, 10, 10], 10, 100, [(0, 1), (1, 3)]),
    ([10, 150, 10], 10, 100, [(0, 1), (1, 2), (2, 3)]),
])
def test_plan_shards_by_rows_and_bytes(sizes: list[int], max_rows: int, max_bytes: int,
                                       ranges: list[tuple[int, int]]) -> None:
    assert plan_shards(sizes, max_rows, max_bytes) == ranges


def test_remove_stale_shards_touches_only_that_name(tmp_path: Path) -> None:
    for n in ("a-00000-of-00002.jsonl", "a-00001-of-00002.jsonl", "a-00000-of-00001.jsonl", "ab-00000-of-00001.jsonl",
              "a.jsonl", "a-00000-of-00001.parquet"):
        (tmp_path / n).write_text("x")
    remove_stale_shards(tmp_path, "a", "jsonl", [tmp_path / "a-00000-of-00001.jsonl"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-00000-of-00001.jsonl", "a-00000-of-00001.parquet",
                                                          "a.jsonl", "ab-00000-of-00001.jsonl"]


def test_publish_folder_replaces_an_existing_one(tmp_path: Path) -> None:
    (tmp_path / "out" / "old").mkdir(parents=True)
    (tmp_path / "out" / "old" / "stale.txt").write_text("old")
    tmp = temp_folder(tmp_path, "x")
    (tmp / "new").mkdir()
    (tmp / "new" / "fresh.txt").write_text("new")
    assert publish_folder(tmp / "new", tmp_path / "out" / "old") == tmp_path / "out" / "old"
    assert [p.name for p in (tmp_path / "out" / "old").iterdir()] == ["fresh.txt"]
    assert list(tmp.iterdir()) == []
