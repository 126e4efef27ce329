"""The dataset card: exact text for a small stats dict (golden file), YAML front matter that parses,
size and task categories, and code fences that survive backticks in the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from outputs.card import render_card, size_category, task_categories, write_card

GOLDEN = Path(__file__).resolve().parents[1] / "assets" / "outputs" / "card" / "README.md"


def small_stats() -> dict[str, Any]:
    """stats.json of a tiny run: 2 image sources, 1 text-only source mixed in, a few rejects."""
    return {
        "samples": {"generated": 14, "accepted": 12, "rejected": 2, "text_only": 2, "multimodal": 10},
        "records": {"read": 11, "gave_samples": 10, "rejected_whole": 1, "adds_up": True},
        "rejects": {"total": 6, "by_stage": {"dedup": 1, "mix": 3, "parse": 1, "validate": 1},
                    "by_reason": {"duplicate_exact": 1, "empty_answer": 1, "not_mixed": 3, "turn_too_long": 1}},
        "per_source": {
            "alpaca": {"records": 5, "samples_accepted": 2, "samples_rejected": 0, "rejects": {"not_mixed": 3}},
            "coco_captions": {"records": 4, "samples_accepted": 4, "samples_rejected": 1,
                              "rejects": {"duplicate_exact": 1, "turn_too_long": 1}},
            "vqav2": {"records": 2, "samples_accepted": 6, "samples_rejected": 1, "rejects": {"empty_answer": 1}},
        },
        "per_task": {"caption_short": {"accepted": 4, "rejected": 1}, "text": {"accepted": 2, "rejected": 0},
                     "vqa_short": {"accepted": 6, "rejected": 1}},
        "per_template": {"-": {"accepted": 2, "rejected": 0}, "caption_short/brief": {"accepted": 4, "rejected": 1},
                         "vqa_short/plain": {"accepted": 6, "rejected": 1}},
        "lengths": {
            "turns": {"count": 12, "min": 2, "mean": 2.5, "p50": 2, "p90": 4, "p99": 4, "max": 4},
            "chars": {"count": 12, "min": 20, "mean": 96.25, "p50": 80, "p90": 210, "p99": 260, "max": 260},
            "tokens": {"count": 12, "min": 4, "mean": 19.5, "p50": 15, "p90": 41, "p99": 52, "max": 52},
            "tokens_histogram": {"<32": 9, "32-63": 3, "64-127": 0},
            "tokenizer": "whitespace",
        },
        "mix": {"by": "samples", "tokenizer": "whitespace", "target_share": 0.15, "achieved_share": 0.1667,
                "achieved_share_samples": 0.1667, "achieved_share_tokens": 0.2308,
                "multimodal": {"samples": 10, "tokens": 180}, "warnings": [],
                "text_only": {"available": 5, "picked": 2, "repeats": 0, "not_mixed": 3, "tokens": 54},
                "per_source": {"alpaca": {"weight": 1.0, "cap": None, "upsample": False, "available": 5,
                                          "budget": 1.76, "picked": 2, "repeats": 0, "not_mixed": 3, "tokens": 54}}},
    }


EXAMPLES = [
    {"id": "vqav2/1/vqa_short/0", "image": "000000000001.jpg",
     "conversations": [{"from": "human", "value": "<image>\nWhat color is the suit?\nAnswer the question using a "
                                                  "single word or phrase."},
                       {"from": "gpt", "value": "orange"}]},
    {"id": "alpaca/3/text/0", "conversations": [{"from": "human", "value": "Name a prime number."},
                                                {"from": "gpt", "value": "Seven."}]},
]


def front_matter(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end])


def test_card_renders_exactly() -> None:
    text = render_card("tiny", small_stats(), EXAMPLES, "cc-by-4.0",
                       description="A small test build: COCO captions and VQAv2 with some Alpaca mixed in.")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_front_matter_parses_as_yaml() -> None:
    text = render_card("tiny", small_stats(), EXAMPLES, "cc-by-4.0", language=["en"],
                       configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "hf/*.parquet"}]}])
    assert front_matter(text) == {
        "license": "cc-by-4.0",
        "language": ["en"],
        "task_categories": ["image-text-to-text", "visual-question-answering", "image-to-text", "text-generation"],
        "size_categories": ["n<1K"],
        "pretty_name": "tiny",
        "tags": ["vlforge", "instruction-tuning", "vision-language"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "hf/*.parquet"}]}],
    }


def test_write_card_writes_readme_atomically(tmp_path: Path) -> None:
    out = tmp_path / "run"
    path = write_card(out, "tiny", small_stats(), EXAMPLES, "cc-by-4.0",
                      description="A small test build: COCO captions and VQAv2 with some Alpaca mixed in.")
    assert path == out / "README.md"
    assert path.read_text(encoding="utf-8") == GOLDEN.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == ["README.md"]  # no temporary file left behind


@pytest.mark.parametrize(("n", "label"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (9999, "1K<n<10K"),
                                          (10_000, "10K<n<100K"), (250_000, "100K<n<1M"), (1_000_000, "1M<n<10M"),
                                          (2_000_000_000, "n>1B")])
def test_size_category(n: int, label: str) -> None:
    assert size_category(n) == label


def test_task_categories_follow_the_tasks() -> None:
    stats = {"samples": {"accepted": 3, "text_only": 0, "multimodal": 3},
             "per_task": {"caption_short": {"accepted": 3, "rejected": 0}, "vqa_short": {"accepted": 0, "rejected": 2}}}
    assert task_categories(stats) == ["image-text-to-text", "image-to-text"]
    text_only = {"samples": {"accepted": 2, "text_only": 2, "multimodal": 0}, "per_task": {"text": {"accepted": 2}}}
    assert task_categories(text_only) == ["text-generation"]
    text = render_card("t", text_only, [], "apache-2.0", categories=["text-generation", "question-answering"])
    assert front_matter(text)["task_categories"] == ["text-generation", "question-answering"]


def test_examples_with_backticks_get_a_longer_fence() -> None:
    ex = {"id": "x", "conversations": [{"from": "gpt", "value": "Use ```python fences``` for code."}]}
    text = render_card("t", {"samples": {"accepted": 1, "text_only": 1, "multimodal": 0}}, [ex], "mit")
    body = text[text.index("### `x`"):]
    assert body.split("\n")[2] == "````json" and body.rstrip("\n").split("\n")[-1] == "````"


def test_minimal_stats_render_without_optional_sections() -> None:
    text = render_card("bare", {"samples": {"accepted": 0}}, [], "other")
    assert text.endswith("## Rejects\n\nNo record or sample was rejected.\n")
    assert "## Lengths" not in text and "## Examples" not in text and "### Per source" not in text
    assert front_matter(text)["task_categories"] == []
