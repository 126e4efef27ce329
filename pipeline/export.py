"""The export stage: accepted samples become serialized rows of every output format, in the workers.

What comes back to the driver is an `Exported` per sample: its rows plus the few fields that stats need,
so the full Sample does not cross the process boundary a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from outputs.base import Writer
from pipeline.stage import Item, Stage
from schemas.sample import Sample


@dataclass
class Exported:
    """One accepted sample after export: per-writer rows and the fields stats are computed from."""

    sample_id: str
    #: `source/record id` of the record the sample came from (sample ids end in `/task/n`).
    record_key: str
    source: str
    task: str
    template_id: str | None
    text_only: bool
    n_turns: int
    n_chars: int
    n_images: int
    rows: tuple[str | None, ...]


@dataclass
class ExportStage(Stage):
    """Encode each Sample with every writer; Rejects pass through."""

    name = "export"
    writers: list[Writer] = field(default_factory=list)

    def process_batch(self, items: list[Item]) -> list[Item | Exported]:  # type: ignore[override]
        out: list[Item | Exported] = []
        for it in items:
            if not isinstance(it, Sample):
                out.append(it)
                continue
            rows = tuple(w.encode(it) if (w.accepts_text_only or it.images) else None for w in self.writers)
            text = [t.text for t in it.turns]
            out.append(Exported(
                sample_id=it.id, record_key=it.id.rsplit("/", 2)[0], source=it.source, task=it.task, template_id=it.lineage.template_id,
                text_only=not it.images, n_turns=len(it.turns), n_chars=sum(map(len, text)),
                n_images=len(it.images), rows=rows,
            ))
        return out

