"""Benchmark: the describe stage's batching, images/s at `--batch` versus batch size 1, same model, same run.

The model is a tiny randomly initialised LLaVA (CLIP tower + Llama) built from configs, saved and loaded
through `from_pretrained` like a real checkpoint (see pipeline/describe/tiny.py); with `--hidden`/`--layers`
larger sizes of the same architecture can be timed (e.g. on a GPU). End-of-sequence is disabled so every
reply is exactly `--max-new-tokens` long and both sides do the same work. Rounds alternate (batched first,
then batch size 1 first) and the best time of each side is kept.

Usage: python bench/describe.py [--images 16] [--batch 8] [--max-new-tokens 16] [--rounds 2]
Prints one `name value` figure per line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.describe.config import DescribeSection  # noqa: E402
from pipeline.describe.stage import DescribeStage  # noqa: E402
from pipeline.describe.tiny import build_tiny_llava  # noqa: E402
from sources.image_glob import ImageGlobOptions, ImageGlobSource  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=28)
    args = ap.parse_args()

    base = [r for r in ImageGlobSource(ImageGlobOptions(kind="images", path="*.jpg"), DEMO).read()]
    records = [base[i % len(base)].model_copy(update={"id": f"{i}:{base[i % len(base)].id}"})
               for i in range(args.images)]
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_llava(tmp, hidden=args.hidden, layers=args.layers, image_size=args.image_size)
        stages = {}
        for bs in (args.batch, 1):
            cfg = DescribeSection(model=str(path), batch_size=bs, max_new_tokens=args.max_new_tokens,
                                  tasks=["caption"])
            st = DescribeStage(cfg=cfg, image_root=str(DEMO))
            st.setup()
            st.backend.model.generation_config.eos_token_id = None  # type: ignore[attr-defined]
            st.process_batch(records[:2])  # warm-up
            stages[bs] = st
        best = {bs: float("inf") for bs in stages}
        for r in range(args.rounds):
            order = [args.batch, 1] if r % 2 == 0 else [1, args.batch]
            for bs in order:
                t0 = time.perf_counter()
                out = stages[bs].process_batch(list(records))
                best[bs] = min(best[bs], time.perf_counter() - t0)
                assert len(out) == len(records)
    print("model tiny-llava-random-weights")
    print(f"device {stages[1].backend.device}")  # type: ignore[attr-defined]
    print(f"images {args.images}")
    print(f"images_per_s_batch{args.batch} {args.images / best[args.batch]:.2f}")
    print(f"images_per_s_batch1 {args.images / best[1]:.2f}")
    print(f"batching_speedup {best[1] / best[args.batch]:.2f}")


if __name__ == "__main__":
    main()
