"""Benchmark: `vlforge build` against a minimal single-process converter doing the same work.

Generates (once, cached in bench/_data/) a synthetic COCO-captions + VQAv2 set: 100k images, one caption
and four questions each = 500k samples, every image a hard link to one of four real photos. Then, in the
same run, times `bench/reference.py` and `vlforge build` (both as fresh processes, wall clock, Ray start
included), checks that their LLaVA JSON outputs are byte-identical, and prints samples/s and the ratio,
with the CPU time the machine was busy during each (all processes: Ray's included).
It also times the same build cut to one image per source: what vlforge pays whatever the size (Ray's
start and stop, reading the whole annotation files, writing), to tell fixed costs from per-sample ones.

    .venv/bin/python bench/adapt.py [--images 100000] [--questions-per-image 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.synth import make_dataset  # noqa: E402


def busy_core_seconds() -> float | None:
    """CPU time the whole machine has spent busy so far (Linux /proc/stat), or None elsewhere.

    Ray runs its work in processes the build does not wait for, so the machine-wide count is the one
    that sees all of it (and anything else running at the time)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def timed(cmd: list[str]) -> tuple[float, float | None]:
    """Wall seconds of `cmd`, and the machine's busy core-seconds meanwhile."""
    b0, t0 = busy_core_seconds(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    wall, b1 = time.perf_counter() - t0, busy_core_seconds()
    return wall, (b1 - b0 if b0 is not None and b1 is not None else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--questions-per-image", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()

    data = HERE / "_data" / f"synth-{a.images}-{a.questions_per_image}"
    files = make_dataset(data, images=a.images, questions_per_image=a.questions_per_image)
    def write_recipe(path: Path, out: Path, limit: int | None = None) -> Path:
        lim = {"limit": limit} if limit else {}
        path.write_text(json.dumps({
            "name": "bench", "seed": 0, "images": str(files["images"]),
            "sources": [
                {"kind": "coco_captions", "path": str(files["captions"]), "image_prefix": "train2014", **lim},
                {"kind": "vqav2", "questions": str(files["questions"]), "annotations": str(files["annotations"]),
                 "image_prefix": "train2014", **lim},
            ],
            "adapt": {"tasks": ["caption_short", "vqa_short"]},
            "outputs": {"dir": str(out), "formats": [{"kind": "llava"}]},
        }, indent=2))
        return path

    recipe = write_recipe(data / "recipe.yaml", data / "vlforge_out")
    # the same build cut to one image per source: Ray's start and stop, reading the whole files, writing
    fixed = write_recipe(data / "recipe_fixed.yaml", data / "vlforge_fixed_out", limit=1)
    for f in ("captions", "questions", "annotations"):  # same warm page cache for both
        Path(files[f]).read_bytes()

    n = a.images * (1 + a.questions_per_image)
    ref_out = data / "reference_out.json"
    vlforge = str(Path(sys.executable).parent / "vlforge")
    ref_s, ref_cpu = timed([sys.executable, str(HERE / "reference.py"), "--captions", str(files["captions"]),
                            "--questions", str(files["questions"]), "--annotations", str(files["annotations"]),
                            "--images", str(files["images"]), "--prefix", "train2014", "--out", str(ref_out)])
    vlf_s, vlf_cpu = timed([vlforge, "build", str(recipe), "--workers", str(a.workers)])
    fixed_s, _ = timed([vlforge, "build", str(fixed), "--workers", str(a.workers)])
    run = json.loads((data / "vlforge_out" / "run.json").read_text())
    same = filecmp.cmp(ref_out, data / "vlforge_out" / "llava" / "bench.json", shallow=False)

    print(f"samples: {n}")
    print(f"reference_seconds: {ref_s:.1f}")
    print(f"reference_samples_per_s: {n / ref_s:.0f}")
    print(f"vlforge_seconds: {vlf_s:.1f}")
    print(f"vlforge_samples_per_s: {n / vlf_s:.0f}")
    print(f"ratio_vlforge_over_reference: {ref_s / vlf_s:.2f}")
    if ref_cpu is not None and vlf_cpu is not None:
        cores = os.cpu_count() or 1
        print(f"busy_core_seconds: reference {ref_cpu:.1f} ({ref_cpu / (cores * ref_s):.0%} of {cores} cores), "
              f"vlforge {vlf_cpu:.1f} ({vlf_cpu / (cores * vlf_s):.0%})")
    print(f"vlforge_phases_s: {json.dumps(run['seconds'])}")
    print(f"vlforge_fixed_seconds: {fixed_s:.1f}  (the same build with one image per source)")
    print(f"vlforge_worker_cpu_s: {json.dumps(run.get('worker_cpu_seconds', {}))}")
    print(f"outputs_identical: {same}")
    print(f"workers: {a.workers}, cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
