"""Benchmark: the generate stage against the embedded llama.cpp server with several parallel slots.

Compares, in the same run and on the same server:
  - the generate stage (prompt rendering, client, cache writes, parsing, filters), fresh cache;
  - a plain concurrent load generator sending the very same requests (same messages, sampling, seed and
    JSON schema) with the `openai` client at the same concurrency;
and reports completion tokens per second of each and their ratio, then the time and the number of calls
of a fully cached rerun of the stage. Both sides send identical prompts, so the server's prompt cache is
off (otherwise whichever side runs second would skip most prompt processing); rounds alternate (load
generator, stage, then stage, load generator, ...) so that neither side always runs on a warmer server.

Usage: python bench/generate.py [--records 8] [--slots 4] [--max-tokens 64] [--rounds 2]
Prints one `name value` figure per line.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.generate.prompts import PromptBuilder, reply_schema  # noqa: E402
from pipeline.generate.stage import GenerateStage, request_seed, sample_id, task_name  # noqa: E402
from pipeline.generate.stats import summarize  # noqa: E402
from pipeline.llm.client import NO_KEY, Sampling, response_format  # noqa: E402
from pipeline.llm.config import GenerateSection, LocalServerOptions  # noqa: E402
from pipeline.llm.server import LocalServer  # noqa: E402
from schemas.record import AnnotationRecord  # noqa: E402
from templates.library import TemplateLibrary  # noqa: E402

#: Small scenes in COCO's vocabulary: captions and (category, x1, y1, x2, y2) boxes on a 640x480 image.
SCENES: list[tuple[list[str], list[tuple[str, int, int, int, int]]]] = [
    (["A man rides a horse along a sandy beach.", "A rider on a brown horse near the sea."],
     [("person", 250, 80, 360, 300), ("horse", 180, 160, 460, 440)]),
    (["Two cats sleep on a red couch.", "A pair of cats curled up on a sofa."],
     [("cat", 100, 200, 260, 320), ("cat", 300, 210, 450, 330), ("couch", 20, 150, 620, 440)]),
    (["A pizza and two bottles on a wooden table.", "A dinner table with a pizza and drinks."],
     [("pizza", 200, 220, 440, 360), ("bottle", 80, 100, 130, 300), ("bottle", 500, 110, 550, 300),
      ("dining table", 0, 180, 640, 480)]),
    (["A red bus stops next to a bench on a city street.", "People wait as a bus pulls up."],
     [("bus", 240, 60, 630, 400), ("bench", 20, 330, 200, 420), ("person", 60, 200, 120, 400)]),
    (["A woman holds an umbrella while walking her dog.", "A dog on a leash and its owner in the rain."],
     [("person", 280, 60, 400, 460), ("umbrella", 230, 20, 450, 140), ("dog", 120, 330, 260, 450)]),
    (["A laptop and a cup of coffee on a desk.", "A work desk with a laptop, a mouse and a mug."],
     [("laptop", 160, 140, 420, 330), ("cup", 460, 220, 540, 320), ("mouse", 430, 300, 480, 330)]),
]


def make_records(n: int) -> list[AnnotationRecord]:
    out = []
    for i in range(n):
        captions, objects = SCENES[i % len(SCENES)]
        out.append(AnnotationRecord.model_validate({
            "id": str(i), "source": "bench", "source_kind": "synthetic",
            "image": {"path": f"{i}.jpg", "width": 640, "height": 480},
            "captions": [{"text": c} for c in captions],
            "objects": [{"category": c, "box": {"x1": a, "y1": b, "x2": x, "y2": y, "width": 640, "height": 480}}
                        for c, a, b, x, y in objects]}))
    return out


def same_requests(records: list[AnnotationRecord], cfg: GenerateSection, seed: int) -> list[dict[str, Any]]:
    """The request bodies the stage sends for `records` (first requests; the bench turns repairs off)."""
    builder = PromptBuilder(TemplateLibrary(cfg.templates), cfg.max_pairs, cfg.max_objects, cfg.language)
    bodies = []
    for r in records:
        for kind in cfg.prompts:
            p = builder.build(r, kind)
            s = Sampling(cfg.temperature, cfg.top_p, cfg.max_tokens, request_seed(seed, sample_id(r, kind)))
            fmt = response_format(reply_schema(kind, cfg.max_pairs), task_name(kind))
            bodies.append({"model": cfg.model_name, "messages": p.messages, **s.as_dict(), "response_format": fmt})
    return bodies


async def load_generator(base_url: str, bodies: list[dict[str, Any]], concurrency: int,
                         timeout_s: float) -> tuple[float, int]:
    """Send `bodies` with at most `concurrency` in flight; returns (seconds, completion tokens)."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=NO_KEY, max_retries=0, timeout=timeout_s)
    sem = asyncio.Semaphore(concurrency)
    tokens = 0

    async def one(body: dict[str, Any]) -> None:
        nonlocal tokens
        async with sem:
            resp = await client.chat.completions.create(**body)
            tokens += resp.usage.completion_tokens if resp.usage else 0

    t0 = time.perf_counter()
    await asyncio.gather(*(one(b) for b in bodies))
    elapsed = time.perf_counter() - t0
    await client.close()
    return elapsed, tokens


def run_stage(cfg: GenerateSection, base_url: str, records: list[AnnotationRecord],
              seed: int) -> tuple[float, dict[str, Any]]:
    stage = GenerateStage(cfg, seed=seed, base_url=base_url)
    stage.setup()
    t0 = time.perf_counter()
    stage.process_batch(records)
    elapsed = time.perf_counter() - t0
    stats = stage.stats()
    stage.close()
    return elapsed, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=8)
    ap.add_argument("--slots", type=int, default=4, help="parallel slots of the server = concurrency")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompts", default="conversation", help="comma-separated prompt kinds")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    seed = 0
    records = make_records(args.records)
    with tempfile.TemporaryDirectory() as tmp, \
            LocalServer(LocalServerOptions(slots=args.slots, threads=args.threads, prompt_cache=False)) as srv:
        def cfg(cache: str) -> GenerateSection:
            return GenerateSection(prompts=args.prompts.split(","), max_tokens=args.max_tokens,
                                   concurrency=args.slots, max_repairs=0, structured_output="json_schema",
                                   timeout_s=600, cache_dir=cache)

        bodies = same_requests(records, cfg(tmp), seed)
        # Warm up the server (first-call setup, the shared prompt prefix) outside the timings.
        asyncio.run(load_generator(srv.base_url, bodies[: args.slots], args.slots, 600))
        stage_s = stage_tok = load_s = load_tok = 0.0
        stats: dict[str, Any] = {}
        cache = ""
        round_ratios = []
        for r in range(args.rounds):
            order = ("load", "stage") if r % 2 == 0 else ("stage", "load")
            tps = {}
            for side in order:
                if side == "load":
                    s, t = asyncio.run(load_generator(srv.base_url, bodies, args.slots, 600))
                    load_s, load_tok = load_s + s, load_tok + t
                    print(f"# round {r} load generator: {t} completion tokens in {s:.1f}s", flush=True)
                else:
                    cache = f"{tmp}/cache-{r}"
                    s, stats = run_stage(cfg(cache), srv.base_url, records, seed)
                    t = stats["llm"]["completion_tokens"]
                    stage_s, stage_tok = stage_s + s, stage_tok + t
                    print(f"# round {r} generate stage: {t} completion tokens in {s:.1f}s "
                          f"({stats['llm']['requests']} requests)", flush=True)
                tps[side] = t / s
            round_ratios.append(tps["stage"] / tps["load"])
        cached_s, cached = run_stage(cfg(cache), srv.base_url, records, seed)

    stage_tps, load_tps = stage_tok / stage_s, load_tok / load_s
    summary = summarize(stats)
    print(f"# {len(bodies)} requests per side per round, {args.slots} slots = concurrency, "
          f"max_tokens {args.max_tokens}, prompts {args.prompts}, {args.rounds} round(s)")
    print(f"generate_stage_completion_tokens_per_s {stage_tps:.2f}")
    print(f"loadgen_completion_tokens_per_s {load_tps:.2f}")
    print(f"stage_vs_loadgen_ratio {stage_tps / load_tps:.3f}")
    # Each round's two sides ran back to back: the median of the per-round ratios is less exposed to
    # other load on the machine than the totals.
    print(f"stage_vs_loadgen_ratio_median_of_rounds {statistics.median(round_ratios):.3f}")
    print(f"cached_rerun_s {cached_s:.3f}")
    # The stage's own work per request (prompt, cache read, parse, filters), with no LLM in the way.
    print(f"stage_overhead_ms_per_request {1000 * cached_s / max(1, cached['llm']['cache_hits']):.2f}")
    print(f"cached_rerun_calls {cached['llm']['requests']}")
    print(f"cached_rerun_cache_hits {cached['llm']['cache_hits']}")
    print(f"# stage rejects by reason (SmolLM2 is weak; these are quality filters): {stats['rejects']}")
    print(f"stage_accepted {stats['accepted']}")
    print(f"stage_rejected {stats['rejected']}")
    print(f"chair_s {summary['hallucination']['chair_s']}")
    print(f"chair_i {summary['hallucination']['chair_i']}")


if __name__ == "__main__":
    main()
