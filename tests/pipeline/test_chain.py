"""The self-instruct chain on Ray, end to end: unlabelled images -> describe (a tiny random LLaVA loaded
through from_pretrained) -> generate (an OpenAI-compatible endpoint on loopback) -> validate -> outputs.

The tiny model's weights are random, so its captions are random text: this test checks the flow and the
accounting (every image ends as samples or rejects with reasons, lineage from both models, loader rules),
never the content.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outputs.validators import validate_file
from pipeline.build import build
from pipeline.llm.testing import FakeEndpoint
from pipeline.ray_runner import RayOptions, RayRunner
from schemas.recipe import parse_recipe

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "images"
DESCRIPTION = "A photograph with a few shapes and several colours in it, seen from the front."


def responder(body: dict) -> str:
    return json.dumps({"description": DESCRIPTION})


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.describe.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


def test_images_describe_generate_validate_outputs(tiny_llava: Path, tmp_path: Path) -> None:
    with FakeEndpoint(responder, model="fake-vlm-writer") as ep:
        recipe = parse_recipe({
            "name": "chain", "seed": 0, "images": str(DEMO),
            "sources": [{"kind": "images", "path": "*.jpg", "limit": 4}],
            "describe": {"model": str(tiny_llava), "tasks": ["caption"], "batch_size": 4, "max_new_tokens": 8},
            "generate": {"endpoint": ep.base_url, "model": "fake-vlm-writer", "prompts": ["detail"],
                         "cache_dir": str(tmp_path / "cache"), "structured_output": "off"},
            "validate": {}, "outputs": {"dir": str(tmp_path / "out"), "formats": [{"kind": "llava"}],
                                        "card": False},
        }, base_dir=tmp_path)
        runner = RayRunner(RayOptions(workers=2, progress=False))
        try:
            result = build(recipe, runner=runner)
        finally:
            runner.shutdown()
        calls = ep.ok_total

    s = result.stats
    rows = json.loads((tmp_path / "out" / "llava" / "chain.json").read_text())
    rejects = [json.loads(x) for x in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    # 4 images in; each one became a self-instruct sample or a reject with a reason
    done = {r["id"].split("/")[1] for r in rows} | {r.get("record") for r in rejects}
    assert done == {"000000000001.jpg", "000000000002.jpg", "000000000003.jpg", "000000000004.jpg"}
    assert rows, "the endpoint's description should pass the filters for at least one image"
    for r in rows:
        assert r["id"].endswith("/self_instruct_detail/0") and r["image"].endswith(".jpg")
        assert r["conversations"][0]["value"].startswith("<image>\n")
        assert r["conversations"][1]["value"] == DESCRIPTION
    assert all(r["reason"] in ("describe_unparseable", "describe_failed") or r["stage"] == "generate"
               for r in rejects)
    assert validate_file(tmp_path / "out" / "llava" / "chain.json", "llava", image_root=str(DEMO)) == []
    assert s["generate"]["units"] == len(rows) + sum(1 for r in rejects if r["stage"] == "generate")
    # one successful call per generated unit, none twice
    assert calls == s["generate"]["units"] and max(ep.counts.ok_by_request.values()) == 1
    assert s["records"]["adds_up"]
