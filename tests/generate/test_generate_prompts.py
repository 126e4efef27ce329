"""Golden tests of the self-instruct prompt templates, and how prompts are built from a record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.generate.prompts import PromptBuilder, prompt_objects, reply_schema
from pipeline.llm.cache import messages_hash
from schemas.record import AnnotationRecord
from templates.library import TemplateError, TemplateLibrary

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "generate"
RECORDS = [AnnotationRecord.model_validate(r) for r in json.loads((ASSETS / "records.json").read_text())]


def golden(kind: str) -> list[dict[str, str]]:
    """Messages from tests/assets/generate/golden/<kind>.txt (`=== role` lines start each message)."""
    out: list[dict[str, str]] = []
    for block in (ASSETS / "golden" / f"{kind}.txt").read_text(encoding="utf-8").split("=== ")[1:]:
        role, _, content = block.partition("\n")
        out.append({"role": role, "content": content.rstrip("\n")})
    return out


@pytest.mark.parametrize("kind", ["conversation", "detail", "complex"])
def test_prompt_matches_golden(kind: str) -> None:
    p = PromptBuilder(TemplateLibrary(), max_pairs=6).build(RECORDS[0], kind)
    assert p.messages == golden(kind)
    assert [m["role"] for m in p.messages] == ["system", "user", "assistant", "user"]
    assert (p.template_id, p.template_version) == (f"self_instruct/{kind}", 1)
    assert p.prompt_hash == messages_hash(p.messages)


def test_context_lists_captions_and_normalised_boxes() -> None:
    p = PromptBuilder(TemplateLibrary()).build(RECORDS[2], "complex")
    assert p.messages[-1]["content"] == (
        "Captions:\n"
        "- A crowd of people waits as a red bus pulls up.\n"
        "Objects (category [x1, y1, x2, y2], coordinates from 0 to 1, x1, y1 = top-left corner):\n"
        "- person (a crowd) [0.00, 0.38, 0.50, 1.00]\n"
        "- bus [0.50, 0.15, 1.00, 0.90]")


def test_language_and_pair_limit_reach_the_system_prompt() -> None:
    p = PromptBuilder(TemplateLibrary(), max_pairs=3, language="de").build(RECORDS[0], "conversation")
    assert p.messages[0]["content"].endswith(
        'Write in German. Reply with one JSON object and nothing else:\n'
        '{"conversation": [{"question": "...", "answer": "..."}, ...]} with 2 to 3 question-answer pairs.')


def test_largest_objects_are_kept_beyond_the_limit() -> None:
    objs = prompt_objects(RECORDS[0], max_objects=2)
    assert objs == [{"category": "person", "box": "[0.40, 0.20, 0.60, 0.90]"},
                    {"category": "dog", "box": "[0.20, 0.60, 0.40, 0.90]"}]


def test_detail_instructions() -> None:
    assert PromptBuilder(TemplateLibrary()).instructions() == [
        "Describe the image in detail.",
        "Give a detailed description of this picture.",
        "What is happening in this image? Describe it thoroughly.",
        "Write a detailed account of everything you can see in the image.",
        "Walk me through this scene in detail.",
        "Explain the contents of this image in detail.",
    ]


def test_user_templates_override_and_are_checked(tmp_path: Path) -> None:
    folder = tmp_path / "self_instruct"
    folder.mkdir()
    (folder / "complex.jinja2").write_text(
        "{# version: 3 #}\n{% block system %}Be terse.{% endblock %}\n"
        "{% block user %}{{ captions | join(' / ') }}{% endblock %}\n", encoding="utf-8")
    p = PromptBuilder(TemplateLibrary([tmp_path])).build(RECORDS[0], "complex")
    assert p.messages == [{"role": "system", "content": "Be terse."},
                          {"role": "user", "content": "A woman walks two dogs along a park path. / "
                                                      "Two dogs on leashes with their owner on a sunny day."}]
    assert p.template_version == 3
    (folder / "detail.jinja2").write_text("{% block system %}x{% endblock %}{% block user %}y{% endblock %}",
                                          encoding="utf-8")
    with pytest.raises(TemplateError, match="lacks block"):
        PromptBuilder(TemplateLibrary([tmp_path])).build(RECORDS[0], "detail")
    (folder / "conversation.jinja2").write_text(
        "{% block system %}x{% endblock %}{% block example_1_user %}u{% endblock %}{% block user %}y{% endblock %}",
        encoding="utf-8")
    with pytest.raises(TemplateError, match="few-shot example 1 needs both"):
        PromptBuilder(TemplateLibrary([tmp_path])).build(RECORDS[0], "conversation")


def test_reply_schemas() -> None:
    conv = reply_schema("conversation", 4)
    assert conv["properties"]["conversation"]["maxItems"] == 4
    assert conv["properties"]["conversation"]["items"]["required"] == ["question", "answer"]
    assert reply_schema("detail", 4)["required"] == ["description"]
    assert reply_schema("complex", 4)["required"] == ["question", "answer"]
