"""A source's `tasks` option limits the adapt tasks its records feed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.adapt import AdaptStage
from schemas.box import Box
from schemas.image import ImageRef
from schemas.record import AnnotationRecord, Caption, ObjectAnn
from schemas.recipe import RecipeError, parse_recipe
from schemas.sample import Sample


def record(source: str) -> AnnotationRecord:
    box = Box(x1=1, y1=1, x2=5, y2=5, width=10, height=10)
    return AnnotationRecord(id="1", source=source, source_kind="coco_instances", image=ImageRef(path="a.jpg"),
                            captions=[Caption(text="A cat.", ann_id="c1")],
                            objects=[ObjectAnn(category="cat", box=box, ann_id="o1")])


def test_source_tasks_restrict_what_a_record_feeds() -> None:
    stage = AdaptStage(seed=0, tasks=["caption_short", "counting", "grounded_caption"],
                       source_tasks={"inst": ["counting", "grounded_caption"]})
    out = stage.process_batch([record("inst"), record("other")])
    tasks = [(s.source, s.task) for s in out if isinstance(s, Sample)]
    assert tasks == [("inst", "counting"), ("inst", "grounded_caption"),
                     ("other", "caption_short"), ("other", "counting"), ("other", "grounded_caption")]
    assert ("inst", "caption_short") not in tasks


def test_unknown_source_task_is_a_recipe_error(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(RecipeError, match=r"sources\[0\].tasks: unknown task 'captions'"):
        parse_recipe({"sources": [{"kind": "scienceqa", "path": "p.json", "tasks": ["captions"]}]},
                     base_dir=tmp_path)
