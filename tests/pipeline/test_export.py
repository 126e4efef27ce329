"""The export stage checks every row against its format's loader rules before anything is written."""

from __future__ import annotations

import json

import pytest

import outputs.validators as validators
from outputs.llava import LlavaWriter
from outputs.openai_chat import OpenAIChatWriter
from outputs.validators.base import Violation
from pipeline.export import ExportedShard, ExportStage
from schemas.image import ImageRef
from schemas.recipe import OutputFormat
from schemas.reject import Reject
from schemas.sample import Lineage, Sample, Turn


def sample(sid: str, images: int = 1) -> Sample:
    text = "<image>\nWhat is it?" if images else "What is it?"
    return Sample(id=sid, images=[ImageRef(path="a.jpg")] * images,
                  turns=[Turn(role="user", text=text), Turn(role="assistant", text="A cat.")],
                  task="vqa_short", source="s", lineage=Lineage(source="s", template_id="vqa_short/plain"))


def test_rows_per_writer_and_text_only_formats() -> None:
    stage = ExportStage(writers=[LlavaWriter(OutputFormat(kind="llava"), "d"),
                                 OpenAIChatWriter(OutputFormat(kind="openai_chat"), "d")])
    [shard] = stage.process_batch([sample("s/1/vqa_short/0"), sample("s/2/text/0", images=0)])
    assert isinstance(shard, ExportedShard) and shard.sample_id == ["s/1/vqa_short/0", "s/2/text/0"]
    llava, openai = shard.rows
    assert json.loads(llava[0])["image"] == "a.jpg" and "image" not in json.loads(llava[1])
    assert openai[0] is None  # the OpenAI chat format holds text-only samples only
    assert json.loads(openai[1]) == {"messages": [{"role": "user", "content": "What is it?"},
                                                  {"role": "assistant", "content": "A cat."}]}
    assert shard.text_only == [False, True] and shard.n_turns == [2, 2]


def test_a_row_breaking_a_loader_rule_is_rejected_from_every_format(monkeypatch: pytest.MonkeyPatch) -> None:
    def strict(i: int, row: dict) -> list[Violation]:
        bad = "cat" in row["conversations"][1]["value"]
        return [Violation(row=i, rule="empty_value", message="cats are not allowed")] if bad else []

    monkeypatch.setitem(validators.ROW_CHECKS, "llava", strict)
    stage = ExportStage(writers=[LlavaWriter(OutputFormat(kind="llava"), "d")])
    ok = sample("s/1/vqa_short/0").model_copy(update={"turns": [Turn(role="user", text="<image>\nWhat is it?"),
                                                                Turn(role="assistant", text="A dog.")]})
    out = stage.process_batch([sample("s/2/vqa_short/0"), ok])
    rejects = [x for x in out if isinstance(x, Reject)]
    [shard] = [x for x in out if isinstance(x, ExportedShard)]
    assert shard.sample_id == ["s/1/vqa_short/0"] and len(shard.rows[0]) == 1
    assert [(r.reason, r.stage, r.sample_id) for r in rejects] == [("export_invalid", "export", "s/2/vqa_short/0")]
    assert "llava: [empty_value] cats are not allowed" in rejects[0].message


def test_token_and_char_counts_match_the_text_helpers() -> None:
    """The whitespace estimate counted per turn equals count_tokens(sample_text(s)), placeholders and all."""
    from pipeline.tokens import count_tokens, sample_text

    texts = [("<image>\nWhat is it?", "A cat."), ("a<image>b  <image>", " two\twords\n"), ("<image>", "x")]
    samples = [Sample(id=f"s/{i}/vqa_short/0", images=[ImageRef(path="a.jpg")] * u.count("<image>"),
                      turns=[Turn(role="user", text=u), Turn(role="assistant", text=a)], task="vqa_short",
                      source="s", lineage=Lineage(source="s")) for i, (u, a) in enumerate(texts)]
    [shard] = ExportStage(writers=[LlavaWriter(OutputFormat(kind="llava"), "d")]).process_batch(samples)
    assert shard.n_tokens == [count_tokens(sample_text(s)) for s in samples] == [5, 3, 1]
    assert shard.n_chars == [sum(len(t.text) for t in s.turns) for s in samples]
