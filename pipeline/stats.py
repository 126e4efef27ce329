"""Run statistics: counts per source, task, template and reject reason, and length distributions.

Everything here is derived from the run's items, so `stats.json` is deterministic for a recipe and seed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

from pipeline.export import Exported
from schemas.reject import Reject


def distribution(values: Sequence[int]) -> dict[str, float]:
    """min, mean, p50, p90, p99, max of `values` (empty -> zeros)."""
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


def compute_stats(records_per_source: dict[str, int], exported: Sequence[Exported],
                  rejects: Iterable[Reject]) -> dict[str, Any]:
    """Aggregate the run's figures. `records_per_source` counts what each source yielded as input items."""
    rejects = list(rejects)
    by_reason: Counter[str] = Counter(r.reason for r in rejects)
    by_stage: Counter[str] = Counter(r.stage for r in rejects)
    validate_rejects = [r for r in rejects if r.stage == "validate"]
    per_source: dict[str, dict[str, Any]] = {}
    for name, n in records_per_source.items():
        per_source[name] = {"items_read": n, "samples_accepted": 0, "samples_rejected": 0,
                            "rejects": Counter()}
    for e in exported:
        per_source.setdefault(e.source, {"items_read": 0, "samples_accepted": 0, "samples_rejected": 0,
                                         "rejects": Counter()})["samples_accepted"] += 1
    for r in rejects:
        ps = per_source.setdefault(r.source, {"items_read": 0, "samples_accepted": 0, "samples_rejected": 0,
                                              "rejects": Counter()})
        ps["rejects"][r.reason] += 1
        if r.stage == "validate":
            ps["samples_rejected"] += 1
    for ps in per_source.values():
        ps["rejects"] = _sorted(ps["rejects"])

    def per(key: str) -> dict[str, dict[str, int]]:
        acc: dict[str, Counter[str]] = {}
        for e in exported:
            acc.setdefault(getattr(e, key) or "-", Counter())["accepted"] += 1
        for r in validate_rejects:
            acc.setdefault(getattr(r, key) or "-", Counter())["rejected"] += 1
        return {k: {"accepted": acc[k]["accepted"], "rejected": acc[k]["rejected"]} for k in sorted(acc)}

    accepted = len(exported)
    generated = accepted + len(validate_rejects)
    text_only = sum(1 for e in exported if e.text_only)
    return {
        "samples": {
            "generated": generated,
            "accepted": accepted,
            "rejected": len(validate_rejects),
            "text_only": text_only,
            "multimodal": accepted - text_only,
        },
        "rejects": {"total": len(rejects), "by_stage": _sorted(by_stage), "by_reason": _sorted(by_reason)},
        "per_source": {k: per_source[k] for k in sorted(per_source)},
        "per_task": per("task"),
        "per_template": per("template_id"),
        "lengths": {
            "turns": distribution([e.n_turns for e in exported]),
            "chars": distribution([e.n_chars for e in exported]),
            "images": distribution([e.n_images for e in exported]),
        },
    }
