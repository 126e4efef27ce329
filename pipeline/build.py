"""`vlforge build`: read sources, run the stages on Ray, write outputs, rejects, stats and run metadata."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from outputs.base import Writer, atomic_write_text
from outputs.registry import WRITERS
from pipeline.export import Exported, ExportStage
from pipeline.ray_runner import RayOptions, RayRunner, gc_paused
from pipeline.stage import Item, Stage
from pipeline.stats import compute_stats
from pipeline.validate import ValidateStage
from schemas.record import AnnotationRecord
from schemas.recipe import Recipe
from schemas.reject import Reject
from schemas.sample import Sample
from sources.registry import get_source

log = logging.getLogger("vlforge.build")

KEY_PACKAGES = ("pydantic", "ray", "jinja2", "pyyaml", "pillow", "numpy", "pyarrow")


@dataclass
class BuildResult:
    """What a build produced: where, how much, and how long it took."""

    out_dir: Path
    files: list[Path]
    stats: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    #: One line per output format on how to point its trainer at it.
    usage: list[str] = field(default_factory=list)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("vlforge", *KEY_PACKAGES):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def read_sources(recipe: Recipe, echo: Callable[[str], None] = lambda s: None) -> tuple[list[Item], dict[str, int]]:
    """Read every source in recipe order. Returns the items and how many items each source yielded."""
    items: list[Item] = []
    counts: dict[str, int] = {}
    for opts in recipe.sources:
        src = get_source(opts.kind)(opts, recipe.images)
        t0 = time.perf_counter()
        n = len(items)
        with gc_paused():
            items.extend(src.read())
        counts[src.name] = len(items) - n
        echo(f"  read {src.name:<16} {len(items) - n:>9,} items  ({time.perf_counter() - t0:.1f}s)")
    return items, counts


def build_stages(recipe: Recipe, writers: list[Writer], export: bool = True) -> list[Stage]:
    """The per-item stages a recipe asks for, in order."""
    stages: list[Stage] = []
    if recipe.adapt is not None:
        from pipeline.adapt import AdaptStage

        a = recipe.adapt
        stages.append(AdaptStage(seed=recipe.seed, tasks=a.tasks, styles=dict(a.styles),
                                 template_dirs=list(a.templates),
                                 group_max_turns=a.group_per_image.max_turns if a.group_per_image else None,
                                 captions_per_image=a.captions_per_image))
    v = recipe.validate_
    stages.append(ValidateStage(max_chars_per_turn=v.max_chars_per_turn, max_turns=v.max_turns,
                                max_images=v.max_images))
    if export:
        stages.append(ExportStage(writers=writers))
    return stages


def _unused_record_rejects(results: list[Any]) -> list[Any]:
    """Records that no stage turned into samples (no adapt section) become explicit rejects."""
    out: list[Any] = []
    for r in results:
        if isinstance(r, AnnotationRecord):
            out.append(Reject(reason="no_task", stage="build", source=r.source, file=r.file, record=r.id,
                              message=f"record {r.id} of {r.source} was not used: the recipe has no `adapt` "
                                      "section. Add `adapt: {}` to turn records into samples"))
        else:
            out.append(r)
    return out


def build(recipe: Recipe, out_dir: str | os.PathLike[str] | None = None, workers: int | None = None,
          echo: Callable[[str], None] | None = None, runner: RayRunner | None = None) -> BuildResult:
    """Run a recipe end to end and write everything under `out_dir` (default: `recipe.outputs.dir`)."""
    say = echo or (lambda s: None)
    times: dict[str, float] = {}
    t_all = time.perf_counter()
    out = Path(out_dir or recipe.outputs.dir)
    writers = [WRITERS[f.kind](f, recipe.name) for f in recipe.outputs.formats]

    say(f"vlforge build: recipe {recipe.name!r}, seed {recipe.seed}")
    t0 = time.perf_counter()
    items, read_counts = read_sources(recipe, say)
    times["read"] = time.perf_counter() - t0
    n_records = sum(1 for it in items if isinstance(it, AnnotationRecord))

    own_runner = runner is None
    runner = runner or RayRunner(RayOptions(address=recipe.ray.address, workers=workers or recipe.ray.workers,
                                            shard_size=recipe.ray.shard_size))
    t0 = time.perf_counter()
    runner.start()
    times["ray_start"] = time.perf_counter() - t0
    say(f"  running stages on Ray with {runner.workers} worker(s): "
        + " -> ".join(s.name for s in build_stages(recipe, writers)))
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 2.0 or done == total:
            last[0] = now
            say(f"  {done}/{total} shards done")

    results = runner.run(items, build_stages(recipe, writers), on_progress=progress)
    times["stages"] = time.perf_counter() - t0
    n_workers = runner.workers
    if own_runner:
        runner.shutdown()
    results = _unused_record_rejects(results)

    exported = [r for r in results if isinstance(r, Exported)]
    rejects = [r for r in results if isinstance(r, Reject)]
    stray = [r for r in results if isinstance(r, Sample)]
    if stray:  # pragma: no cover - the export stage encodes every sample
        raise RuntimeError(f"{len(stray)} samples were not exported")

    t0 = time.perf_counter()
    files = write_run(out, recipe, writers, exported, rejects)
    stats = compute_stats(read_counts, exported, rejects)
    stats["records"] = records_accounting(n_records, exported, rejects)
    files.append(atomic_write_text(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n"))
    times["write"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - t_all
    usage = [u for u in (w.usage(w.folder(out), recipe.images) for w in writers) if u]
    meta = {"recipe": recipe_as_resolved(recipe), "versions": versions(), "workers": n_workers,
            "seconds": {k: round(v, 3) for k, v in times.items()},
            "outputs": [str(p) for p in files]}
    files.append(atomic_write_text(out / "run.json", json.dumps(meta, indent=2) + "\n"))
    return BuildResult(out_dir=out, files=files, stats=stats, seconds=times, usage=usage)


def records_accounting(n_records: int, exported: list[Exported], rejects: list[Reject]) -> dict[str, Any]:
    """Every record read either gave at least one sample or was rejected as a whole: check it adds up."""
    used = {e.record_key for e in exported}
    used.update(r.sample_id.rsplit("/", 2)[0] for r in rejects if r.stage == "validate" and r.sample_id)
    whole = sum(1 for r in rejects if r.reason == "no_task")
    return {"read": n_records, "gave_samples": len(used), "rejected_whole": whole,
            "adds_up": n_records == len(used) + whole}


def write_run(out: Path, recipe: Recipe, writers: list[Writer], exported: list[Exported],
              rejects: list[Reject]) -> list[Path]:
    """Write every output format, then rejects.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for k, w in enumerate(writers):
        rows = [e.rows[k] for e in exported if e.rows[k] is not None]
        files.extend(w.write(rows, w.folder(out), recipe.images))
    lines = [r.model_dump_json(exclude_none=True) for r in rejects]
    files.append(atomic_write_text(out / "rejects.jsonl", "".join(line + "\n" for line in lines)))
    return files


def recipe_as_resolved(recipe: Recipe) -> dict[str, Any]:
    """The recipe with defaults filled in and paths resolved (secrets are never in a recipe: only env names)."""
    d = recipe.model_dump(mode="json", by_alias=True)
    d["sources"] = [s.model_dump(mode="json", exclude_none=True) for s in recipe.sources]
    return d


def summary(result: BuildResult) -> str:
    """A short human summary of a build."""
    s = result.stats
    lines = [
        f"samples: {s['samples']['accepted']:,} accepted, {s['samples']['rejected']:,} rejected "
        f"(of {s['samples']['generated']:,} generated); {s['rejects']['total']:,} rejects in total",
        f"records: {s['records']['read']:,} read, {s['records']['gave_samples']:,} gave samples, "
        f"{s['records']['rejected_whole']:,} rejected whole; adds up: {s['records']['adds_up']}",
    ]
    if s["per_task"]:
        lines.append("per task: " + ", ".join(f"{k} {v['accepted']:,}" for k, v in s["per_task"].items()))
    if s["rejects"]["by_reason"]:
        lines.append("reject reasons: " + ", ".join(f"{k} {v:,}" for k, v in s["rejects"]["by_reason"].items()))
    lines.append(f"time: {result.seconds.get('total', 0):.1f}s (read {result.seconds.get('read', 0):.1f}s, "
                 f"ray start {result.seconds.get('ray_start', 0):.1f}s, stages {result.seconds.get('stages', 0):.1f}s, "
                 f"write {result.seconds.get('write', 0):.1f}s)")
    lines.append(f"outputs in {result.out_dir}/:")
    lines.extend(f"  {p.relative_to(result.out_dir) if p.is_relative_to(result.out_dir) else p}"
                 for p in result.files)
    lines.extend(result.usage)
    return "\n".join(lines)


def echo_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
