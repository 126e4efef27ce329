"""The validate stage: one sample per rule, each rejected with its reason code; good samples pass."""

from __future__ import annotations

import pytest

from pipeline.validate import ValidateStage
from schemas.box import Box
from schemas.image import ImageRef
from schemas.reject import REASONS, Reject
from schemas.sample import Lineage, Sample, Turn


def sample(turns: list[tuple[str, str]], images: int = 1, boxes: list[Box] | None = None) -> Sample:
    return Sample(id="src/1/vqa_short/0", images=[ImageRef(path=f"{i}.jpg") for i in range(images)],
                  turns=[Turn(role=r, text=t) for r, t in turns], boxes=boxes or [], task="vqa_short",
                  source="src", lineage=Lineage(source="src", template_id="vqa_short/plain"))


GOOD = [("user", "<image>\nWhat colour is the cat?"), ("assistant", "orange")]
BOX = Box(x1=10, y1=10, x2=50, y2=40, width=100, height=80)


@pytest.mark.parametrize("s, reason", [
    (sample([("assistant", "hi"), ("user", "<image>\nq")]), "first_turn_not_user"),
    (sample([("user", "<image>\nq"), ("user", "q2"), ("assistant", "a")]), "roles_not_alternating"),
    (sample([("user", "<image>\nq")]), "roles_not_alternating"),
    (sample([("user", "<image>\nq"), ("assistant", "  ")]), "empty_turn"),
    (sample([("user", "What?"), ("assistant", "a")]), "image_token_mismatch"),
    (sample([("user", "<image>\n<image>\nq"), ("assistant", "a")]), "image_token_mismatch"),
    (sample([("user", "q"), ("assistant", "a")], images=0) .model_copy(
        update={"turns": [Turn(role="user", text="<image>\nq"), Turn(role="assistant", text="a")]}),
     "image_token_mismatch"),
    (sample([("user", "<image>\nWhere is <box:1>?"), ("assistant", "left")], boxes=[BOX]), "box_marker_mismatch"),
    (sample([("user", "<image>\nWhere is <box:0>?"), ("assistant", "left")],
            boxes=[Box(x1=60, y1=10, x2=130, y2=40, width=100, height=80)]), "box_outside_image"),
    (sample([("user", "<image>\n" + "x" * 50), ("assistant", "a")]), "turn_too_long"),
    (sample([("user", "<image>\nq"), ("assistant", "a")] + [("user", "q"), ("assistant", "a")] * 3),
     "too_many_turns"),
])
def test_each_rule_rejects_with_its_reason(s: Sample, reason: str) -> None:
    stage = ValidateStage(max_chars_per_turn=40, max_turns=6)
    [out] = stage.process_batch([s])
    assert isinstance(out, Reject)
    assert out.reason == reason and reason in REASONS
    assert out.stage == "validate" and out.sample_id == s.id and out.lineage == s.lineage
    assert s.id in out.message


def test_good_samples_pass_and_other_items_pass_through() -> None:
    ok = sample(GOOD)
    sys_first = sample([("system", "Be brief.")] + GOOD)
    boxed = sample([("user", "<image>\nWhat is in <box:0>?"), ("assistant", "a cup")], boxes=[BOX])
    text_only = sample([("user", "Name a prime."), ("assistant", "7")], images=0)
    prior = Reject(reason="image_missing", message="m", stage="source", source="src")
    stage = ValidateStage()
    out = stage.process_batch([ok, prior, sys_first, boxed, text_only])
    assert out == [ok, prior, sys_first, boxed, text_only]


def test_counts_add_up() -> None:
    batch = [sample(GOOD), sample([("user", "q"), ("assistant", "a")]), sample(GOOD)]
    out = ValidateStage().process_batch(batch)
    accepted = [o for o in out if isinstance(o, Sample)]
    rejected = [o for o in out if isinstance(o, Reject)]
    assert len(accepted) + len(rejected) == len(batch) and len(rejected) == 1
