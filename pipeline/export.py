"""The export stage: accepted samples become serialized rows of every output format, in the workers.

What comes back to the driver is one `ExportedShard` per batch: each writer's rows as a list of strings
plus, column by column, the few fields stats need. Full Samples do not cross the process boundary again,
and the driver's work per sample is a list append.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from outputs.base import Writer
from pipeline.stage import Item, Stage
from pipeline.tokens import count_tokens, sample_text
from schemas.reject import Reject
from schemas.sample import IMAGE_TOKEN, Sample


@dataclass
class ExportedShard:
    """The accepted samples of one batch after export, in order, as columns."""

    #: rows[k][i]: writer k's row for sample i, or None when writer k cannot hold it.
    rows: list[list[str | None]]
    sample_id: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    task: list[str] = field(default_factory=list)
    template_id: list[str | None] = field(default_factory=list)
    text_only: list[bool] = field(default_factory=list)
    n_turns: list[int] = field(default_factory=list)
    n_chars: list[int] = field(default_factory=list)
    n_images: list[int] = field(default_factory=list)
    #: Text tokens per sample (the recipe's mix tokenizer, else the whitespace estimate).
    n_tokens: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sample_id)

    @property
    def record_keys(self) -> list[str]:
        """`source/record id` of each sample's record (sample ids end in `/task/n`)."""
        return [s.rsplit("/", 2)[0] for s in self.sample_id]


@dataclass
class ExportStage(Stage):
    """Encode each Sample with every writer into one ExportedShard; Rejects pass through."""

    name = "export"
    writers: list[Writer] = field(default_factory=list)
    #: Tokenizer for the token counts (a local name or path); None = whitespace estimate.
    tokenizer: str | None = None

    def process_batch(self, items: list[Item]) -> list[Item | ExportedShard]:  # type: ignore[override]
        shard = ExportedShard(rows=[[] for _ in self.writers])
        out: list[Item | ExportedShard] = []
        whitespace = self.tokenizer is None  # the estimate, counted here without building the text
        for it in items:
            if not isinstance(it, Sample):
                out.append(it)
                continue
            has_image = bool(it.images)
            encoded: list[str | None] = []
            problems: list[str] = []
            for w in self.writers:
                if not (w.accepts_images if has_image else w.accepts_text_only):
                    encoded.append(None)
                    continue
                row, bad = w.encode_checked(it)
                encoded.append(row)
                if bad:
                    problems.extend(f"{w.kind}: {p}" for p in bad)
            if problems:
                out.append(Reject(reason="export_invalid", stage=self.name, source=it.source, file=it.lineage.file,
                                  sample_id=it.id, task=it.task, template_id=it.lineage.template_id,
                                  lineage=it.lineage,
                                  message=f"sample {it.id} breaks the loading rules of an output format, so it "
                                          f"is left out of every format: {'; '.join(problems)}"))
                continue
            for rows, row in zip(shard.rows, encoded):
                rows.append(row)
            turns = it.turns
            n_chars = n_words = 0
            for t in turns:
                n_chars += len(t.text)
                if whitespace:
                    n_words += len(t.text.replace(IMAGE_TOKEN, "").split())
            shard.sample_id.append(it.id)
            shard.source.append(it.source)
            shard.task.append(it.task)
            shard.template_id.append(it.lineage.template_id)
            shard.text_only.append(not has_image)
            shard.n_turns.append(len(turns))
            shard.n_chars.append(n_chars)
            shard.n_images.append(len(it.images))
            shard.n_tokens.append(n_words if whitespace else count_tokens(sample_text(it), self.tokenizer))
        out.append(shard)
        return out
