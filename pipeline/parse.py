"""Reading on Ray: a source's scan runs as a read task in a worker; the parse stage finishes its units.

Large sources split their work: `scan()` only groups raw rows per record (and joins other files' data);
the per-record checks and model building (`parse_unit`) run in the parse stage, in parallel. In a build,
each source's scan is a `SourceScan` reader, so sources are read in the workers and the driver never holds
their data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from pipeline.ray_runner import gc_paused
from pipeline.stage import Item, Stage
from sources.base import RawUnit, Source


@dataclass
class SourceScan:
    """A reader for the Ray runner: one source's scan, cut into shards of `shard_size` items."""

    source: Source
    shard_size: int = 4096

    def __call__(self) -> Iterator[list[Item | RawUnit]]:
        shard: list[Item | RawUnit] = []
        # scans build millions of small acyclic objects; see `gc_paused`
        with gc_paused():
            for x in self.source.scan():
                if isinstance(x, RawUnit):
                    x.reader = self.source  # pickled once per shard, with what the scan set up
                shard.append(x)
                if len(shard) >= self.shard_size:
                    yield shard
                    shard = []
        if shard:
            yield shard


def scan_here(sources: list[Source], shard_size: int = 4096) -> list[Item | RawUnit]:
    """Every source's scan run in this process, in order (tests, and the reference for Ray runs)."""
    return [x for src in sources for shard in SourceScan(src, shard_size)() for x in shard]


@dataclass
class ParseStage(Stage):
    """Turn RawUnits into records and rejects with the source that made them; other items pass through."""

    name = "parse"

    def process_batch(self, items: list[Item | RawUnit]) -> list[Item]:  # type: ignore[override]
        out: list[Item] = []
        for it in items:
            if isinstance(it, RawUnit):
                assert it.reader is not None, "RawUnits come from SourceScan, which sets their reader"
                out.extend(it.reader.parse_unit(it.payload))
            else:
                out.append(it)
        return out
