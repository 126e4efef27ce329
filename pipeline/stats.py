"""Run statistics: counts per source, task, template and reject reason, and length distributions.

Everything here is derived from the run's items, so `stats.json` is deterministic for a recipe and seed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

from pipeline.export import ExportedShard
from pipeline.ray_runner import Ledger
from pipeline.tokens import histogram
from schemas.reject import Reject


#: Stages whose rejects are whole samples (made, then turned away), as opposed to input records.
SAMPLE_STAGES = ("validate", "export", "dedup", "mix")


def distribution(values: Sequence[int]) -> dict[str, float]:
    """count, min, mean, p50, p90, p99, max of `values` (zeros when empty)."""
    if not values:
        return {"count": 0, "min": 0, "mean": 0.0, "p50": 0, "p90": 0, "p99": 0, "max": 0}
    v = sorted(values)
    n = len(v)

    def q(p: float) -> int:
        return v[min(n - 1, int(p * (n - 1) + 0.5))]

    return {"count": n, "min": v[0], "mean": round(sum(v) / n, 2), "p50": q(0.5), "p90": q(0.9),
            "p99": q(0.99), "max": v[-1]}


def _sorted(c: Counter[str]) -> dict[str, int]:
    return {k: c[k] for k in sorted(c)}


def records_accounting(ledger: Ledger, shards: Sequence[ExportedShard], rejects: Sequence[Reject]
                       ) -> dict[str, Any]:
    """Every record that reached the adapt stage gave at least one sample or was rejected whole."""
    # A text-only source's row comes out of the parse stage as a Sample: it counts as a record read.
    n_records = sum(n for (stage, kind, _), n in ledger.items()
                    if stage == "parse" and kind in ("AnnotationRecord", "Sample"))
    used = {k for sh in shards for k in sh.record_keys}
    used.update(r.sample_id.rsplit("/", 2)[0] for r in rejects if r.stage in SAMPLE_STAGES and r.sample_id)
    whole = sum(1 for r in rejects if r.reason == "no_task")
    return {"read": n_records, "gave_samples": len(used), "rejected_whole": whole,
            "adds_up": n_records == len(used) + whole}


def compute_stats(ledger: Ledger, shards: Sequence[ExportedShard], rejects: Iterable[Reject],
                  tokenizer: str | None = None) -> dict[str, Any]:
    """Aggregate the run's figures from the runner's ledger, the exported shards and the rejects."""
    rejects = list(rejects)
    by_reason: Counter[str] = Counter(r.reason for r in rejects)
    by_stage: Counter[str] = Counter(r.stage for r in rejects)
    sample_rejects = [r for r in rejects if r.stage in SAMPLE_STAGES]

    def blank() -> dict[str, Any]:
        return {"records": 0, "samples_accepted": 0, "samples_rejected": 0, "rejects": Counter()}

    per_source: dict[str, dict[str, Any]] = {}
    for (stage, kind, source), n in ledger.items():
        if stage == "parse" and kind in ("AnnotationRecord", "Sample"):
            per_source.setdefault(source, blank())["records"] += n
    for src, n in Counter(s for sh in shards for s in sh.source).items():
        per_source.setdefault(src, blank())["samples_accepted"] += n
    for r in rejects:
        ps = per_source.setdefault(r.source, blank())
        ps["rejects"][r.reason] += 1
        if r.stage in SAMPLE_STAGES:
            ps["samples_rejected"] += 1
    for ps in per_source.values():
        ps["rejects"] = _sorted(ps["rejects"])

    def per(column: str, attr: str) -> dict[str, dict[str, int]]:
        accepted: Counter[str] = Counter()
        for sh in shards:
            accepted.update(getattr(sh, column))
        rejected = Counter(getattr(r, attr) for r in sample_rejects)
        keys = {k or "-" for k in (*accepted, *rejected)}
        acc = Counter({(k or "-"): n for k, n in accepted.items()})
        rej = Counter({(k or "-"): n for k, n in rejected.items()})
        return {k: {"accepted": acc[k], "rejected": rej[k]} for k in sorted(keys)}

    accepted = sum(len(sh) for sh in shards)
    text_only = sum(sum(sh.text_only) for sh in shards)

    def col(name: str) -> list[int]:
        return [v for sh in shards for v in getattr(sh, name)]

    stats = {
        "samples": {
            "generated": accepted + len(sample_rejects),
            "accepted": accepted,
            "rejected": len(sample_rejects),
            "text_only": text_only,
            "multimodal": accepted - text_only,
        },
        "records": records_accounting(ledger, shards, rejects),
        "rejects": {"total": len(rejects), "by_stage": _sorted(by_stage), "by_reason": _sorted(by_reason)},
        "per_source": {k: per_source[k] for k in sorted(per_source)},
        "per_task": per("task", "task"),
        "per_template": per("template_id", "template_id"),
        "lengths": {
            "turns": distribution(col("n_turns")),
            "chars": distribution(col("n_chars")),
            "images": distribution(col("n_images")),
            "tokens": distribution(col("n_tokens")),
            "tokens_histogram": histogram(col("n_tokens")),
            "tokenizer": tokenizer or "whitespace estimate",
        },
    }
    return stats
