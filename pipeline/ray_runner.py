"""Runs stages on Ray Data. The only module of the build that imports `ray`.

Items travel in shards (lists of items, pickled once). They come either from readers, callables that run
as Ray Data read tasks in the workers (a build's sources: the driver never holds or pickles their data),
or from a list in the driver (`run`). Consecutive stages that need
no per-worker state are fused into one `map_batches` over plain Ray tasks, so items cross a process
boundary once per segment rather than once per stage; a stage with `setup()` or GPUs gets its own actor
pool (`concurrency` actors, `num_gpus` each). Results are returned in (reader, shard) order, so the output
does not depend on how many workers ran or in which order they finished.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import pickle
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from pipeline.stage import Stage

log = logging.getLogger("vlforge.ray")


@dataclass
class RayOptions:
    address: str | None = None
    workers: int | None = None
    shard_size: int = 4096
    #: Actors per actor-pool stage (stages with setup()); default: 1.
    actors: int = 1
    progress: bool = True


Ledger = Counter  # (stage name, item type name, source name) -> count of that stage's outputs

#: How long Ray Data's scheduler may block waiting on running tasks before it hands out the next shard.
SCHEDULER_POLL_S = 0.02

#: A reader runs in a Ray worker and yields shards (lists of items); it must be picklable.
Reader = Callable[[], Iterable[list[Any]]]


@dataclass
class ReadReport:
    """What one reader did in its worker, handed to the driver when it is done."""

    part: int
    items: int
    shards: int
    seconds: float
    cpu_seconds: float


def _chain(stages: Sequence[Stage], items: list[Any]) -> tuple[list[Any], Ledger]:
    """Run `stages` in order over one batch; also count what each stage put out (the flow ledger)."""
    ledger: Ledger = Counter()
    # Items are acyclic and freed by reference counting; the cyclic collector would rescan every live
    # item on each allocation burst (it more than doubled the time per sample), so it is paused here.
    with gc_paused():
        for st in stages:
            items = st.process_batch(items)
            ledger.update((st.name, type(it).__name__, _source_of(it)) for it in items)
    return items, ledger


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a burst of allocation-heavy, cycle-free work."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def run_local(items: list[Any], stages: Sequence[Stage]) -> list[Any]:
    """Run every stage in this process (no Ray): the reference that tests compare the Ray runs with."""
    for st in stages:
        st.setup()
    return _chain(stages, items)[0]


def _import_quietly(name: str) -> None:
    """Import a module ahead of its use (on a thread); an error shows again at the real import."""
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - re-raised where the module is used
        pass


def _poll_tasks_every(seconds: float) -> None:
    """Make Ray Data's scheduling loop look at finished tasks every `seconds` (at most).

    Ray Data's loop waits up to 0.1 s in `ray.wait` for all running tasks before it takes in a finished
    one, and a finished map task then needs another turn before the next shard is dispatched. With one
    shard per task, a worker sat idle 0.1-0.2 s after every shard: 7.9 s of idle worker time in the
    500k-sample benchmark (50 shards, 2 workers), against 3.8 s at 20 ms. Polling every 5 ms cut no more
    and cost the driver 3 s of CPU. The setting is Ray Data's internal constant (no public option in
    ray 2.60): if a Ray version lacks it, nothing changes."""
    try:
        from ray.data._internal.execution import streaming_executor_state as state
    except ImportError:  # pragma: no cover - another Ray layout
        return
    current = getattr(state, "WAIT_FOR_TASK_COMPLETION_TIMEOUT_S", None)
    if isinstance(current, (int, float)) and current > seconds:
        state.WAIT_FOR_TASK_COMPLETION_TIMEOUT_S = seconds


def _source_of(item: Any) -> str:
    src = getattr(item, "source", "")
    return src if isinstance(src, str) else ""


def _run_batch(stages: Sequence[Stage], batch: dict[str, Any]) -> dict[str, Any]:
    """One Ray batch: unpickle each shard (a list of items, or items + the ledger so far), run, pickle.

    Rows with a negative shard number are a reader's report (or error) and pass through as they are."""
    outs = []
    for shard, p in zip(batch["shard"], batch["payload"]):
        if shard < 0:
            outs.append(p)
            continue
        t0 = time.process_time()
        with gc_paused():
            data = pickle.loads(p)
        items, ledger = data if isinstance(data, tuple) else (data, Counter())
        items, more = _chain(stages, items)
        ledger.update(more)
        # worker CPU milliseconds per segment, so a run can tell compute from overhead
        ledger[("cpu_ms", "+".join(st.name for st in stages), "")] += int((time.process_time() - t0) * 1000)
        with gc_paused():
            outs.append(pickle.dumps((items, ledger), protocol=5))
    out = {k: list(v) for k, v in batch.items() if k != "payload"}
    out["payload"] = outs
    return out


def _read_part(part: int, reader: Reader) -> Iterator[Any]:
    """A read task: run `reader` in this worker, one block per shard, then one block with its ReadReport
    (or the error it raised, which the driver re-raises: a source's error message names file and fix)."""
    import pyarrow as pa

    def block(shard: int, payload: bytes) -> Any:
        return pa.table({"part": pa.array([part], pa.int32()), "shard": pa.array([shard], pa.int32()),
                         "payload": pa.array([payload], pa.large_binary())})

    t0, c0 = time.perf_counter(), time.process_time()
    n_items = n_shards = 0
    try:
        for shard in reader():
            with gc_paused():
                payload = pickle.dumps(shard, protocol=5)
            yield block(n_shards, payload)
            n_items += len(shard)
            n_shards += 1
        end: Any = ReadReport(part, n_items, n_shards, time.perf_counter() - t0, time.process_time() - c0)
    except Exception as e:  # handed to the driver as data, so it sees the reader's own exception
        end = e
    try:
        payload = pickle.dumps(end, protocol=5)
    except Exception:  # an exception that cannot be pickled is passed on as its text
        payload = pickle.dumps(RuntimeError(f"reader {part} failed: {type(end).__name__}: {end}"), protocol=5)
    yield block(-1, payload)


def _readers_datasource(readers: Sequence[Reader]) -> Any:
    """A Ray Data datasource with one read task per reader."""
    import functools

    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    class ReadersDatasource(Datasource):
        def __init__(self) -> None:
            super().__init__()

        def get_name(self) -> str:
            return "VlforgeReaders"

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            meta = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
            return [ReadTask(functools.partial(_read_part, i, r), meta) for i, r in enumerate(readers)]

    return ReadersDatasource()


class _TaskFn:
    """A picklable callable for a fused segment of stateless stages (runs as plain Ray tasks)."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return _run_batch(self.stages, batch)


class _ActorFn:
    """A callable class for an actor pool: `setup()` runs once per actor, then batches stream through."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)
        for st in self.stages:
            st.setup()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return _run_batch(self.stages, batch)


def segments(stages: Sequence[Stage]) -> list[tuple[bool, list[Stage]]]:
    """Split stages into (needs_actor, [stages]) runs: stateless stages fuse, stateful ones stand alone."""
    segs: list[tuple[bool, list[Stage]]] = []
    for st in stages:
        if st.needs_actor:
            segs.append((True, [st]))
        elif segs and not segs[-1][0]:
            segs[-1][1].append(st)
        else:
            segs.append((False, [st]))
    return segs


class _Progress:
    """Thread-safe shard counter that reports (done, total) to a callback."""

    def __init__(self, callback: Callable[[int, int], None] | None) -> None:
        self.callback = callback
        self.total = 0
        self.finished = 0
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            self.total += n

    def done(self) -> None:
        with self.lock:
            self.finished += 1
            if self.callback is not None:
                self.callback(self.finished, self.total)


class RayRunner:
    """Starts (or connects to) Ray once and runs stage lists over item lists."""

    def __init__(self, options: RayOptions) -> None:
        self.options = options
        self._started = False
        #: What each stage put out in the last run, summed over shards (see `_chain`).
        self.ledger: Ledger = Counter()

    def start(self) -> None:
        if self._started:
            return
        if not log.isEnabledFor(logging.DEBUG):
            os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
        import ray

        address = self.options.address or os.environ.get("RAY_ADDRESS") or None
        t0 = time.perf_counter()
        # ray.init mostly waits for the processes it starts; Ray Data's import (about 1 s of CPU) fits in
        # that wait (measured: 0.4-1.0 s off the start on 2 cores).
        importing = threading.Thread(target=_import_quietly, args=("ray.data",), name="vlforge-import", daemon=True)
        importing.start()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = dict(include_dashboard=False, ignore_reinit_error=True,
                                          logging_level=logging.WARNING, log_to_driver=True)
            if address:
                ray.init(address=address, **kwargs)
            else:
                # Local workers import what the driver can: they inherit this environment, so the driver's
                # sys.path goes into PYTHONPATH (a runtime_env would do the same, but slows every worker start).
                paths = [p for p in sys.path if p and os.path.isdir(p)]
                old = os.environ.get("PYTHONPATH")
                os.environ["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
                ray.init(num_cpus=self.options.workers or os.cpu_count() or 1, **kwargs)
        importing.join()
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.options.progress and sys.stderr.isatty()
        ctx.execution_options.preserve_order = True
        # Each row is a shard the runner (or a reader) sized itself: one block per row, so a reader's shards
        # are processed in parallel as they come, rather than buffered into 128 MiB blocks first.
        ctx.target_max_block_size = 1
        _poll_tasks_every(SCHEDULER_POLL_S)
        self._started = True
        log.info("ray ready in %.1fs (%s)", time.perf_counter() - t0, address or "local")

    @property
    def workers(self) -> int:
        import ray

        if self.options.workers:
            return self.options.workers
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, items: list[Any], stages: Sequence[Stage],
            on_progress: Callable[[int, int], None] | None = None) -> list[Any]:
        """Run `stages` over `items` (a list in the driver) and return the results in input order."""
        self.ledger = Counter()
        if not items:
            return []
        self.start()
        out, self.ledger = self._run_part(items, stages, _Progress(on_progress))
        return out

    def run_readers(self, readers: Sequence[Reader], stages: Sequence[Stage],
                    on_progress: Callable[[int, int], None] | None = None,
                    on_read: Callable[[ReadReport], None] | None = None) -> list[Any]:
        """Run each reader as a read task in a worker and `stages` over the shards it yields; return all
        results, reader after reader, in shard order. `on_read` hears from each reader when it is done;
        an exception a reader raised is raised here."""
        self.ledger = Counter()
        if not readers:
            return []
        self.start()
        import ray

        progress = _Progress(on_progress)
        if any(is_actor for is_actor, _ in segments(stages)):
            # Actor pools (models) hold their CPUs for the whole run, and Ray Data then gives a read task no
            # slot on a small cluster. Such runs are bound by their models, not by reading: the readers run
            # here, in the driver, and their shards go in as a list.
            return self._run_readers_here(readers, stages, progress, on_read)
        ds = ray.data.read_datasource(_readers_datasource(readers), override_num_blocks=len(readers))
        ds = self._with_stages(ds, stages, self.workers)
        results: dict[tuple[int, int], list[Any]] = {}
        for row in ds.iter_rows():
            part, shard = int(row["part"]), int(row["shard"])
            with gc_paused():
                data = pickle.loads(row["payload"])
            if shard < 0:
                if isinstance(data, BaseException):
                    raise data
                progress.add(data.shards)
                if on_read is not None:
                    on_read(data)
                continue
            items, ledger = data if isinstance(data, tuple) else (data, Counter())
            results[(part, shard)] = items
            self.ledger.update(ledger)
            progress.done()
        return [x for key in sorted(results) for x in results[key]]

    def _run_readers_here(self, readers: Sequence[Reader], stages: Sequence[Stage], progress: "_Progress",
                          on_read: Callable[[ReadReport], None] | None) -> list[Any]:
        items: list[Any] = []
        for part, reader in enumerate(readers):
            t0, c0 = time.perf_counter(), time.process_time()
            n_items = n_shards = 0
            for shard in reader():
                items.extend(shard)
                n_items += len(shard)
                n_shards += 1
            if on_read is not None:
                on_read(ReadReport(part, n_items, n_shards, time.perf_counter() - t0, time.process_time() - c0))
        out, self.ledger = self._run_part(items, stages, progress)
        return out

    def _run_part(self, items: list[Any], stages: Sequence[Stage], progress: "_Progress"
                  ) -> tuple[list[Any], Ledger]:
        if not stages:
            return list(items), Counter()
        import ray

        size = self.options.shard_size
        shards = [items[i:i + size] for i in range(0, len(items), size)]
        progress.add(len(shards))
        with gc_paused():
            rows = [{"shard": i, "payload": pickle.dumps(s, protocol=5)} for i, s in enumerate(shards)]
        ds = self._with_stages(ray.data.from_items(rows, override_num_blocks=len(rows)), stages,
                               min(self.workers, len(shards)))
        results: dict[int, list[Any]] = {}
        total: Ledger = Counter()
        for row in ds.iter_rows():
            with gc_paused():
                out, ledger = pickle.loads(row["payload"])
            results[int(row["shard"])] = out
            total.update(ledger)
            progress.done()
        return [x for i in range(len(shards)) for x in results[i]], total

    def _with_stages(self, ds: Any, stages: Sequence[Stage], workers: int) -> Any:
        """`ds` with a map_batches per segment of `stages` (one shard per batch)."""
        import ray

        for is_actor, segment in segments(stages):
            gpus = max(st.num_gpus for st in segment)
            if is_actor:
                # a stage may say how many actors it wants (its `concurrency`), else the runner's default
                actors = max((getattr(st, "concurrency", 0) or 0 for st in segment), default=0) or self.options.actors
                ds = ds.map_batches(_ActorFn, fn_constructor_args=(segment,), batch_size=1,
                                    compute=ray.data.ActorPoolStrategy(size=actors),
                                    num_gpus=gpus or None, num_cpus=1 if not gpus else None)
            else:
                # A sized task pool also keeps these tasks apart from the read tasks (which Ray Data would
                # otherwise fuse with them, so one worker would both read and process a whole source).
                ds = ds.map_batches(_TaskFn(segment), batch_size=1, num_cpus=1,
                                    compute=ray.data.TaskPoolStrategy(size=workers))
        return ds

    def prewarm(self, modules: Sequence[str]) -> None:
        """Import `modules` in each worker process now (without waiting), so the first batches do not pay
        for the imports while the driver is still reading."""
        self.start()
        import ray

        @ray.remote(num_cpus=1)
        def _import(names: Sequence[str]) -> None:
            import importlib

            for n in names:
                importlib.import_module(n)

        self._warm = [_import.remote(list(modules)) for _ in range(self.workers)]

    def shutdown(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
