"""The OpenAI-compatible vision backend against the loopback fake endpoint of pipeline/llm/testing.py."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.describe.config import DescribeSection
from pipeline.describe.stage import DescribeStage
from pipeline.llm.testing import FakeEndpoint
from schemas.record import AnnotationRecord
from sources.image_glob import ImageGlobOptions, ImageGlobSource

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "images"


def test_openai_backend_sends_data_urls_and_parses_qwen25_json() -> None:
    seen: list[tuple[str, int]] = []

    def responder(body: dict[str, Any]) -> str:
        parts = body["messages"][0]["content"]
        url = parts[0]["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        seen.append((parts[1]["text"], im.size[0]))
        if parts[1]["text"].startswith("Describe"):
            return f"A photo {im.size[0]} by {im.size[1]} pixels."
        return '```json\n[{"bbox_2d": [10, 20, 110, 120], "label": "thing"}]\n```'

    records = list(ImageGlobSource(ImageGlobOptions(kind="images", path="*.jpg", limit=3), DEMO).read())
    with FakeEndpoint(responder) as ep:
        cfg = DescribeSection(backend="openai", model="fake-model", family="qwen25vl", base_url=ep.base_url,
                              batch_size=2, max_new_tokens=100)
        stage = DescribeStage(cfg=cfg, image_root=str(DEMO))
        out = stage.process_batch(list(records))
        stage.backend.close()
    assert len(seen) == 6  # 3 images x (caption, detect)
    assert all(isinstance(x, AnnotationRecord) for x in out)
    first = out[0]
    assert isinstance(first, AnnotationRecord) and first.image is not None
    w, h = first.image.width, first.image.height
    assert [c.text for c in first.captions] == [f"A photo {w} by {h} pixels."]
    assert [(o.category, o.box.x1, o.box.y1, o.box.x2, o.box.y2) for o in first.objects] == [
        ("thing", 10.0, 20.0, 110.0, 120.0)]
    assert first.describe is not None and first.describe["backend"] == "openai"
    assert first.describe["sampling"]["max_new_tokens"] == 100
