"""Evaluation before and after tuning: downstream gain and text-only forgetting, as E, F and O.

Downstream: the held-out split of the built (multimodal) samples, through the multimodal workflow:
mean token loss on the answers, and exact match of short answers (at most `short_answer_words` words)
by greedy generation. Forgetting: a held-out text-only set through the text-only workflow (for IAA the
untouched LLM): perplexity and exact match of short answers.

Scores (IAA.md, after arXiv 2503.04543):
    E = downstream exact match after - before          (specialisation, percentage points)
    F = text-only exact match after - before           (negative = forgetting)
    O = E + F
and the same on likelihood, which moves even when a short run changes no greedy answer:
    E_nll = downstream loss before - after             (nats per token; positive = better)
    F_nll = text-only NLL before - after               (negative = forgetting; IAA gives exactly 0)
    O_nll = E_nll + F_nll
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from pipeline.tune.collate import IGNORE, ChatEncoder, Encoded, TooLong
from pipeline.tune.config import EvalSection
from pipeline.tune.data import TuneExample
from pipeline.tune.model import causal_lm_loss


def normalize_answer(text: str) -> str:
    """Lower case, single spaces, no surrounding quotes or trailing full stop (VQA-style matching)."""
    t = " ".join(text.strip().lower().split())
    t = t.strip("\"'`")
    return re.sub(r"[.!]+$", "", t).strip()


def _logits(model: nn.Module, batch: dict[str, torch.Tensor], text: bool) -> torch.Tensor:
    if text:
        return model.text_forward(batch["input_ids"], batch["attention_mask"])
    return model(**batch)


@torch.no_grad()
def mean_nll(model: nn.Module, items: list[Encoded], collate: Callable, device: torch.device, text: bool,
             batch_size: int = 4) -> tuple[float | None, int]:
    """Token-weighted mean negative log-likelihood of the labelled (answer) tokens."""
    total, count = 0.0, 0
    for i in range(0, len(items), batch_size):
        batch = {k: v.to(device) for k, v in collate(items[i: i + batch_size]).items()}
        total += float(causal_lm_loss(_logits(model, batch, text), batch["labels"], reduction="sum"))
        count += int((batch["labels"][:, 1:] != IGNORE).sum())
    return (total / count if count else None), count


@torch.no_grad()
def greedy(model: nn.Module, prompt: Encoded, collate: Callable, device: torch.device, text: bool,
           max_new_tokens: int, eos_ids: set[int]) -> list[int]:
    """Greedy decoding without a cache: answers are short, and every workflow (IAA included) runs as is."""
    batch = {k: v.to(device) for k, v in collate([prompt]).items()}
    ids, mask = batch["input_ids"], batch["image_mask"]
    feats = None
    if not text and "pixel_values" in batch and hasattr(model, "encode_images"):
        feats = model.encode_images(batch["pixel_values"])
    out: list[int] = []
    for _ in range(max_new_tokens):
        if text:
            logits = model.text_forward(ids, torch.ones_like(ids))
        elif feats is not None:
            logits = model(ids, torch.ones_like(ids), image_mask=mask, image_features=feats)
        else:
            logits = model(ids, torch.ones_like(ids), image_mask=mask,
                           pixel_values=batch.get("pixel_values"))
        nxt = int(logits[0, -1].argmax())
        if nxt in eos_ids:
            break
        out.append(nxt)
        ids = torch.cat([ids, ids.new_tensor([[nxt]])], dim=1)
        mask = torch.cat([mask, mask.new_zeros((1, 1))], dim=1)
    return out


def evaluate_set(model: nn.Module, examples: list[TuneExample], encoder: ChatEncoder, collate: Callable,
                 cfg: EvalSection, device: torch.device, text: bool) -> dict[str, Any]:
    """Loss and short-answer exact match of one set, through one workflow."""
    examples = examples[: cfg.max_samples]
    items: list[Encoded] = []
    too_long = 0
    for ex in examples:
        try:
            items.append(encoder.encode(ex))
        except TooLong:
            too_long += 1
    model.eval()
    nll, n_tokens = mean_nll(model, items, collate, device, text)
    hits, scored, shown = 0, 0, []
    for ex in examples:
        prompt, reference = encoder.encode_prompt(ex)
        if len(reference.split()) > cfg.short_answer_words or prompt.length >= encoder.max_length:
            continue
        pred_ids = greedy(model, prompt, collate, device, text, cfg.max_new_tokens, encoder.eos_ids)
        pred = encoder.tokenizer.decode(pred_ids, skip_special_tokens=True)
        ok = normalize_answer(pred) == normalize_answer(reference)
        hits += ok
        scored += 1
        if len(shown) < 5:
            shown.append({"id": ex.id, "reference": reference, "prediction": pred, "match": ok})
    out: dict[str, Any] = {"samples": len(items), "too_long": too_long, "tokens": n_tokens, "nll": nll,
                           "exact_match": 100.0 * hits / scored if scored else None, "em_scored": scored,
                           "examples": shown}
    if text:
        out["perplexity"] = math.exp(nll) if nll is not None else None
    return out


def evaluate(model: nn.Module, encoder: ChatEncoder, collate: Callable, downstream: list[TuneExample],
             text_only: list[TuneExample], cfg: EvalSection, device: torch.device) -> dict[str, Any]:
    return {"downstream": evaluate_set(model, downstream, encoder, collate, cfg, device, text=False),
            "text_only": evaluate_set(model, text_only, encoder, collate, cfg, device, text=True)}


def _diff(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def scores(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """E, F, O on exact match and on likelihood (see the module docstring)."""
    e = _diff(after["downstream"]["exact_match"], before["downstream"]["exact_match"])
    f = _diff(after["text_only"]["exact_match"], before["text_only"]["exact_match"])
    e_nll = _diff(before["downstream"]["nll"], after["downstream"]["nll"])
    f_nll = _diff(before["text_only"]["nll"], after["text_only"]["nll"])
    return {"E": e, "F": f, "O": _add(e, f), "E_nll": e_nll, "F_nll": f_nll, "O_nll": _add(e_nll, f_nll)}


# ---- the report -------------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def report_markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    m = report["model"]
    lines = ["# vlforge tune report", ""]
    lines.append(f"- LLM: `{m['llm']}`")
    lines.append(f"- Vision tower: `{m['vision']}`")
    if m.get("vision_random"):
        lines.append(f"- **Note: {m['vision_note']}.**")
    lines.append(f"- Chat template: {m.get('chat_template')}")
    d = report["data"]
    lines += ["", "## Data", "",
              f"- {d['examples']} samples read from `{d['path']}` ({d['multimodal']} with images, "
              f"{d['text_only']} text-only), {d['rejected']} rejected"
              + (f" ({', '.join(f'{k}: {v}' for k, v in d['rejects_by_reason'].items())})" if d['rejected'] else ""),
              f"- trained on {d['train']} samples; held out {d['heldout_downstream']} multimodal and "
              f"{d['heldout_text_only']} text-only"]
    if d.get("train_skipped_text_only"):
        lines.append(f"- {d['train_skipped_text_only']} text-only training samples were not trained on: every stage "
                     f"trains the projector or IAA, which learn from image samples only (IAA's text-only workflow "
                     f"is the frozen LLM)")
    lines += ["", "## Stages", "", "| # | method | lr | steps | samples | trainable params | loss first | loss last | "
              "tokens/s |", "|---|---|---|---|---|---|---|---|---|"]
    for s in report["stages"]:
        lines.append(f"| {s['stage']} | {s['method']} | {s['lr']:g} | {s['steps']} | {s['samples']} | "
                     f"{s['trainable_params']:,} | "
                     f"{_fmt(s['loss_first'])} | {_fmt(s['loss_last'])} | {_fmt(s['tokens_per_s'], 1)} |")
    lines += ["", "## Evaluation", "", "| set | metric | before | after |", "|---|---|---|---|"]
    b, a = report.get("before"), report["after"]
    for key, label in (("downstream", "downstream (held-out, multimodal)"), ("text_only", "text-only (forgetting)")):
        for metric in ("nll", "perplexity", "exact_match"):
            if metric in a[key]:
                lines.append(f"| {label} | {metric} | {_fmt(b[key][metric]) if b else 'n/a'} | "
                             f"{_fmt(a[key][metric])} |")
    sc = report.get("scores") or {}
    lines += ["", "## E, F, O", "",
              f"- exact match (points): E = {_fmt(sc.get('E'), 2)}, F = {_fmt(sc.get('F'), 2)}, "
              f"O = {_fmt(sc.get('O'), 2)}",
              f"- likelihood (nats/token): E_nll = {_fmt(sc.get('E_nll'), 5)}, F_nll = {_fmt(sc.get('F_nll'), 5)}, "
              f"O_nll = {_fmt(sc.get('O_nll'), 5)}",
              "", "E = downstream score after - before; F = text-only score after - before (negative means "
              "forgetting); O = E + F.", ""]
    lines += [f"Weights: `{report['saved']}` (only what was trained)."]
    if report.get("seconds"):
        lines.append("Time (s): " + ", ".join(f"{k.replace('_', ' ')} {v:.1f}" for k, v in report["seconds"].items()))
    lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: str) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    j, md = out / "report.json", out / "report.md"
    j.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md.write_text(report_markdown(report), encoding="utf-8")
    return j, md
