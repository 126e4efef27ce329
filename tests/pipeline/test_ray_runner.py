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


@dataclass
class CountingReader:
    """A reader that yields `shards` shards of consecutive integers starting at `start`."""

    start: int
    shards: int
    size: int = 5
    fail: bool = False

    def __call__(self):
        for k in range(self.shards):
            yield list(range(self.start + k * self.size, self.start + (k + 1) * self.size))
        if self.fail:
            raise ValueError(f"reader starting at {self.start}: file x.json is broken; fix it")


def test_readers_run_in_workers_and_results_keep_reader_then_shard_order(runner: RayRunner) -> None:
    readers = [CountingReader(0, 3), CountingReader(100, 1), CountingReader(200, 0), CountingReader(300, 2)]
    items = [x for r in readers for shard in r() for x in shard]
    expected = run_local(items, [AddOne(), Fanout()])
    reports = []
    assert runner.run_readers(readers, [AddOne(), Fanout()], on_read=reports.append) == expected
    assert sorted((r.part, r.items, r.shards) for r in reports) == [(0, 15, 3), (1, 5, 1), (2, 0, 0), (3, 10, 2)]
    assert runner.ledger[("add_one", "int", "")] == len(items)
    # no stages: the readers' items, in order
    assert runner.run_readers(readers, []) == items


def test_a_readers_error_is_raised_in_the_driver(runner: RayRunner) -> None:
    with pytest.raises(ValueError, match=r"reader starting at 100: file x.json is broken; fix it"):
        runner.run_readers([CountingReader(0, 2), CountingReader(100, 1, fail=True)], [AddOne()])


def test_readers_feed_actor_stages(runner: RayRunner) -> None:
    readers = [CountingReader(0, 2), CountingReader(50, 1)]
    items = [x for r in readers for shard in r() for x in shard]
    reports = []
    assert runner.run_readers(readers, [AddOne(), Loaded()], on_read=reports.append) == \
        run_local(items, [AddOne(), Loaded()])
    assert [(r.part, r.items) for r in reports] == [(0, 10), (1, 5)]


def test_ray_data_hands_out_shards_without_the_100ms_wait(runner: RayRunner) -> None:
    # The runner lowers Ray Data's scheduler wait, an internal constant. If a Ray upgrade drops it, this
    # skips with a note: builds still work, but each shard leaves its worker idle for up to 0.2 s again.
    from ray.data._internal.execution import streaming_executor_state as state

    from pipeline.ray_runner import SCHEDULER_POLL_S

    runner.start()
    if not hasattr(state, "WAIT_FOR_TASK_COMPLETION_TIMEOUT_S"):
        pytest.skip("this Ray has no WAIT_FOR_TASK_COMPLETION_TIMEOUT_S: find its new scheduler wait")
    assert state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S == SCHEDULER_POLL_S < 0.1
