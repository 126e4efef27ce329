"""The transformers backend on a tiny, randomly initialised LLaVA (CLIP tower + Llama) built from configs,
saved with `save_pretrained` and loaded back through `from_pretrained` like a real checkpoint.

Its weights are random, so its replies are random bytes: this test checks the STRUCTURE of what the describe
stage makes of them (one item per image, lineage, raw output kept), never their content.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.describe.config import DescribeSection
from pipeline.describe.stage import DescribeStage
from schemas.record import AnnotationRecord
from schemas.reject import Reject
from sources.image_glob import ImageGlobOptions, ImageGlobSource

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "images"


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.describe.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


def test_tiny_llava_describes_demo_images(tiny_llava: Path) -> None:
    records = list(ImageGlobSource(ImageGlobOptions(kind="images", path="*.jpg"), DEMO).read())
    assert len(records) == 12 and all(isinstance(r, AnnotationRecord) for r in records)
    cfg = DescribeSection(model=str(tiny_llava), batch_size=5, max_new_tokens=6)
    stage = DescribeStage(cfg=cfg, image_root=str(DEMO))
    stage.setup()
    assert stage.backend.family == "llava"  # read from the saved config's model_type
    out = stage.process_batch(list(records))
    assert len(out) == 12
    assert [x.id if isinstance(x, AnnotationRecord) else x.record for x in out] == [r.id for r in records]
    for x in out:
        if isinstance(x, AnnotationRecord):
            assert x.describe is not None and x.describe["model"] == str(tiny_llava)
            assert set(x.describe["raw_output"]) == {"caption", "detect"}
            assert x.describe["box_convention"] == "norm1"
            assert len(x.captions) == 1 and x.captions[0].detailed and x.captions[0].text
            assert all(o.box.inside_image(0) for o in x.objects)
        else:
            assert isinstance(x, Reject) and x.reason == "describe_unparseable" and x.stage == "describe"
            assert x.lineage is not None and x.lineage.model == str(tiny_llava)
            assert set(json.loads(x.lineage.raw_output or "{}")) == {"caption", "detect"}
