"""The validate stage: every sample is checked; a failing one becomes a Reject with a reason code.

Checks: the sample matches the Sample schema; an optional system turn first, then the user; user and
assistant alternate and the last turn is the assistant's; no empty turn; the number of `<image>`
placeholders equals the number of images; every `<box:N>` marker names an existing box and every box
lies inside its image; turn, conversation and image caps from the recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from pipeline.stage import Item, Stage
from schemas.reject import Reject
from schemas.sample import IMAGE_TOKEN, Sample

_BOX_RE = re.compile(r"<box:(\d+)>")


def check_sample(s: Sample, max_chars_per_turn: int, max_turns: int, max_images: int) -> tuple[str, str] | None:
    """Return (reason code, message) for the first rule `s` breaks, or None when it passes."""
    turns = s.turns
    if not turns:
        return "empty_turn", "the sample has no turns"
    start = 1 if turns[0].role == "system" else 0
    if start >= len(turns) or turns[start].role != "user":
        return "first_turn_not_user", f"turn {start} is {turns[min(start, len(turns) - 1)].role!r}, expected 'user'"
    expected = "user"
    for i in range(start, len(turns)):
        t = turns[i]
        if t.role != expected:
            return "roles_not_alternating", f"turn {i} is {t.role!r}, expected {expected!r}"
        expected = "assistant" if expected == "user" else "user"
    if turns[-1].role != "assistant":
        return "roles_not_alternating", "the last turn is not the assistant's"
    n_tokens = 0
    n_chars_total = 0
    for i, t in enumerate(turns):
        if not t.text.strip():
            return "empty_turn", f"turn {i} ({t.role}) is empty"
        if len(t.text) > max_chars_per_turn:
            return "turn_too_long", (f"turn {i} has {len(t.text)} characters, over validate.max_chars_per_turn="
                                     f"{max_chars_per_turn}")
        n_chars_total += len(t.text)
        n_tokens += t.text.count(IMAGE_TOKEN)
    if len(turns) - start > max_turns:
        return "too_many_turns", f"{len(turns) - start} turns, over validate.max_turns={max_turns}"
    if n_tokens != len(s.images):
        return "image_token_mismatch", f"{n_tokens} <image> placeholder(s) for {len(s.images)} image(s)"
    if len(s.images) > max_images:
        return "image_token_mismatch", f"{len(s.images)} images, over validate.max_images={max_images}"
    for t in turns:
        if "<box:" in t.text:
            for m in _BOX_RE.finditer(t.text):
                if int(m.group(1)) >= len(s.boxes):
                    return "box_marker_mismatch", f"<box:{m.group(1)}> but the sample has {len(s.boxes)} box(es)"
    for k, b in enumerate(s.boxes):
        if not b.inside_image():
            return "box_outside_image", (f"box {k} [{b.x1:g}, {b.y1:g}, {b.x2:g}, {b.y2:g}] lies outside its "
                                         f"{b.width}x{b.height} image")
    return None


@dataclass
class ValidateStage(Stage):
    """Check every Sample; pass AnnotationRecords and Rejects through."""

    name = "validate"
    max_chars_per_turn: int = 4000
    max_turns: int = 64
    max_images: int = 8

    def process_batch(self, items: list[Item]) -> list[Item]:
        out: list[Item] = []
        for it in items:
            if not isinstance(it, Sample):
                out.append(it)
                continue
            try:
                problem = check_sample(it, self.max_chars_per_turn, self.max_turns, self.max_images)
            except (ValidationError, ValueError, IndexError) as e:
                problem = ("schema", f"the sample does not match the Sample schema: {e}")
            if problem is None:
                out.append(it)
            else:
                reason, message = problem
                out.append(Reject(reason=reason, message=f"sample {it.id}: {message}", stage=self.name,
                                  source=it.source, file=it.lineage.file, record=None, sample_id=it.id,
                                  task=it.task, template_id=it.lineage.template_id, lineage=it.lineage))
        return out
