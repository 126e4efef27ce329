"""`run_tune`: the whole tuning stage, as the CLI (`vlforge tune`, `vlforge run`) calls it.

    read the built set -> split held-out sets -> assemble the model -> evaluate (before)
    -> train every stage (in process, or under Ray Train when workers > 1 or GPUs are asked for)
    -> save what was trained -> evaluate (after) -> report.json + report.md (E, F, O)

Everything under `out_dir`: `model/` (the trained weights and a manifest), `checkpoints/`,
`rejects.jsonl` (samples the tuner could not use, with reason codes), `report.json`, `report.md`.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipeline.tune.checkpoint import load_tuned_into, save_tuned
from pipeline.tune.collate import ChatEncoder, Collator, Encoded, TooLong
from pipeline.tune.config import TuneSection
from pipeline.tune.data import TuneExample, load_examples, load_llava_json, split_heldout
from pipeline.tune.embedded import RANDOM_TOWER_NOTE, resolve
from pipeline.tune.evaluate import evaluate, scores, write_report
from pipeline.tune.model import Built, build_model
from pipeline.tune.train import IMAGE_ONLY_METHODS, train_stages
from schemas.reject import Reject

log = logging.getLogger("vlforge.tune")


@dataclass
class Prepared:
    """Everything the driver and each training worker derive, identically, from the section and data."""

    built: Built
    encoder: ChatEncoder
    collate: Collator
    train: list[Encoded]
    heldout_downstream: list[TuneExample]
    heldout_text: list[TuneExample]
    rejects: list[Reject]
    counts: dict[str, Any] = field(default_factory=dict)


def build(section: TuneSection) -> Built:
    """Assemble the model the section names (resolving `embedded`), with the recipe seed's projector init."""
    torch.manual_seed(section.seed)
    spec = section.model
    if spec.vlm is not None:
        from pipeline.tune.vlm import build_vlm

        return build_vlm(spec.vlm)
    llm, vision = resolve(spec.llm, spec.vision)
    return build_model(llm, vision, spec.vision_feature_layer)


def prepare(section: TuneSection, data_path: str, image_root: str) -> Prepared:
    """Load and split the data, build the model and encode the training samples."""
    examples, rejects = load_examples(data_path, image_root)
    mm = [e for e in examples if not e.text_only]
    text = [e for e in examples if e.text_only]
    mm_train, mm_held = split_heldout(mm, section.eval.heldout, section.seed)
    text_train, text_held = split_heldout(text, section.eval.heldout, section.seed)
    if section.eval.text_only:
        extra, extra_rejects = load_llava_json(section.eval.text_only, image_root)
        text_held = [e for e in extra if e.text_only]
        text_train = text
        rejects += extra_rejects
    built = build(section)
    encoder = ChatEncoder(built.tokenizer, built.model.num_image_tokens, section.model.max_length,
                          built.image_token_id)
    collate = Collator(encoder.pad_id, built.image_spec, built.image_fn)
    # Stages that train on images only (train.items_for) skip the text-only samples; counted for the report.
    image_only = all(s.method in IMAGE_ONLY_METHODS for s in section.stages)
    skipped = len(text_train) if image_only else 0
    items: list[Encoded] = []
    for ex in mm_train + ([] if image_only else text_train):
        try:
            items.append(encoder.encode(ex))
        except TooLong as e:
            rejects.append(Reject(reason="too_long_for_model", message=str(e), stage="tune", source="tune_data",
                                  file=data_path, record=ex.id, sample_id=ex.id))
    counts = {"examples": len(examples), "multimodal": len(mm), "text_only": len(text),
              "train": len(items), "train_skipped_text_only": skipped,
              "heldout_downstream": len(mm_held), "heldout_text_only": len(text_held)}
    return Prepared(built, encoder, collate, items, mm_held, text_held, rejects, counts)


class _Clock:
    """Wall seconds per phase, for the report."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 3)
        self._t = now


def _device(section: TuneSection) -> torch.device:
    return torch.device("cuda" if section.gpus_per_worker > 0 and torch.cuda.is_available() else "cpu")


def _write_rejects(rejects: list[Reject], out: Path) -> None:
    with open(out / "rejects.jsonl", "w", encoding="utf-8") as f:
        for r in rejects:
            f.write(r.model_dump_json(exclude_none=True) + "\n")


def run_tune(section: TuneSection, data_path: str, image_root: str, out_dir: str) -> dict[str, Any]:
    """Tune on the build's output and evaluate; write and return the report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if section.threads:
        torch.set_num_threads(section.threads)
    clock = _Clock()
    prep = prepare(section, data_path, image_root)
    clock.lap("prepare")
    log.info("tune: %d training samples, %d + %d held out, %d rejected", len(prep.train),
             len(prep.heldout_downstream), len(prep.heldout_text), len(prep.rejects))
    _write_rejects(prep.rejects, out)
    model = prep.built.model
    device = _device(section)
    model.to(device)
    before = None
    if section.eval.before:
        before = evaluate(model, prep.encoder, prep.collate, prep.heldout_downstream, prep.heldout_text,
                          section.eval, device)
        clock.lap("evaluate_before")
    saved = out / "model"
    if section.distributed:
        from pipeline.tune.ray_train import fit

        stats = fit(section, data_path, image_root, str(out))
        model = load_tuned_into(build(section).model, saved).to(device)
    else:
        result = train_stages(model, section, prep.train, prep.collate, str(out), device)
        stats = result.stats
        save_tuned(model, saved, prep.built.info, section.stages, result.trained)
    clock.lap("train")
    after = evaluate(model, prep.encoder, prep.collate, prep.heldout_downstream, prep.heldout_text,
                     section.eval, device)
    clock.lap("evaluate_after")
    info = prep.built.info
    report = {
        "model": {**info, "vision_note": RANDOM_TOWER_NOTE if info.get("vision_random") else None,
                  "chat_template": prep.encoder.template_note},
        "data": {"path": data_path, **prep.counts, "rejected": len(prep.rejects),
                 "rejects_by_reason": dict(collections.Counter(r.reason for r in prep.rejects))},
        "training": {"workers": section.workers, "batch_size": section.batch_size, "grad_accum": section.grad_accum,
                     "precision": section.precision, "device": str(device), "seed": section.seed,
                     "threads": torch.get_num_threads()},
        "stages": stats,
        "before": before,
        "after": after,
        "scores": scores(before, after) if before is not None else None,
        "saved": str(saved),
        "seconds": clock.laps,
    }
    write_report(report, str(out))
    return report
