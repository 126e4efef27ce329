"""The training loop: one readable loop for every method, in process or inside a Ray Train worker.

Why a plain loop rather than HF Trainer: the model here is our own module (vision tower + projector +
LLM, optionally an inner adaptor that wraps a frozen LLM it does not own), the set of trainable tensors
changes from stage to stage, and a checkpoint must hold exactly those tensors. A loop that fits on one
screen says all of that directly; it also runs unchanged inside Ray Train (gradients are averaged across
workers with one all-reduce per optimizer step), and a step costs what a Trainer step costs
(bench/tune.py measures the two in one run).

Per optimizer step and worker: `grad_accum` micro-batches of `batch_size` samples, each loss divided by
`grad_accum` (so the gradient is the mean of the micro-batch means), then clipping, AdamW, the
learning-rate schedule (linear warmup, then cosine / linear decay or constant). bf16 runs use autocast
over float32 weights. Which samples a micro-batch holds is a pure function of (seed, stage, step,
worker), so a resumed run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from pipeline.tune.checkpoint import latest_checkpoint, restore_checkpoint, save_checkpoint
from pipeline.tune.collate import Encoded
from pipeline.tune.config import Stage, TuneSection
from pipeline.tune.methods import apply_method
from pipeline.tune.model import causal_lm_loss

log = logging.getLogger("vlforge.tune")


def lr_factor(stage: Stage) -> Callable[[int], float]:
    """Multiplier of the base rate at optimizer step `s` (0-based)."""
    warm = math.ceil(stage.warmup * stage.steps)

    def f(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        if stage.schedule == "constant":
            return 1.0
        progress = (s - warm) / max(1, stage.steps - warm)
        if stage.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


class BatchOrder:
    """Which examples each micro-batch holds: epochs are seeded permutations, walked in order."""

    def __init__(self, n: int, seed: int, stage_index: int) -> None:
        self.n = n
        self.seed = seed
        self.stage_index = stage_index
        self._perms: dict[int, list[int]] = {}

    def _perm(self, epoch: int) -> list[int]:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.stage_index * 10_007 + epoch)
            self._perms[epoch] = torch.randperm(self.n, generator=g).tolist()
        return self._perms[epoch]

    def micro_batch(self, global_index: int, batch_size: int, rank: int, world: int) -> list[int]:
        start = (global_index * world + rank) * batch_size
        return [self._perm(p // self.n)[p % self.n] for p in range(start, start + batch_size)]


#: Methods whose trainable parameters only see samples with images.
IMAGE_ONLY_METHODS = ("projector", "iaa")


def items_for(stage: Stage, items: list[Encoded]) -> list[Encoded]:
    """The samples a stage trains on: the projector and IAA learn nothing from text-only samples (IAA's
    text-only workflow is the frozen LLM), so they get the samples with images only."""
    if stage.method in IMAGE_ONLY_METHODS:
        with_images = [it for it in items if any(it.image_mask)]
        if not with_images:
            raise ValueError(f"stage {stage.method} trains on samples with images, and there are none. Add "
                             f"image samples or choose lora, last_layers or full")
        return with_images
    return items


@dataclass
class TrainResult:
    stats: list[dict[str, Any]] = field(default_factory=list)
    trained: set[str] = field(default_factory=set)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _broadcast(params: list[nn.Parameter]) -> None:
    """Give every worker rank 0's starting weights (they match already when seeds match; this makes sure)."""
    import torch.distributed as dist

    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, src=0)


def _all_reduce_grads(params: list[nn.Parameter], world: int) -> None:
    """Average gradients across workers (a parameter with no gradient on one worker counts as zero)."""
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad.div_(world)


def train_stages(model: nn.Module, section: TuneSection, items: list[Encoded], collate: Callable,
                 out_dir: str, device: torch.device, rank: int = 0, world: int = 1,
                 on_step: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Run every stage of `section` on `items`, with checkpoints and resume. Returns per-stage stats."""
    if not items:
        raise ValueError("no training samples: every sample was held out or rejected. Lower eval.heldout or "
                         "add data")
    result = TrainResult()
    start_stage, start_step, state = 0, 0, None
    ckpt = latest_checkpoint(out_dir, section) if section.resume else None
    if ckpt is not None:
        meta, state = restore_checkpoint(ckpt, model, section)
        start_stage, start_step = meta["stage"], meta["step"]
        result.trained = set(meta["trained"])
        result.stats = meta["stats"]
        log.info("resuming from %s (stage %d, step %d)", ckpt, start_stage, start_step)
    model.to(device)
    bf16 = section.precision == "bf16"
    for si, stage in enumerate(section.stages):
        if si < start_stage:
            continue
        names = apply_method(model, stage)
        result.trained |= set(names)
        params = [p for p in model.parameters() if p.requires_grad]
        if world > 1:
            _broadcast(params)
        opt = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(stage))
        first, prior = 0, None
        if si == start_stage and state is not None:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            first = start_step
            if first >= stage.steps:  # the checkpoint closed this stage: its stats are final
                continue
            prior = next((s for s in result.stats if s["stage"] == si), None)
            result.stats = [s for s in result.stats if s["stage"] != si]
        stage_items = items_for(stage, items)
        order = BatchOrder(len(stage_items), section.seed, si)
        model.train()
        losses: list[float] = []
        step_times: list[float] = []
        tokens = 0
        t_prev = time.perf_counter()
        for step in range(first, stage.steps):
            step_loss = 0.0
            for a in range(section.grad_accum):
                idx = order.micro_batch(step * section.grad_accum + a, section.batch_size, rank, world)
                batch = _to(collate([stage_items[i] for i in idx]), device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                    logits = model(**batch)
                loss = causal_lm_loss(logits, batch["labels"]) / section.grad_accum
                if loss.requires_grad:  # False only when nothing trainable was used (cannot happen by items_for)
                    loss.backward()
                step_loss += float(loss.detach())
                tokens += int(batch["attention_mask"].sum())
            if world > 1:
                _all_reduce_grads(params, world)
            if stage.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, stage.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            now = time.perf_counter()
            step_times.append(now - t_prev)
            t_prev = now
            losses.append(step_loss)
            done = step + 1
            if rank == 0 and (done % 10 == 0 or done == stage.steps):
                log.info("stage %d (%s) step %d/%d loss %.4f", si, stage.method, done, stage.steps, step_loss)
            if on_step is not None:
                on_step({"stage": si, "step": done, "loss": step_loss, "lr": sched.get_last_lr()[0]})
            if rank == 0 and ((section.checkpoint_every and done % section.checkpoint_every == 0)
                              or done == stage.steps):
                stats = result.stats + [_merge(prior, _stage_stats(si, stage, names, params, losses, step_times,
                                                                   tokens, world, first, len(stage_items)))]
                save_checkpoint(out_dir, model, opt, sched, si, done, result.trained, section, stats)
                t_prev = time.perf_counter()  # step times leave checkpoint writing out
        result.stats.append(_merge(prior, _stage_stats(si, stage, names, params, losses, step_times, tokens, world,
                                                       first, len(stage_items))))
    model.eval()
    return result


def _merge(prior: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, Any]:
    """Stats of a resumed stage: the part before the checkpoint plus the part after it."""
    if prior is None:
        return now
    out = dict(now, loss_first=prior["loss_first"], tokens=prior["tokens"] + now["tokens"],
               seconds=prior["seconds"] + now["seconds"])
    out["tokens_per_s"] = out["tokens"] / out["seconds"] if out["seconds"] > 0 else None
    return out


def _stage_stats(si: int, stage: Stage, names: list[str], params: list[nn.Parameter], losses: list[float],
                 step_times: list[float], tokens: int, world: int, first: int, samples: int) -> dict[str, Any]:
    seconds = sum(step_times)
    return {
        "stage": si, "method": stage.method, "lr": stage.lr, "steps": stage.steps, "samples": samples,
        "resumed_at_step": first,
        "trainable_params": sum(p.numel() for p in params), "trainable_tensors": len(names),
        "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
        "tokens": tokens * world, "seconds": seconds,  # tokens: rank 0's count times the workers
        "tokens_per_s": tokens * world / seconds if seconds > 0 else None,
        "step_time_median_s": statistics.median(step_times) if step_times else None,
    }
