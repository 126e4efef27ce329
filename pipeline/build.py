"""`vlforge build`: read sources, run the stages on Ray, write outputs, rejects, stats and run metadata."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import threading
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from outputs.base import Writer, atomic_write_text
from outputs.registry import WRITERS
from outputs.card import write_card
from pipeline.dedup import Dedup, sha256_file_hasher
from pipeline.export import ExportedShard, ExportStage
from pipeline.mix import Mixer
from pipeline.parse import ParseStage, SourceScan
from pipeline.ray_runner import RayOptions, RayRunner, ReadReport
from pipeline.stage import Stage
from pipeline.stats import compute_stats
from pipeline.validate import ValidateStage
from schemas.record import AnnotationRecord
from schemas.recipe import Recipe
from schemas.reject import Reject
from schemas.sample import Sample
from sources.base import RawUnit
from sources.registry import get_source

log = logging.getLogger("vlforge.build")

#: Imported in each Ray worker while the driver reads, so the first batches start at full speed.
WORKER_MODULES = ("pipeline.parse", "pipeline.adapt", "pipeline.validate", "pipeline.export", "sources.registry",
                  "outputs.registry")

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


def build_stages(recipe: Recipe, writers: list[Writer], export: bool = True, generate_url: str | None = None,
                 generate_stats: Path | None = None) -> list[Stage]:
    """The per-item stages a recipe asks for, in order."""
    stages: list[Stage] = [ParseStage()]
    if recipe.describe is not None:
        from pipeline.describe.stage import DescribeStage

        stages.append(DescribeStage(cfg=recipe.describe, image_root=recipe.images))
    if recipe.generate is not None:
        from pipeline.generate.stage import GenerateStage

        stages.append(GenerateStage.from_section(recipe.generate, recipe.seed, base_url=generate_url,
                                                 keep_records=recipe.adapt is not None,
                                                 stats_dir=str(generate_stats) if generate_stats else None))
    if recipe.adapt is not None:
        from pipeline.adapt import AdaptStage

        a = recipe.adapt
        stages.append(AdaptStage(seed=recipe.seed, tasks=a.tasks, styles=dict(a.styles),
                                 template_dirs=list(a.templates),
                                 group_max_turns=a.group_per_image.max_turns if a.group_per_image else None,
                                 captions_per_image=a.captions_per_image,
                                 source_tasks={s.source_name: list(s.tasks) for s in recipe.sources
                                               if s.tasks is not None}))
    v = recipe.validate_
    stages.append(ValidateStage(max_chars_per_turn=v.max_chars_per_turn, max_turns=v.max_turns,
                                max_images=v.max_images))
    if export:
        stages.append(ExportStage(writers=writers, tokenizer=_tokenizer(recipe)))
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
    own_runner = runner is None
    runner = runner or RayRunner(RayOptions(address=recipe.ray.address, workers=workers or recipe.ray.workers,
                                            shard_size=recipe.ray.shard_size))
    # Each source is read by a read task in a worker (`SourceScan`), and its shards go through the stages
    # as soon as they are read; the driver only collects the results.
    t0 = time.perf_counter()
    runner.start()
    runner.prewarm(WORKER_MODULES)
    times["ray_start"] = time.perf_counter() - t0
    sources = [get_source(opts.kind)(opts, recipe.images) for opts in recipe.sources]
    # Dedup and mixing need the whole validated set: then the workers send Samples back, the driver runs
    # them, and the export runs on Ray afterwards.
    global_stages = recipe.dedup is not None or recipe.mix is not None
    server = _start_llm_server(recipe, say)
    gen_stats = out / ".generate_stats"
    if recipe.generate is not None:
        shutil.rmtree(gen_stats, ignore_errors=True)
    stages = build_stages(recipe, writers, export=not global_stages,
                          generate_url=server.base_url if server else None, generate_stats=gen_stats)
    say(f"  reading {len(sources)} source(s) and running stages on Ray with {runner.workers} worker(s): "
        + " -> ".join(s.name for s in stages))
    last = [0.0]
    n_read = [0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 2.0:
            last[0] = now
            say(f"  {done} shards done so far ({total} from the {n_read[0]} source(s) read)")

    def on_read(r: ReadReport) -> None:
        n_read[0] += 1
        say(f"  read {sources[r.part].name:<16} {r.items:>9,} units in {r.seconds:.1f}s")
        if n_read[0] == len(sources):
            times["read"] = time.perf_counter() - t0

    readers = [SourceScan(src, recipe.ray.shard_size) for src in sources]
    try:
        results = runner.run_readers(readers, stages, on_progress=progress, on_read=on_read)
    finally:
        if server is not None:
            server.stop()
    ledger = runner.ledger
    mix_report: dict[str, Any] | None = None
    if global_stages:
        samples = [r for r in results if isinstance(r, Sample)]
        results = [r for r in results if not isinstance(r, Sample)]
        samples, results, mix_report = run_global_stages(recipe, samples, results, say)
        results.extend(runner.run(samples, [ExportStage(writers=writers, tokenizer=_tokenizer(recipe))]))
        ledger = ledger + runner.ledger
    times["stages"] = time.perf_counter() - t0
    n_workers = runner.workers
    # Ray takes a second or two to stop its processes, mostly waiting: it stops while the driver writes.
    stopping = threading.Thread(target=runner.shutdown, name="vlforge-ray-stop") if own_runner else None
    if stopping is not None:
        stopping.start()
    try:
        return _finish(recipe, out, writers, results, ledger, mix_report, gen_stats, times, t_all, n_workers)
    finally:
        if stopping is not None:
            stopping.join()


def _finish(recipe: Recipe, out: Path, writers: list[Writer], results: list[Any], ledger: Any,
            mix_report: dict[str, Any] | None, gen_stats: Path, times: dict[str, float], t_all: float,
            n_workers: int) -> BuildResult:
    """Write the outputs, rejects, stats, card and run metadata of a build from its stage results."""
    results = _unused_record_rejects(results)

    shards = [r for r in results if isinstance(r, ExportedShard)]
    rejects = [r for r in results if isinstance(r, Reject)]
    stray = [r for r in results if isinstance(r, (Sample, RawUnit))]
    if stray:  # pragma: no cover - the parse and export stages consume every unit and sample
        raise RuntimeError(f"{len(stray)} items were neither exported nor rejected")

    t0 = time.perf_counter()
    files = write_run(out, recipe, writers, shards, rejects)
    stats = compute_stats(ledger, shards, rejects, tokenizer=_tokenizer(recipe))
    if recipe.generate is not None:
        from pipeline.generate.stats import report

        parts = [json.loads(p.read_text()) for p in sorted(gen_stats.glob("generate-*.json"))]
        g = recipe.generate
        stats["generate"] = report(parts, g.cost_per_1k_prompt_tokens, g.cost_per_1k_completion_tokens)
        shutil.rmtree(gen_stats, ignore_errors=True)
    if mix_report is not None:
        stats["mix"] = mix_report
        # repeated copies made by up-sampling were never generated as such
        stats["samples"]["generated"] -= mix_report["text_only"]["repeats"]
    files.append(atomic_write_text(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n"))
    if recipe.outputs.card:
        files.append(write_card(out, recipe.name, stats, card_examples(shards, writers,
                                                                      recipe.outputs.card_examples),
                                license=recipe.outputs.license))
    times["write"] = time.perf_counter() - t0
    times["total"] = time.perf_counter() - t_all
    usage = [u for u in (w.usage(w.folder(out), recipe.images) for w in writers) if u]
    meta = {"recipe": recipe_as_resolved(recipe), "versions": versions(), "workers": n_workers,
            "seconds": {k: round(v, 3) for k, v in times.items()},
            "driver_cpu_seconds": round(time.process_time(), 3),
            "worker_cpu_seconds": {seg: ms / 1000 for (kind, seg, _), ms in ledger.items() if kind == "cpu_ms"},
            "outputs": [str(p) for p in files]}
    files.append(atomic_write_text(out / "run.json", json.dumps(meta, indent=2) + "\n"))
    return BuildResult(out_dir=out, files=files, stats=stats, seconds=times, usage=usage)


def _start_llm_server(recipe: Recipe, say: Callable[[str], None]) -> Any:
    """With `generate.endpoint: local`, one embedded llama.cpp server for every worker, on loopback."""
    if recipe.generate is None or recipe.generate.endpoint != "local":
        return None
    from pipeline.llm.server import LocalServer

    server = LocalServer(recipe.generate.local, recipe.generate.model_name).start()
    say(f"  local LLM server: {server.base_url} ({recipe.generate.model_name})")
    return server


def _tokenizer(recipe: Recipe) -> str | None:
    return recipe.mix.tokenizer if recipe.mix is not None else None


def run_global_stages(recipe: Recipe, samples: list[Sample], others: list[Any], say: Callable[[str], None]
                      ) -> tuple[list[Sample], list[Any], dict[str, Any] | None]:
    """Dedup, then mixing, over the whole validated set (in input order) in the driver."""
    report = None
    if recipe.dedup is not None:
        t0 = time.perf_counter()
        n = len(samples)
        samples, dups = Dedup(recipe.dedup).run(samples, sha256_file_hasher(recipe.images))
        others.extend(dups)
        say(f"  dedup: {n - len(samples):,} duplicate(s) of {n:,} samples ({time.perf_counter() - t0:.1f}s)")
    if recipe.mix is not None:
        samples, left_out, report = Mixer(recipe.mix, recipe.seed).run(samples)
        others.extend(left_out)
        say(f"  mix: text-only share {report['achieved_share']:.3f} (target {report['target_share']:.3f}, "
            f"by {recipe.mix.by})")
    return samples, others, report


def card_examples(shards: list[ExportedShard], writers: list[Writer], n: int) -> list[dict[str, Any]]:
    """The first sample of each task (then the next ones), as the first output format writes it."""
    if not writers or n <= 0:
        return []
    rows = [(sh.task[i], row) for sh in shards for i, row in enumerate(sh.rows[0]) if row is not None]
    firsts: dict[str, str] = {}
    for task, row in rows:
        firsts.setdefault(task, row)
    picked = list(firsts.values())[:n]
    return [json.loads(r) for r in picked]


def write_run(out: Path, recipe: Recipe, writers: list[Writer], shards: list[ExportedShard],
              rejects: list[Reject]) -> list[Path]:
    """Write every output format, then rejects.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for k, w in enumerate(writers):
        rows = [row for sh in shards for row in sh.rows[k] if row is not None]
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
    sec = result.seconds
    lines.append(f"time: {sec.get('total', 0):.1f}s (alongside each other: Ray started in {sec.get('ray_start', 0):.1f}s, "
                 f"sources read by {sec.get('read', 0):.1f}s, stages done by {sec.get('stages', 0):.1f}s; "
                 f"then writing {sec.get('write', 0):.1f}s)")
    lines.append(f"outputs in {result.out_dir}/:")
    lines.extend(f"  {p.relative_to(result.out_dir) if p.is_relative_to(result.out_dir) else p}"
                 for p in result.files)
    lines.extend(result.usage)
    return "\n".join(lines)


def echo_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
