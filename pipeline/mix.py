"""Mix: set the share of text-only samples in the final set, by sample count or by tokens.

Every multimodal sample is kept. Text-only samples are picked so that text-only / (text-only + multimodal)
hits `mix.text_only_share`, measured in samples or in tokens (see `pipeline/tokens.py`). The text-only
budget is split between sources by their weights; a source capped by `cap` (samples, repeats included)
or short of samples takes what it has and the rest of its part goes to the others, by weight
(water-filling). A source with `upsample: true` repeats its samples when it has too few; the copies get
ids with a suffix `#r1`, `#r2`, ...

Which samples a source gives is decided by its samples' order under a hash of (recipe seed, sample id):
never by input order or a global random state, so a recipe picks the same samples on any machine.
Every text-only sample that is not picked becomes a `Reject` ("not_mixed"), so counts add up.
"""

from __future__ import annotations

import hashlib
import math
from itertools import islice
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field

from pipeline.tokens import sample_tokens
from schemas.reject import Reject
from schemas.sample import Sample


class MixSource(BaseModel):
    """One text-only source's part of the mix (recipe `mix.sources.<name>`)."""

    model_config = ConfigDict(extra="forbid")

    #: Relative share of the text-only budget; 0 leaves the source out.
    weight: float = Field(default=1.0, ge=0.0)
    #: At most this many samples from the source, repeats included; None = no cap.
    cap: int | None = Field(default=None, ge=0)
    #: Repeat the source's samples when it has fewer than its part of the budget.
    upsample: bool = False


class MixSection(BaseModel):
    """Recipe `mix`: the text-only share and how the text-only sources split it."""

    model_config = ConfigDict(extra="forbid")

    #: Target share of text-only samples (or tokens) in the final set, in [0, 1).
    text_only_share: float = Field(ge=0.0, lt=1.0)
    by: Literal["samples", "tokens"] = "samples"
    #: A tokenizer folder or name loadable offline (transformers); None = whitespace word count.
    tokenizer: str | None = None
    #: Per-source weight, cap and upsampling, by source name; sources not listed get the defaults.
    sources: dict[str, MixSource] = Field(default_factory=dict)


def mix_key(seed: int, sample_id: str) -> int:
    """The sort key that orders a source's samples for picking: a 64-bit hash of (seed, sample id)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{sample_id}".encode("utf-8"), digest_size=8).digest(), "big")


@dataclass
class _Source:
    """One text-only source during a mix: its samples in pick order and what it was given."""

    name: str
    opts: MixSource
    order: list[int]  # indices into the text-only list, in pick order
    measure: list[float]  # per entry of `order`
    capacity_n: float = 0.0  # samples it can give (inf when upsampling without a cap)
    capacity: float = 0.0  # the same in the mix's measure
    budget: float = 0.0
    picked: list[tuple[int, int]] = field(default_factory=list)  # (text-only index, repeat round)

    def measure_of_first(self, n: int) -> float:
        """Measure of the first n entries of the (cycled) pick order."""
        full, rest = divmod(n, len(self.order))
        return full * sum(self.measure) + sum(self.measure[:rest])


class Mixer:
    """Keeps every multimodal sample and picks text-only samples to hit the recipe's share."""

    name = "mix"

    def __init__(self, section: MixSection, seed: int = 0) -> None:
        self.section = section
        self.seed = seed

    def run(self, samples: list[Sample]) -> tuple[list[Sample], list[Reject], dict[str, Any]]:
        """(mixed samples in input order, each repeat right after its original; a Reject per text-only
        sample not picked, in input order; the report for stats.json)."""
        sec = self.section
        text_idx = [i for i, s in enumerate(samples) if not s.images]
        multi_idx = [i for i, s in enumerate(samples) if s.images]
        tokens = sample_tokens(samples, sec.tokenizer)
        by_tokens = sec.by == "tokens"
        unit = [float(tokens[i]) if by_tokens else 1.0 for i in range(len(samples))]
        warnings: list[str] = []

        sources = self._sources(samples, text_idx, unit, warnings)
        multi_measure = sum(unit[i] for i in multi_idx)
        share = sec.text_only_share
        if not multi_idx and text_idx:
            warnings.append("there are no multimodal samples, so no share can be set: every text-only sample "
                            "is kept")
            for src in sources:
                src.picked = [(k, 0) for k in src.order]
        else:
            target = share / (1.0 - share) * multi_measure
            self._allocate(sources, target)
            self._pick(sources, target)

        picked_rounds: dict[int, int] = {}
        for src in sources:
            for k, r in src.picked:
                i = text_idx[k]
                picked_rounds[i] = max(picked_rounds.get(i, -1), r)
        out: list[Sample] = []
        rejects: list[Reject] = []
        by_name = {src.name: src for src in sources}
        for i, s in enumerate(samples):
            if s.images:
                out.append(s)
            elif i in picked_rounds:
                out.append(s)
                out.extend(s.model_copy(update={"id": f"{s.id}#r{r}"}, deep=True)
                           for r in range(1, picked_rounds[i] + 1))
            else:
                rejects.append(self._reject(s, by_name[s.source]))

        report = self._report(samples, tokens, multi_idx, sources, warnings)
        if multi_idx and abs(report["achieved_share"] - share) > 0.01:
            warnings.append(f"achieved text-only share {report['achieved_share']:.4f} is off the target "
                            f"{share:g}: the text-only sources have too few samples (or caps). Give a source "
                            "`upsample: true`, raise its cap, or lower mix.text_only_share")
        return out, rejects, report

    def _sources(self, samples: Sequence[Sample], text_idx: list[int], unit: list[float],
                 warnings: list[str]) -> list[_Source]:
        """The text-only sources, by name, each with its samples in pick order and its capacity."""
        members: dict[str, list[int]] = {}
        for k, i in enumerate(text_idx):
            members.setdefault(samples[i].source, []).append(k)
        for name in sorted(set(self.section.sources) - set(members)):
            warnings.append(f"mix.sources.{name}: no text-only samples come from a source named {name!r}; "
                            f"text-only sources are: {', '.join(sorted(members)) or 'none'}")
        out: list[_Source] = []
        for name in sorted(members):
            opts = self.section.sources.get(name, MixSource())
            order = sorted(members[name], key=lambda k: (mix_key(self.seed, samples[text_idx[k]].id),
                                                         samples[text_idx[k]].id))
            src = _Source(name=name, opts=opts, order=order, measure=[unit[text_idx[k]] for k in order])
            can_repeat = opts.upsample and sum(src.measure) > 0
            n = math.inf if can_repeat else len(order)
            if opts.cap is not None:
                n = min(n, opts.cap)
            src.capacity_n = n
            src.capacity = math.inf if n == math.inf else src.measure_of_first(int(n))
            out.append(src)
        return out

    @staticmethod
    def _allocate(sources: list[_Source], target: float) -> None:
        """Split `target` between sources by weight; a source that cannot take its part takes what it can
        and the remainder is split again between the others (water-filling)."""
        active = [s for s in sources if s.opts.weight > 0 and s.capacity > 0]
        remaining = target
        while active and remaining > 0:
            total_w = sum(s.opts.weight for s in active)
            full = [s for s in active if s.capacity <= remaining * s.opts.weight / total_w]
            if not full:
                for s in active:
                    s.budget = remaining * s.opts.weight / total_w
                return
            for s in full:
                s.budget = s.capacity
                remaining -= s.capacity
                active.remove(s)

    @staticmethod
    def _pick(sources: list[_Source], target: float) -> None:
        """Take the longest pick-order prefix of each source that stays within its budget; what a source
        leaves unused (a sample is indivisible) is carried to the next. Full sources go first and the
        source with the smallest samples last, so the sources with room absorb the carry. Then the gap
        left to `target` is topped up, one sample at a time, with the sample that fills it best."""
        def typical(src: _Source) -> float:
            return sum(src.measure) / len(src.measure)

        carry = 0.0
        taken: dict[str, list[int]] = {src.name: [] for src in sources}
        for src in sorted(sources, key=lambda s: (s.budget < s.capacity, -typical(s), s.name)):
            if src.opts.weight == 0 or src.capacity == 0:
                continue
            want = src.budget + carry
            got, n = 0.0, 0
            while n < src.capacity_n:
                m = src.measure[n % len(src.order)]
                if got + m > want:
                    break
                got += m
                n += 1
            taken[src.name] = list(range(n))
            carry = want - got
        Mixer._top_up(sources, taken, target)
        for src in sources:
            size = len(src.order)
            src.picked = [(src.order[j % size], j // size) for j in sorted(taken[src.name])]

    @staticmethod
    def _top_up(sources: list[_Source], taken: dict[str, list[int]], target: float, look_ahead: int = 64) -> None:
        """Add single samples while one brings the total closer to `target`. Candidates are the first
        `look_ahead` untaken positions of each source with room, in the repeat round being filled (earlier
        rounds are complete, so a copy `#rN` is never taken before every sample of the rounds before it)."""
        got = sum(src.measure[j % len(src.order)] for src in sources for j in taken[src.name])
        while got < target:
            gap = target - got
            best: tuple[float, str, int, float] | None = None
            for src in sources:
                mine = taken[src.name]
                if src.opts.weight == 0 or src.capacity == 0 or len(mine) >= src.capacity_n:
                    continue
                size = len(src.order)
                have = set(mine)
                lo = len(mine) // size * size
                free = islice((j for j in range(lo, lo + size) if j not in have), look_ahead)
                for j in free:
                    m = src.measure[j % size]
                    cand = (abs(gap - m), src.name, j, m)
                    if best is None or cand < best:
                        best = cand
            if best is None or best[0] >= gap:
                return
            _, name, j, m = best
            taken[name].append(j)
            got += m

    def _report(self, samples: Sequence[Sample], tokens: list[int], multi_idx: list[int], sources: list[_Source],
                warnings: list[str]) -> dict[str, Any]:
        """Target against achieved share, and per-source counts, for stats.json."""
        sec = self.section
        text_idx = [i for i, s in enumerate(samples) if not s.images]
        multi_tokens = sum(tokens[i] for i in multi_idx)
        per_source: dict[str, Any] = {}
        n_text = t_text = repeats = 0
        for src in sources:
            ids = [text_idx[k] for k, _ in src.picked]
            n = len(ids)
            t = sum(tokens[i] for i in ids)
            rep = sum(1 for _, r in src.picked if r > 0)
            per_source[src.name] = {
                "weight": src.opts.weight, "cap": src.opts.cap, "upsample": src.opts.upsample,
                "available": len(src.order), "budget": round(src.budget, 2),
                "picked": n, "repeats": rep, "not_mixed": len(src.order) - len({k for k, _ in src.picked}),
                "tokens": t,
            }
            n_text += n
            t_text += t
            repeats += rep

        def ratio(a: float, b: float) -> float:
            return round(a / (a + b), 4) if a + b else 0.0

        by_samples = ratio(n_text, len(multi_idx))
        by_tokens = ratio(t_text, multi_tokens)
        return {
            "by": sec.by,
            "tokenizer": sec.tokenizer or "whitespace",
            "target_share": sec.text_only_share,
            "achieved_share": by_tokens if sec.by == "tokens" else by_samples,
            "achieved_share_samples": by_samples,
            "achieved_share_tokens": by_tokens,
            "multimodal": {"samples": len(multi_idx), "tokens": multi_tokens},
            "text_only": {"available": len(text_idx), "picked": n_text, "repeats": repeats,
                          "not_mixed": len(text_idx) - (n_text - repeats), "tokens": t_text},
            "per_source": per_source,
            "warnings": warnings,
        }

    def _reject(self, s: Sample, src: _Source) -> Reject:
        sec = self.section
        unit = "tokens" if sec.by == "tokens" else "samples"
        return Reject(reason="not_mixed", stage=self.name, source=s.source, file=s.lineage.file, sample_id=s.id,
                      task=s.task, template_id=s.lineage.template_id, lineage=s.lineage,
                      message=f"text-only sample {s.id} was not picked: mix.text_only_share={sec.text_only_share:g} "
                              f"by {sec.by} gives source {src.name!r} a budget of {src.budget:.1f} {unit}, "
                              f"filled by {len(src.picked)} of its {len(src.order)} samples. Raise the share or "
                              f"the source's weight to keep more")
