"""Training under Ray Train's `TorchTrainer` (workers > 1, or GPUs). The only tune module that imports ray.

Each worker rebuilds the same model and data from the section (same seed, so the same initial
weights; rank 0's are broadcast anyway), takes its own slice of every global batch and runs the
in-process loop of train.py, which averages gradients across workers with an all-reduce. Rank 0
writes checkpoints and the trained weights to `out_dir`, so on a cluster `out_dir`, the data and the
image root must be on storage every node sees.

The driver starts a local Ray when none is running and `RAY_ADDRESS` is not set, and stops it after.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = str(Path(__file__).resolve().parents[2])
#: Environment passed on to the workers (offline mode, caches).
_PASS_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "VLFORGE_CACHE", "HF_DATASETS_OFFLINE")
STATS_FILE = "train_stats.json"


def _worker(config: dict[str, Any]) -> None:
    """train_loop_per_worker: prepare, train, (rank 0) save."""
    import ray.train
    import ray.train.torch
    import torch

    from pipeline.tune.checkpoint import save_tuned
    from pipeline.tune.config import TuneSection
    from pipeline.tune.run import prepare
    from pipeline.tune.train import train_stages

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    section = TuneSection.model_validate(config["section"])
    if section.threads:
        torch.set_num_threads(section.threads)
    prep = prepare(section, config["data_path"], config["image_root"])
    device = ray.train.torch.get_device() if section.gpus_per_worker > 0 else torch.device("cpu")
    result = train_stages(prep.built.model, section, prep.train, prep.collate, config["out_dir"], device,
                          rank=rank, world=world)
    if rank == 0:
        out = Path(config["out_dir"])
        save_tuned(prep.built.model, out / "model", prep.built.info, section.stages, result.trained)
        (out / STATS_FILE).write_text(json.dumps(result.stats, indent=2) + "\n", encoding="utf-8")
    ray.train.report({"rank": rank, "stages": len(result.stats)})


def fit(section: Any, data_path: str, image_root: str, out_dir: str) -> list[dict[str, Any]]:
    """Run the stages on `section.workers` Ray Train workers; return the per-stage stats of rank 0."""
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as e:  # pragma: no cover - ray is a core dependency
        raise RuntimeError(f"tune.workers > 1 needs Ray Train: pip install 'ray[train]' ({e})") from None

    started = False
    if not ray.is_initialized():
        pythonpath = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
        address = os.environ.get("RAY_ADDRESS")
        if address:  # a cluster: its workers get the environment through the job's runtime_env
            env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
            ray.init(address=address, runtime_env={"env_vars": {**env, "PYTHONPATH": pythonpath}})
        else:  # a local Ray inherits this process's environment (faster: no runtime_env to set up)
            saved = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = pythonpath
            try:
                ray.init(num_cpus=max(os.cpu_count() or 1, section.workers), include_dashboard=False)
            finally:
                if saved is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = saved
        started = True
    try:
        use_gpu = section.gpus_per_worker > 0
        resources = {"CPU": 1, **({"GPU": section.gpus_per_worker} if use_gpu else {})}
        trainer = TorchTrainer(
            train_loop_per_worker=_worker,
            train_loop_config={"section": section.model_dump(), "data_path": os.path.abspath(data_path),
                               "image_root": os.path.abspath(image_root), "out_dir": os.path.abspath(out_dir)},
            scaling_config=ScalingConfig(num_workers=section.workers, use_gpu=use_gpu,
                                         resources_per_worker=resources),
            run_config=RunConfig(name="vlforge-tune", storage_path=os.path.abspath(os.path.join(out_dir, "ray"))),
        )
        result = trainer.fit()
        if getattr(result, "error", None):
            raise RuntimeError(f"Ray Train failed: {result.error}")
    finally:
        if started:
            ray.shutdown()
    return json.loads((Path(out_dir) / STATS_FILE).read_text(encoding="utf-8"))
