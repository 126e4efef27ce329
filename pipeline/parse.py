"""The parse stage: finishes in the workers what sources found cheaply in the driver (`RawUnit`s).

Large sources split their work: the driver's `scan()` only groups raw rows per record; the per-record
checks and model building (`parse_unit`) run here, in parallel. Other items pass through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.stage import Item, Stage
from sources.base import RawUnit, Source


@dataclass
class ParseStage(Stage):
    """Turn RawUnits into records and rejects with the worker copy of the source that made them."""

    name = "parse"
    sources: dict[str, Source] = field(default_factory=dict)

    def process_batch(self, items: list[Item | RawUnit]) -> list[Item]:  # type: ignore[override]
        out: list[Item] = []
        for it in items:
            if isinstance(it, RawUnit):
                out.extend(self.sources[it.source].parse_unit(it.payload))
            else:
                out.append(it)
        return out
