"""The COCO-80 vocabulary (synonyms, plurals, negation) and the quality filters with their reason codes."""

from __future__ import annotations

import pytest

from pipeline.generate.filters import (Chair, RecordFacts, chair, count_check, degenerate_check, record_facts,
                                       run_filters)
from pipeline.generate.language import language_problem
from pipeline.generate.vocabulary import COCO80, canonical_category, find_mentions, mentioned_categories
from pipeline.llm.config import FilterOptions
from schemas.box import Box
from schemas.record import AnnotationRecord, Caption, ObjectAnn
from schemas.reject import REASONS

OPTS = FilterOptions()


def record(objects: list[tuple[str, bool]], captions: list[str] = ()) -> RecordFacts:
    """The facts of a record with these (category, iscrowd) objects and captions."""
    box = Box(x1=1, y1=1, x2=5, y2=5, width=10, height=10)
    return record_facts(AnnotationRecord(
        id="r", source="s", source_kind="coco_instances", captions=[Caption(text=c) for c in captions],
        objects=[ObjectAnn(category=c, box=box, iscrowd=crowd) for c, crowd in objects]))


def test_vocabulary_has_the_80_coco_categories() -> None:
    assert len(COCO80) == 80
    assert {"person", "traffic light", "hair drier", "teddy bear", "dining table", "tv"} <= set(COCO80)


@pytest.mark.parametrize("name,category", [
    ("people", "person"), ("men", "person"), ("women", "person"), ("children", "person"), ("skiers", "person"),
    ("dogs", "dog"), ("puppies", "dog"), ("knives", "knife"), ("mice", "mouse"), ("buses", "bus"),
    ("wine glasses", "wine glass"), ("sofa", "couch"), ("television", "tv"), ("cellphones", "cell phone"),
    ("hot dogs", "hot dog"), ("doughnuts", "donut"), ("sheep", "sheep"), ("skis", "skis"), ("ski", "skis"),
    ("fridge", "refrigerator"), ("motorbikes", "motorcycle"), ("calves", "cow"), ("geese", "bird"),
    ("bus stop", None), ("coffee maker", None),
])
def test_synonyms_and_plurals(name: str, category: str | None) -> None:
    assert canonical_category(name) == category


def test_mentions_longest_first_negation_and_colour_words() -> None:
    text = "A man eats a hot dog near the bus stop while his teddy bear sits on an orange chair."
    assert [(m.category, m.negated) for m in find_mentions(text)] == [
        ("person", False), ("hot dog", False), ("teddy bear", False), ("chair", False)]
    text = "There is no cat here, and the kids aren't holding any umbrellas, but two oranges lie on a table."
    assert [(m.category, m.negated) for m in find_mentions(text)] == [
        ("cat", True), ("person", False), ("umbrella", True), ("orange", False), ("dining table", False)]
    assert mentioned_categories("No dogs, without a cat; there is a horse.") == {"horse"}


def test_chair_counts_absent_categories_against_objects_and_captions() -> None:
    facts = record([("person", False), ("dog", False)], ["A woman with her dog near a parked car."])
    assert facts.present == {"person", "dog", "car"}
    pairs = [("What is there?", "A woman walks a dog past a car."),      # 3 mentions, none absent
             ("Anything else?", "A cat and two giraffes watch a dog."),  # cat, giraffe absent
             ("Is there a bird?", "No, there is no bird.")]              # negated: no mention
    counts, bad = chair(pairs, facts)
    assert (counts.answers, counts.answers_hallucinated, counts.mentions, counts.mentions_hallucinated) == (3, 1, 6, 2)
    assert counts.categories == {"cat": 1, "giraffe": 1}
    assert bad == [(1, ["cat", "giraffe"])]


def test_hallucinated_object_is_rejected_with_its_reason() -> None:
    facts = record([("person", False), ("dog", False)])
    res = run_filters("conversation", [("What is here?", "A man walks his dog."),
                                       ("What else?", "A frisbee flies over the dog.")], facts, OPTS, "en")
    assert res.verdict is not None and res.verdict.reason == "hallucinated_object"
    assert res.verdict.message == "pair 2: the answer names frisbee, absent from the record (it has: dog, person)"
    assert res.passed == ["degenerate", "language"]
    ok = run_filters("conversation", [("What is here?", "A man walks his dog.")], facts, OPTS, "en")
    assert ok.verdict is None and ok.passed == ["degenerate", "language", "hallucination", "counting"]


@pytest.mark.parametrize("answer,verdict", [
    ("There are two dogs in the picture.", None),
    ("I can see 2 dogs.", None),
    ("Three dogs are playing.", "asked how many dog, the answer says 3 but the record has 2"),
    ("There is one dog and one person.", "asked how many dog, the answer says 1 but the record has 2"),
    ("There are no dogs.", "asked how many dog, the answer says 0 but the record has 2"),
    ("Several.", None),  # no number: cannot be judged
])
def test_wrong_count(answer: str, verdict: str | None) -> None:
    facts = record([("dog", False), ("dog", False), ("person", False)])
    v = count_check([("How many dogs are there?", answer)], facts)
    if verdict is None:
        assert v is None
    else:
        assert v is not None and v.reason == "wrong_count" and v.message.startswith(f"pair 1: {verdict}")


def test_counts_that_cannot_be_known_are_not_judged() -> None:
    crowd = record([("person", True), ("person", False)])
    assert count_check([("How many people are there?", "There are 3 people.")], crowd) is None
    captions_only = record([], ["Four cats on a sofa."])
    assert count_check([("How many cats are there?", "There are 2 cats.")], captions_only) is None
    caption_object = record([("couch", False)], ["Four cats on a sofa."])
    assert count_check([("How many cats are there?", "There are 2 cats.")], caption_object) is None
    absent = record([("couch", False)])
    v = count_check([("How many cats are there?", "There are 2 cats.")], absent)
    assert v is not None and "the record has 0" in v.message


@pytest.mark.parametrize("kind,pairs,reason", [
    ("conversation", [("", "A dog.")], "empty_question"),
    ("conversation", [("What is it?", "  ")], "empty_answer"),
    ("conversation", [("What is the dog doing?", "What is the dog doing?")], "answer_repeats_question"),
    ("conversation", [("What is the dog doing?", "what is the dog doing? Running")], "answer_repeats_question"),
    ("conversation", [("What is it?", "It is a dog."), ("What is it?", "A dog, really.")], "repeated_question"),
    ("conversation", [("Is it a dog?", "Yes.")], "answer_too_short"),
    ("conversation", [("Describe it.", " ".join(["word"] * 301))], "answer_too_long"),
    ("complex", [("Why?", "the dog runs and " * 8)], "repetitive_answer"),
    ("detail", [(None, "A dog on grass.")], "answer_too_short"),
])
def test_degenerate_outputs(kind: str, pairs: list, reason: str) -> None:
    v = degenerate_check(kind, pairs, OPTS)
    assert v is not None and v.reason == reason
    assert reason in REASONS


def test_an_answer_copied_from_the_few_shot_example_is_rejected() -> None:
    example = ('{"question": "What should the skier keep in mind?", "answer": "The slope below the skier is steep, '
               'so speed will build up quickly. Before starting, the skier should check that the run is clear."}')
    copied = ("The slope below the skier is steep, so speed will build up quickly. Before starting, the skier "
              "should check that the speed is under control.")
    v = degenerate_check("complex", [("What should the rider keep in mind?", copied)], OPTS, [example])
    assert v is not None and v.reason == "copies_example" and v.message.startswith("complex: 80% of the answer's")
    own = "The rider should hold the reins firmly and watch the waves, since wet sand can make the horse slip."
    assert degenerate_check("complex", [("What should the rider keep in mind?", own)], OPTS, [example]) is None
    assert "copies_example" in REASONS


def test_short_counting_answers_are_fine() -> None:
    assert degenerate_check("conversation", [("How many dogs are there?", "Two.")], OPTS) is None


@pytest.mark.parametrize("text,lang,problem", [
    ("The dog is running across the green field with a ball.", "en", None),
    ("Le chien court dans le parc avec une balle et il est content.", "en", "it reads as French"),
    ("Der Hund läuft mit dem Ball über die Wiese und ist sehr froh.", "en", "it reads as German"),
    ("Собака бежит по полю.", "en", "only 0% of its letters are in the English script"),
    ("Yes.", "en", None),
    ("Le chien court dans le parc avec une balle et il est content.", "fr", None),
    ("一只狗在草地上跑。", "zh", None),
    ("A dog runs on the grass in the park today.", "zh", "only 0% of its letters are in the Chinese script"),
])
def test_language(text: str, lang: str, problem: str | None) -> None:
    got = language_problem(text, lang)
    assert (got is None) if problem is None else (got is not None and got.startswith(problem))


def test_language_filter_reason() -> None:
    facts = record([("dog", False)])
    res = run_filters("complex", [("Pourquoi le chien court-il dans le parc ?",
                                   "Le chien court parce que il est content et il aime le parc.")], facts, OPTS, "en")
    assert res.verdict is not None and res.verdict.reason == "wrong_language"
    assert res.verdict.message.startswith(
        "complex: the question is not in the requested language 'en': it reads as French")


def test_a_detail_request_from_the_template_is_not_language_checked() -> None:
    facts = record([("dog", False)])
    answer = "Ein Hund läuft mit dem Ball über die Wiese und ist sehr froh, der Himmel ist blau und klar."
    res = run_filters("detail", [("Describe the image in detail.", answer)], facts, OPTS, "de")
    # "Ball" is not read as the English "ball": the vocabulary filters run on English output only.
    assert res.verdict is None and res.passed == ["degenerate", "language"] and res.chair.answers == 0
    res = run_filters("detail", [("Describe the image in detail.", answer)], facts, OPTS, "en")
    assert res.verdict is not None and res.verdict.message.startswith(
        "detail: the answer is not in the requested language 'en': it reads as German")


def test_filters_can_be_switched_off() -> None:
    facts = record([("dog", False)])
    off = FilterOptions(hallucination=False, counting=False, degenerate=False, language=False)
    res = run_filters("conversation", [("How many cats?", "Yes.")], facts, off, "en")
    assert res.verdict is None and res.passed == []
    assert res.chair.mentions == 0 and isinstance(res.chair, Chair)


def test_few_shot_examples_pass_the_filters_on_their_own_context() -> None:
    """The bundled few-shot replies must be examples of what the filters accept."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from fake_llm import read_context

    from pipeline.generate.parse import parse_reply
    from templates.library import TemplateLibrary

    lib = TemplateLibrary()
    for kind in ("conversation", "detail", "complex"):
        t = lib.get(f"self_instruct/{kind}")
        captions, objects = read_context(t.render("example_1_user"))
        rec = AnnotationRecord(id="x", source="s", source_kind="k", captions=[Caption(text=c) for c in captions],
                               objects=[ObjectAnn(category=c, box=Box(x1=0, y1=0, x2=1, y2=1, width=2, height=2))
                                        for c, _ in objects])
        reply = parse_reply(kind, t.render("example_1_assistant"))
        pairs = reply.pairs if kind != "detail" else [("Describe the image in detail.", reply.pairs[0][1])]
        res = run_filters(kind, pairs, record_facts(rec), OPTS, "en")
        assert res.verdict is None, (kind, res.verdict)
        assert json.loads(t.render("example_1_assistant"))  # valid JSON as written
