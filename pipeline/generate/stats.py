"""The generate stage's figures for stats.json: requests, cache, tokens, cost, rejects, hallucination.

Each worker returns `GenerateStage.stats()`, a plain dict of counts; `merge_stats` adds the dicts of
all workers and `summarize` derives the rates (the CHAIR figures, cache hit share, cost). Counts add up:
`units = accepted + rejected`, where a unit is one (record, prompt) pair.
"""

from __future__ import annotations

from typing import Any, Iterable


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _add(out[k], v) if k in out else v
        return out
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a + b
    return b


def merge_stats(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum the count dicts of several workers (nested dicts are summed key by key)."""
    total: dict[str, Any] = {}
    for p in parts:
        total = _add(total, p)
    return total


def _rate(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


def summarize(counts: dict[str, Any], cost_per_1k_prompt: float | None = None,
              cost_per_1k_completion: float | None = None) -> dict[str, Any]:
    """The stats.json `generate` section: the counts plus derived rates and the cost of the calls made."""
    out = dict(counts)
    h = counts.get("hallucination", {})
    out["hallucination"] = {
        **h,
        # CHAIR_s: share of answers naming at least one absent category; CHAIR_i: share of mentions.
        "chair_s": _rate(h.get("answers_hallucinated", 0), h.get("answers", 0)),
        "chair_i": _rate(h.get("mentions_hallucinated", 0), h.get("mentions", 0)),
    }
    llm = counts.get("llm", {})
    lookups = llm.get("cache_hits", 0) + llm.get("ok", 0)
    out["cache_hit_rate"] = _rate(llm.get("cache_hits", 0), lookups)
    if cost_per_1k_prompt is not None or cost_per_1k_completion is not None:
        out["cost"] = round(llm.get("prompt_tokens", 0) / 1000 * (cost_per_1k_prompt or 0.0)
                            + llm.get("completion_tokens", 0) / 1000 * (cost_per_1k_completion or 0.0), 6)
    return out


def report(parts: Iterable[dict[str, Any]], cost_per_1k_prompt: float | None = None,
           cost_per_1k_completion: float | None = None) -> dict[str, Any]:
    """`merge_stats` then `summarize`: the stats.json `generate` section from every worker's stats()."""
    return summarize(merge_stats(parts), cost_per_1k_prompt, cost_per_1k_completion)
