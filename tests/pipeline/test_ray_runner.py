"""The Ray runner: stage fusion, actor pools for stages with setup(), order kept whatever the workers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipeline.ray_runner import RayOptions, RayRunner, run_local, segments
from pipeline.stage import Stage


@dataclass
class AddOne(Stage):
    name = "add_one"

    def process_batch(self, items: list) -> list:
        return [i + 1 for i in items]


@dataclass
class Fanout(Stage):
    """Emits a variable number of items per input, so shard sizes change between stages."""

    name = "fanout"

    def process_batch(self, items: list) -> list:
        return [f"{i}:{k}" for i in items for k in range(i % 3)]


@dataclass
class Loaded(Stage):
    """A stage with per-worker state: must run in an actor pool with setup() called first."""

    name = "loaded"
    suffix: str = "!"

    def setup(self) -> None:
        self.model = self.suffix * 2

    def process_batch(self, items: list) -> list:
        return [f"{i}{self.model}" for i in items]


def test_segments_fuse_stateless_stages() -> None:
    a, f, l = AddOne(), Fanout(), Loaded()
    assert segments([a, f, l, a]) == [(False, [a, f]), (True, [l]), (False, [a])]


@pytest.fixture(scope="module")
def runner():
    r = RayRunner(RayOptions(workers=2, shard_size=7, progress=False))
    r.start()
    yield r
    r.shutdown()


def test_ray_matches_local_and_keeps_order(runner: RayRunner) -> None:
    items = list(range(100))
    stages = [AddOne(), Fanout(), Loaded()]
    expected = run_local(items, [AddOne(), Fanout(), Loaded()])
    assert runner.run(items, stages) == expected
    assert expected[:3] == ["1:0!!", "2:0!!", "2:1!!"]
    # one worker gives the same result
    runner.options.workers = 1
    try:
        assert runner.run(items, stages) == expected
    finally:
        runner.options.workers = 2


def test_empty_input(runner: RayRunner) -> None:
    assert runner.run([], [AddOne()]) == []
