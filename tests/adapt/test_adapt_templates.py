"""Golden tests for the bundled adapt templates: each one rendered with fixed variables, exact strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.adapt.tasks import TASKS
from templates.library import BUNDLED_DIR, TemplateLibrary

SHORT_SUFFIX = "Answer the question using a single word or phrase."
MC_SUFFIX = "Answer with the option's letter from the given choices directly."

VARS = {
    "caption": {"caption": "Two dogs play in the snow."},
    "qa": {"question": "What colour is the car?", "answer": "blue"},
    "mc": {"question": "Which is a mammal?", "context": "Look at the animals.",
           "options": [("A", "shark"), ("B", "whale"), ("C", "trout")], "answer": "B", "answer_text": "whale"},
    "ref": {"expression": "the woman in red", "box": "<box:0>"},
    "grounded": {"caption": "A man walks a dog.", "objects": [("person", "<box:0>"), ("dog", "<box:1>")]},
    "count": {"category": "mouse", "plural": "mice", "count": 3},
    "label": {"label": "golden retriever"},
    "read": {"text": "STOP 25 MPH", "tokens": ["STOP", "25", "MPH"]},
}

# template id -> (variables, expected user text, expected assistant text)
GOLDEN: dict[str, tuple[str, str, str]] = {
    "caption_short/brief": ("caption", "Describe the image briefly.", "Two dogs play in the snow."),
    "caption_short/caption": ("caption", "Write a short caption for this photo.", "Two dogs play in the snow."),
    "caption_short/glance": ("caption", "What is going on in this image? Keep your answer short.",
                             "Two dogs play in the snow."),
    "caption_short/one_sentence": ("caption", "Sum up what this picture shows in a single sentence.",
                                   "Two dogs play in the snow."),
    "caption_detailed/detail": ("caption", "Describe this image in detail.", "Two dogs play in the snow."),
    "caption_detailed/thorough": ("caption", "Give a thorough description of everything you can see in the "
                                             "picture.", "Two dogs play in the snow."),
    "caption_detailed/walkthrough": ("caption", "Walk me through this image: the setting, the main things in it "
                                                "and how they relate to each other.", "Two dogs play in the snow."),
    "vqa_short/plain": ("qa", f"What colour is the car?\n{SHORT_SUFFIX}", "blue"),
    "vqa_short/labelled": ("qa", f"Question: What colour is the car?\n{SHORT_SUFFIX}", "blue"),
    "vqa_short/look": ("qa", f"Look at the image. What colour is the car?\n{SHORT_SUFFIX}", "blue"),
    "mc/plain": ("mc", f"Context: Look at the animals.\nWhich is a mammal?\nA. shark\nB. whale\nC. trout\n{MC_SUFFIX}",
                 "B"),
    "mc/labelled": ("mc", "Context: Look at the animals.\nQuestion: Which is a mammal?\nOptions:\nA. shark\n"
                          f"B. whale\nC. trout\n{MC_SUFFIX}", "B"),
    "rec/locate": ("ref", 'Where is "the woman in red" in the image? Give its bounding box.', "<box:0>"),
    "rec/box_of": ("ref", "Give the bounding box of the region this phrase describes: the woman in red", "<box:0>"),
    "rec/find": ("ref", 'Find the object described as "the woman in red" and answer with its box coordinates.',
                 "<box:0>"),
    "reg/describe_region": ("ref", "Describe the region <box:0> with a short phrase that singles it out.",
                            "the woman in red"),
    "reg/refer": ("ref", "Write a referring expression for the object at <box:0>.", "the woman in red"),
    "reg/what_is": ("ref", "What is in the box <box:0>? Describe it so that it cannot be confused with anything "
                           "else in the image.", "the woman in red"),
    "grounded_caption/list": ("grounded", "Describe the image briefly, then list the objects in it with their "
                                          "bounding boxes.",
                              "A man walks a dog.\nObjects:\n- person <box:0>\n- dog <box:1>"),
    "grounded_caption/inline": ("grounded", "Give a short caption of this image, then name each object in it with "
                                            "its box.", "A man walks a dog.\nObjects: person <box:0>, dog <box:1>."),
    "counting/how_many": ("count", "How many mice are there in the image?", "3"),
    "counting/count": ("count", "Count the mice in this picture and answer with a number.", "3"),
    "counting/short": ("count", f"How many mice can you see?\n{SHORT_SUFFIX}", "3"),
    "classification/category": ("label", "What is the main subject of this image? Answer with its category name.",
                                "golden retriever"),
    "classification/label": ("label", "Classify this image. Reply with the label only.", "golden retriever"),
    "classification/which_class": ("label", f"Which class does this image belong to?\n{SHORT_SUFFIX}",
                                   "golden retriever"),
    "ocr/plain": ("qa", f"What colour is the car?\n{SHORT_SUFFIX}", "blue"),
    "ocr/labelled": ("qa", f"Question: What colour is the car?\n{SHORT_SUFFIX}", "blue"),
    "ocr/read_text": ("read", "Read out the text that appears in this image.", "STOP 25 MPH"),
    "ocr/read_transcribe": ("read", "Transcribe all the words you can see in the picture.", "STOP 25 MPH"),
}

LIB = TemplateLibrary()


def _bundled_ids() -> list[str]:
    return sorted(f"{p.parent.name}/{p.stem}" for task in TASKS for p in (BUNDLED_DIR / task).glob("*.jinja2"))


def test_every_bundled_adapt_template_has_a_golden() -> None:
    assert _bundled_ids() == sorted(GOLDEN)
    assert {tid.split("/")[0] for tid in GOLDEN} == set(TASKS)


@pytest.mark.parametrize("template_id", sorted(GOLDEN))
def test_golden_render(template_id: str) -> None:
    key, user, assistant = GOLDEN[template_id]
    t = LIB.get(template_id)
    assert t.render("user", **VARS[key]) == user
    assert t.render("assistant", **VARS[key]) == assistant
    assert t.render_blocks(("user", "assistant"), VARS[key]) == [user, assistant]


@pytest.mark.parametrize("template_id", sorted(GOLDEN))
def test_version_line_first(template_id: str) -> None:
    t = LIB.get(template_id)
    assert Path(t.path).read_text(encoding="utf-8").splitlines()[0] == "{# version: 1 #}"
    assert t.version == 1
    assert set(t.blocks) == {"user", "assistant"}


def test_mc_without_context_starts_with_the_question() -> None:
    v = dict(VARS["mc"], context=None)
    assert LIB.get("mc/plain").render("user", **v) == f"Which is a mammal?\nA. shark\nB. whale\nC. trout\n{MC_SUFFIX}"
    assert LIB.get("mc/labelled").render("user", **v).startswith("Question: Which is a mammal?\nOptions:\nA. shark\n")


@pytest.mark.parametrize("task", ["vqa_short", "ocr"])
def test_short_answer_styles_keep_the_suffix(task: str) -> None:
    for style in LIB.styles(task):
        if style.startswith("read_"):
            continue
        user = LIB.get(f"{task}/{style}").render("user", **VARS["qa"])
        assert user.endswith(f"What colour is the car?\n{SHORT_SUFFIX}")


def test_example_variables_of_every_task_render_every_style() -> None:
    # The stage test-renders each template with TaskSpec.forms at start-up; they must fit the bundled set.
    for name, spec in TASKS.items():
        for style in LIB.styles(name):
            example = spec.forms[spec.form_of_style(style)]
            user, assistant = LIB.get(f"{name}/{style}").render_blocks(("user", "assistant"), example)
            assert user and assistant


def test_fast_render_matches_jinja_with_braces_and_non_text_values(tmp_path: Path) -> None:
    """The format_map fast path writes what Jinja writes: literal braces, values holding braces or
    format fields, numbers, None and lists."""
    (tmp_path / "vqa_short").mkdir()
    (tmp_path / "vqa_short" / "braces.jinja2").write_text(
        "{# version: 1 #}\n{% block user %}JSON {\"q\": \"{{ question }}\"} {0} }{% endblock %}\n"
        "{% block assistant %}{{ answer }} / {{ n }} / {{ nothing }} / {{ xs }}{% endblock %}\n",
        encoding="utf-8")
    t = TemplateLibrary([tmp_path]).get("vqa_short/braces")
    for v in [dict(question="a {b} {0} {{c}}", answer="x", n=3, nothing=None, xs=[1, "a"]),
              dict(question="plain", answer="{answer}", n=0, nothing=None, xs=())]:
        assert t.render_blocks(("user", "assistant"), v) == [t.render("user", **v), t.render("assistant", **v)]
    assert t._fast == {"user": 'JSON {{"q": "{question}"}} {{0}} }}', "assistant": "{answer} / {n} / {nothing} / {xs}"}
