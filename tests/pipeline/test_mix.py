"""Mix: the achieved text-only share hits the target (within 1%) by samples and by tokens, weights split
the budget, caps and upsampling work, picks are seeded, and every sample not picked is a Reject."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.mix import Mixer, MixSection, MixSource, mix_key
from pipeline.tokens import (TokenizerError, count_tokens, count_tokens_batch, histogram, sample_text,
                             sample_tokens)
from schemas.image import ImageRef
from schemas.reject import REASONS
from schemas.sample import Lineage, Sample, Turn

WORDS = ("the a cat dog sat on mat red blue green big small photo image shows two three people table "
         "light dark street tree car window sky water cloud person holding looking").split()


def make(source: str, n: int, lo: int, hi: int, images: bool, rng: random.Random) -> list[Sample]:
    """n samples of `source` whose answers are lo..hi words long."""
    out = []
    for k in range(n):
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))
        question = ("<image>\n" if images else "") + f"Question {k} about {source}?"
        out.append(Sample(id=f"{source}/{k}/task/0", images=[ImageRef(path=f"{source}/{k}.jpg")] if images else [],
                          turns=[Turn(role="user", text=question), Turn(role="assistant", text=answer)],
                          task="vqa_short" if images else "text", source=source,
                          lineage=Lineage(source=source, file=f"{source}.json")))
    return out


@pytest.fixture(scope="module")
def mixed() -> list[Sample]:
    """Two multimodal sources (600 samples) and three text-only ones of different sizes and lengths,
    interleaved in a fixed shuffled order."""
    rng = random.Random(7)
    samples = (make("coco", 400, 3, 40, True, rng) + make("vqa", 200, 1, 5, True, rng)
               + make("alpaca", 300, 10, 150, False, rng) + make("sharegpt", 40, 60, 400, False, rng)
               + make("dolly", 120, 5, 60, False, rng))
    rng.shuffle(samples)
    return samples


def share(out: list[Sample], by: str) -> float:
    if by == "samples":
        return sum(1 for s in out if not s.images) / len(out)
    tok = sample_tokens(out)
    return sum(t for t, s in zip(tok, out) if not s.images) / sum(tok)


def check_accounting(samples: list[Sample], out: list[Sample], rejects: list[Any], report: dict[str, Any]) -> None:
    """Counts add up: every input is kept or rejected once; repeats are extra copies of kept samples."""
    repeats = [s for s in out if "#r" in s.id]
    originals = [s.id for s in out if "#r" not in s.id]
    assert sorted(originals + [r.sample_id for r in rejects]) == sorted(s.id for s in samples)
    assert len(set(s.id for s in out)) == len(out)
    assert all(r.reason == "not_mixed" and r.stage == "mix" for r in rejects)
    assert report["text_only"]["repeats"] == len(repeats)
    assert report["text_only"]["not_mixed"] == len(rejects)
    assert report["text_only"]["picked"] == sum(1 for s in out if not s.images)
    assert report["multimodal"]["samples"] == sum(1 for s in samples if s.images)


def test_reason_code_is_registered() -> None:
    assert "not_mixed" in REASONS


@pytest.mark.parametrize("target", [0.05, 0.2, 0.3])
def test_share_by_samples_hits_the_target(mixed: list[Sample], target: float) -> None:
    out, rejects, report = Mixer(MixSection(text_only_share=target), seed=0).run(mixed)
    achieved = share(out, "samples")
    assert abs(achieved - target) <= 0.01
    # As close as whole samples allow: one text-only sample more or fewer would be further off.
    n, m = sum(1 for s in out if not s.images), sum(1 for s in out if s.images)
    assert abs(achieved - target) <= min(abs((n + d) / (m + n + d) - target) for d in (-1, 1))
    assert report["achieved_share"] == round(achieved, 4) and report["target_share"] == target
    assert [s.id for s in out if s.images] == [s.id for s in mixed if s.images]  # every multimodal sample kept
    check_accounting(mixed, out, rejects, report)
    assert report["warnings"] == []


def test_exact_counts_by_samples(mixed: list[Sample]) -> None:
    """600 multimodal samples at a 20% share: 150 text-only samples. sharegpt has only 40 and no upsampling,
    so it gives all 40 and the other two split the remaining 110 equally (default weights)."""
    out, rejects, report = Mixer(MixSection(text_only_share=0.2), seed=0).run(mixed)
    assert report["text_only"]["picked"] == 150 and len(out) == 750
    per = report["per_source"]
    assert {k: (v["budget"], v["picked"], v["not_mixed"]) for k, v in per.items()} == {
        "alpaca": (55.0, 55, 245), "dolly": (55.0, 55, 65), "sharegpt": (40.0, 40, 0)}


@pytest.mark.parametrize("target", [0.1, 0.25, 0.4])
def test_share_by_tokens_hits_the_target(mixed: list[Sample], target: float) -> None:
    sec = MixSection(text_only_share=target, by="tokens")
    out, rejects, report = Mixer(sec, seed=3).run(mixed)
    achieved = share(out, "tokens")
    assert abs(achieved - target) <= 0.01 * target  # within 1% of the target, not just one point
    assert report["achieved_share"] == round(achieved, 4) == report["achieved_share_tokens"]
    assert report["tokenizer"] == "whitespace" and report["by"] == "tokens"
    check_accounting(mixed, out, rejects, report)


def test_weights_caps_and_redistribution(mixed: list[Sample]) -> None:
    sec = MixSection(text_only_share=0.25, sources={
        "alpaca": MixSource(weight=3.0),
        "dolly": MixSource(weight=1.0, cap=20),
        "sharegpt": MixSource(weight=0.0),
    })
    out, rejects, report = Mixer(sec, seed=0).run(mixed)
    per = report["per_source"]
    # 200 text-only samples for 600 multimodal; sharegpt is off; dolly's part (50) is capped at 20,
    # so alpaca takes the other 180.
    assert (per["alpaca"]["picked"], per["dolly"]["picked"], per["sharegpt"]["picked"]) == (180, 20, 0)
    assert (per["alpaca"]["budget"], per["dolly"]["budget"]) == (180.0, 20.0)
    assert per["sharegpt"]["not_mixed"] == 40 and per["dolly"]["cap"] == 20
    assert share(out, "samples") == 0.25
    check_accounting(mixed, out, rejects, report)


def test_upsampling_repeats_a_small_source(mixed: list[Sample]) -> None:
    sec = MixSection(text_only_share=0.25, sources={"sharegpt": MixSource(weight=2.0, upsample=True),
                                                    "alpaca": MixSource(weight=0.0), "dolly": MixSource(weight=0.0)})
    out, rejects, report = Mixer(sec, seed=0).run(mixed)
    picked = [s for s in out if not s.images]
    assert len(picked) == 200 and {s.source for s in picked} == {"sharegpt"}
    # 40 samples, 200 needed: each appears 5 times, as itself and #r1..#r4, copies right after it.
    base = Counter(s.id.split("#")[0] for s in picked)
    assert set(base.values()) == {5} and len(base) == 40
    first = next(s for s in out if s.source == "sharegpt")
    k = out.index(first)
    assert [s.id for s in out[k:k + 5]] == [first.id] + [f"{first.id}#r{r}" for r in range(1, 5)]
    assert out[k + 1].turns == first.turns and out[k + 1].lineage == first.lineage
    assert report["per_source"]["sharegpt"]["repeats"] == 160
    check_accounting(mixed, out, rejects, report)


def test_upsampling_with_a_cap_and_by_tokens(mixed: list[Sample]) -> None:
    sec = MixSection(text_only_share=0.7, by="tokens",
                     sources={"sharegpt": MixSource(upsample=True, cap=60), "alpaca": MixSource(weight=0.0),
                              "dolly": MixSource(weight=0.0)})
    out, rejects, report = Mixer(sec, seed=0).run(mixed)
    picked = [s for s in out if not s.images]
    assert len(picked) == 60  # the cap, repeats included
    assert sum(1 for s in picked if "#r" in s.id) == 20
    assert any("off the target" in w for w in report["warnings"])  # 60 samples cannot reach 70% of the tokens
    check_accounting(mixed, out, rejects, report)


def test_picks_are_seeded_not_ordered(mixed: list[Sample]) -> None:
    sec = MixSection(text_only_share=0.1)
    a = {s.id for s in Mixer(sec, seed=1).run(mixed)[0]}
    shuffled = list(mixed)
    random.Random(99).shuffle(shuffled)
    b = {s.id for s in Mixer(sec, seed=1).run(shuffled)[0]}
    c = {s.id for s in Mixer(sec, seed=2).run(mixed)[0]}
    assert a == b and a != c
    # Within a source, the samples with the smallest (seed, id) keys are the ones picked.
    alpaca = sorted((s for s in mixed if s.source == "alpaca"), key=lambda s: mix_key(1, s.id))
    n = sum(1 for i in a if i.startswith("alpaca/"))
    assert {s.id for s in alpaca[:n]} == {i for i in a if i.startswith("alpaca/")}


def test_output_keeps_input_order(mixed: list[Sample]) -> None:
    out, _, _ = Mixer(MixSection(text_only_share=0.2), seed=0).run(mixed)
    position = {s.id: k for k, s in enumerate(mixed)}
    assert [position[s.id] for s in out] == sorted(position[s.id] for s in out)


def test_reject_message_names_the_budget(mixed: list[Sample]) -> None:
    _, rejects, _ = Mixer(MixSection(text_only_share=0.2), seed=0).run(mixed)
    r = next(r for r in rejects if r.source == "dolly")
    assert r.message == (f"text-only sample {r.sample_id} was not picked: mix.text_only_share=0.2 by samples gives "
                         "source 'dolly' a budget of 55.0 samples, filled by 55 of its 120 samples. Raise the share or "
                         "the source's weight to keep more")
    assert r.file == "dolly.json" and r.task == "text" and r.lineage is not None


def test_zero_share_and_no_multimodal(mixed: list[Sample]) -> None:
    out, rejects, report = Mixer(MixSection(text_only_share=0.0), seed=0).run(mixed)
    assert all(s.images for s in out) and len(rejects) == 460 and report["achieved_share"] == 0.0
    text = [s for s in mixed if not s.images]
    out, rejects, report = Mixer(MixSection(text_only_share=0.3), seed=0).run(text)
    assert out == text and rejects == []
    assert report["warnings"] == ["there are no multimodal samples, so no share can be set: every text-only "
                                  "sample is kept"]


def test_unknown_source_names_are_reported(mixed: list[Sample]) -> None:
    sec = MixSection(text_only_share=0.1, sources={"alpacca": MixSource(weight=2.0)})
    _, _, report = Mixer(sec, seed=0).run(mixed)
    assert report["warnings"] == ["mix.sources.alpacca: no text-only samples come from a source named 'alpacca'; "
                                  "text-only sources are: alpaca, dolly, sharegpt"]


def test_section_validation() -> None:
    with pytest.raises(ValidationError):
        MixSection(text_only_share=1.0)
    with pytest.raises(ValidationError):
        MixSection(text_only_share=-0.1)
    with pytest.raises(ValidationError, match="extra"):
        MixSection.model_validate({"text_only_share": 0.1, "share": 0.2})
    with pytest.raises(ValidationError):
        MixSection.model_validate({"text_only_share": 0.1, "sources": {"a": {"weight": -1}}})
    with pytest.raises(ValidationError):
        MixSection.model_validate({"text_only_share": 0.1, "by": "words"})


# ---- token counts -----------------------------------------------------------------------------------------

def test_whitespace_counts() -> None:
    assert count_tokens("Hello there,  how are\nyou?") == 5
    assert count_tokens("") == 0
    assert count_tokens_batch(["a b", "c", ""]) == [2, 1, 0]
    s = Sample(id="x", images=[ImageRef(path="a.jpg")], task="t", source="s", lineage=Lineage(source="s"),
               turns=[Turn(role="user", text="<image>\nWhat is it?"), Turn(role="assistant", text="A cat.")])
    assert sample_text(s) == "What is it?\nA cat."
    assert sample_tokens([s]) == [5]


def test_histogram_buckets() -> None:
    assert histogram([0, 31, 32, 63, 64, 5000, 4096, 4095]) == {
        "<32": 2, "32-63": 2, "64-127": 1, "128-255": 0, "256-511": 0, "512-1023": 0, "1024-2047": 0,
        "2048-4095": 1, ">=4096": 2}


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A byte-level BPE tokenizer (vocab 300) trained on WORDS and saved as a transformers folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<pad>"])
    tok.train_from_iterator([" ".join(WORDS)] * 4, trainer)
    path = tmp_path_factory.mktemp("tok")
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>").save_pretrained(path)
    return path


@pytest.mark.slow  # importing transformers' AutoTokenizer imports torch: seconds on a small machine
def test_tokenizer_counts_and_mix_by_its_tokens(tiny_tokenizer: Path, mixed: list[Sample]) -> None:
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(tiny_tokenizer)
    text = "the cat sat on the mat; zebra!"
    n = len(ref.encode(text, add_special_tokens=False))
    assert count_tokens(text, str(tiny_tokenizer)) == n == count_tokens(text, ref)
    assert n > len(text.split())  # "zebra" and the punctuation are not in the vocabulary
    assert count_tokens_batch([text, "a dog"], str(tiny_tokenizer)) == [n, count_tokens("a dog", ref)]

    sec = MixSection(text_only_share=0.15, by="tokens", tokenizer=str(tiny_tokenizer))
    out, rejects, report = Mixer(sec, seed=0).run(mixed)
    tok = sample_tokens(out, ref)
    achieved = sum(t for t, s in zip(tok, out) if not s.images) / sum(tok)
    assert abs(achieved - 0.15) <= 0.0015
    assert report["tokenizer"] == str(tiny_tokenizer) and report["achieved_share"] == round(achieved, 4)
    check_accounting(mixed, out, rejects, report)

    empty = tiny_tokenizer.parent / "empty"
    empty.mkdir()
    with pytest.raises(TokenizerError, match="could not be loaded offline.*Point mix.tokenizer at a local folder"):
        count_tokens("hello", str(empty))


def test_missing_tokenizer_says_how_to_fix(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-tokenizer")
    with pytest.raises(TokenizerError) as err:
        count_tokens("hello", missing)
    assert str(err.value) == (f"tokenizer folder {missing!r} does not exist. Point mix.tokenizer at a local folder "
                              "that holds tokenizer.json / tokenizer_config.json, or leave it out to use the "
                              "whitespace estimate")
