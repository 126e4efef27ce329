"""Runs stages on Ray Data. The only module of the build that imports `ray`.

Items are cut into shards (lists of `shard_size` items, pickled once). Consecutive stages that need no
per-worker state are fused into one `map_batches` over plain Ray tasks, so items cross a process boundary
once per segment rather than once per stage; a stage with `setup()` or GPUs gets its own actor pool
(`concurrency` actors, `num_gpus` each). Results are returned in shard order, so the output does not depend
on how many workers ran or in which order they finished.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
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


def _source_of(item: Any) -> str:
    src = getattr(item, "source", "")
    return src if isinstance(src, str) else ""


def _run_batch(stages: Sequence[Stage], batch: dict[str, Any]) -> dict[str, Any]:
    """One Ray batch: unpickle each shard (a list of items, or items + the ledger so far), run, pickle."""
    outs = []
    for p in batch["payload"]:
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
    return {"shard": list(batch["shard"]), "payload": outs}


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
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.options.progress and sys.stderr.isatty()
        ctx.execution_options.preserve_order = True
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
        """Run `stages` over `items` and return the results in input order."""
        return self.run_parts([(items, stages)], on_progress)

    def run_parts(self, parts: Iterable[tuple[list[Any], Sequence[Stage]]],
                  on_progress: Callable[[int, int], None] | None = None) -> list[Any]:
        """Run each part's stages over its items; return all results, part after part, in input order.

        `parts` may be a generator that is still reading sources: each part starts on Ray as soon as it
        is yielded, so one source is processed while the next is still being read. Callers keep stages
        with actors (models) in a single part, so that their models load once."""
        self.ledger = Counter()
        self.start()
        progress = _Progress(on_progress)
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="vlforge-part") as pool:
            futures = [pool.submit(self._run_part, items, stages, progress) for items, stages in parts if items]
            outs = [f.result() for f in futures]
        out: list[Any] = []
        for items, ledger in outs:
            out.extend(items)
            self.ledger.update(ledger)
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
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        workers = min(self.workers, len(shards))
        for is_actor, segment in segments(stages):
            gpus = max(st.num_gpus for st in segment)
            if is_actor:
                # a stage may say how many actors it wants (its `concurrency`), else the runner's default
                actors = max((getattr(st, "concurrency", 0) or 0 for st in segment), default=0) or self.options.actors
                ds = ds.map_batches(_ActorFn, fn_constructor_args=(segment,), batch_size=1,
                                    compute=ray.data.ActorPoolStrategy(size=actors),
                                    num_gpus=gpus or None, num_cpus=1 if not gpus else None)
            else:
                ds = ds.map_batches(_TaskFn(segment), batch_size=1, num_cpus=1,
                                    compute=ray.data.TaskPoolStrategy(size=workers))
        results: dict[int, list[Any]] = {}
        total: Ledger = Counter()
        for row in ds.iter_rows():
            with gc_paused():
                out, ledger = pickle.loads(row["payload"])
            results[int(row["shard"])] = out
            total.update(ledger)
            progress.done()
        return [x for i in range(len(shards)) for x in results[i]], total

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
