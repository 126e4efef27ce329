"""`vlforge build` end to end on Ray: determinism across worker counts, trainer loader rules on the demo's
outputs, bad inputs reported (never crashing, never dropped), and the CLI's errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from outputs.validators import validate_file
from pipeline.build import build
from pipeline.cli import main
from pipeline.ray_runner import RayOptions, RayRunner
from schemas.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo" / "recipe.yaml"
DETERMINISTIC = ["llava/demo.json", "llamafactory/demo.json", "llamafactory/dataset_info.json",
                 "hf/data/demo-00000-of-00001.parquet", "trl/data/demo-00000-of-00001.parquet",
                 "openai_chat/demo.jsonl", "rejects.jsonl", "README.md"]


def _stats_without_llm_calls(path: Path) -> dict:
    """stats.json less `generate.llm`: the calls this run made (the second build is served from the reply
    cache, so its call counts differ by design); every other figure must be identical."""
    stats = json.loads(path.read_text())
    stats.get("generate", {}).pop("llm", None)
    stats.get("generate", {}).pop("cache_hit_rate", None)
    return stats


@pytest.fixture(scope="module")
def runner():
    r = RayRunner(RayOptions(workers=2, shard_size=8, progress=False))
    r.start()
    yield r
    r.shutdown()


def test_demo_is_byte_identical_with_one_and_two_workers(runner: RayRunner, tmp_path: Path) -> None:
    recipe = load_recipe(DEMO)
    runner.options.workers = 1
    one = build(recipe, out_dir=tmp_path / "one", runner=runner)
    runner.options.workers = 2
    two = build(recipe, out_dir=tmp_path / "two", runner=runner)
    for name in DETERMINISTIC:
        a, b = (tmp_path / "one" / name).read_bytes(), (tmp_path / "two" / name).read_bytes()
        assert a == b, f"{name} differs between 1 and 2 workers"
    assert json.loads((tmp_path / "one" / "run.json").read_text())["workers"] == 1
    assert json.loads((tmp_path / "two" / "run.json").read_text())["workers"] == 2
    assert _stats_without_llm_calls(tmp_path / "one" / "stats.json") == \
        _stats_without_llm_calls(tmp_path / "two" / "stats.json")
    # the second build is served from the reply cache: no call is made twice. Every lookup of the first
    # build (a call made, or a hit) is a hit now; a unit whose reply needed a repair looks up twice, so
    # hits can exceed units (whether the tiny model needs a repair depends on the machine's float maths).
    first, second = one.stats["generate"]["llm"], two.stats["generate"]["llm"]
    assert second["requests"] == 0
    assert second["cache_hits"] == first["ok"] + first["cache_hits"] >= two.stats["generate"]["units"] > 0

    # the demo's outputs pass the LLaVA and LLaMA-Factory loader rules, images included
    s = one.stats
    assert s["samples"]["accepted"] > 40 and s["records"]["adds_up"]
    llava = tmp_path / "one" / "llava" / "demo.json"
    lf = tmp_path / "one" / "llamafactory" / "demo.json"
    assert validate_file(llava, "llava", image_root=recipe.images) == []
    assert validate_file(lf, "llamafactory", image_root=recipe.images) == []
    rows = json.loads(llava.read_text())
    assert len(rows) == s["samples"]["accepted"] == len(json.loads(lf.read_text()))
    assert {r["id"].split("/")[0] for r in rows} == {"coco_captions", "coco_instances", "vqav2", "refcoco",
                                                     "scienceqa", "demo_text"}
    text_only = [r for r in rows if "image" not in r]
    assert text_only and all("<image>" not in t["value"] for r in text_only for t in r["conversations"])
    for fmt in ("hf", "trl"):
        assert validate_file(tmp_path / "one" / fmt / "data", fmt) == []
    assert validate_file(tmp_path / "one" / "openai_chat" / "demo.jsonl", "openai_chat") == []

    # the text-only share hits the recipe's target; what the mix left out is in rejects.jsonl
    assert abs(s["mix"]["achieved_share"] - 0.15) <= 0.01 + 1 / s["samples"]["accepted"]
    assert s["samples"]["text_only"] == len(text_only)
    assert s["rejects"]["by_reason"].get("not_mixed", 0) == s["mix"]["text_only"]["not_mixed"]
    card = (tmp_path / "one" / "README.md").read_text()
    assert card.startswith("---\nlicense: cc0-1.0\n") and "## Composition" in card


def _bad_inputs(tmp_path: Path) -> Path:
    """A COCO captions + instances set with one problem of each kind a record can have."""
    img = tmp_path / "images"
    img.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.new("RGB", (100, 80), (200, 30, 30)).save(img / name)
    (tmp_path / "outside.jpg").write_bytes((img / "a.jpg").read_bytes())
    images = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
              {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80},
              {"id": 3, "file_name": "missing.jpg", "width": 100, "height": 80},
              {"id": 4, "file_name": "../outside.jpg", "width": 100, "height": 80}]
    captions = {"images": images, "annotations": [
        {"id": 1, "image_id": 1, "caption": "A red square."},
        {"id": 2, "image_id": 2, "caption": "   "},
        {"id": 3, "image_id": 2, "caption": "Another red square."},
        {"id": 4, "image_id": 3, "caption": "Never seen."},
        {"id": 5, "image_id": 4, "caption": "Outside the root."},
        {"id": 6, "image_id": 99, "caption": "On an image the file does not list."},
        {"id": 7, "image_id": 1},
    ]}
    instances = {"images": images[:2], "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
                 "annotations": [
                     {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "iscrowd": 0},
                     {"id": 11, "image_id": 1, "category_id": 1, "bbox": [10, 10, -5, 20], "iscrowd": 0},
                     {"id": 12, "image_id": 1, "category_id": 1, "bbox": [90, 10, 40, 20], "iscrowd": 0},
                     {"id": 13, "image_id": 2, "category_id": 7, "bbox": [10, 10, 20, 20], "iscrowd": 0},
                     {"id": 14, "image_id": 2, "category_id": 1, "bbox": [30, 30, 20, 20], "iscrowd": 0},
                 ]}
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    recipe = {"name": "bad", "images": "images",
              "sources": [{"kind": "coco_captions", "path": "captions.json"},
                          {"kind": "coco_instances", "path": "instances.json"}],
              "adapt": {"tasks": ["caption_short", "counting"]},
              "outputs": {"dir": str(tmp_path / "out"), "formats": [{"kind": "llava"}]}}
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(recipe))
    return p


def test_bad_records_become_rejects_with_reasons_and_counts_add_up(runner: RayRunner, tmp_path: Path) -> None:
    result = build(load_recipe(_bad_inputs(tmp_path)), runner=runner)
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    got = sorted((r["source"], r["reason"], r["record"]) for r in rejects)
    assert got == [
        ("coco_captions", "empty_caption", "2"),
        ("coco_captions", "image_missing", "3"),
        ("coco_captions", "image_path_escapes_root", "4"),
        ("coco_captions", "missing_key", "7"),
        ("coco_captions", "unknown_image", "6"),
        ("coco_instances", "box_invalid", "11"),
        ("coco_instances", "box_outside_image", "12"),
        # two of image 1's three people were rejected, so they cannot be counted: nothing left to ask
        ("coco_instances", "no_task", "1"),
        ("coco_instances", "unknown_category", "13"),
    ]
    by = {r["record"]: r for r in rejects}
    assert "missing.jpg" in by["3"]["message"] and "captions.json" in by["3"]["message"]
    assert "'caption'" in by["7"]["message"]
    assert all(r["lineage"]["source"] == r["source"] for r in rejects)
    rows = json.loads((tmp_path / "out" / "llava" / "bad.json").read_text())
    assert [r["id"] for r in rows] == ["coco_captions/1/caption_short/0", "coco_captions/2/caption_short/0",
                                       "coco_instances/2/counting/0"]
    assert rows[2]["conversations"][1]["value"] == "1"
    s = result.stats
    assert s["rejects"]["total"] == len(rejects)
    assert s["samples"]["accepted"] == len(rows) and s["records"]["adds_up"]
    assert sum(s["rejects"]["by_reason"].values()) == len(rejects)


def test_sources_read_in_the_workers_give_the_same_outputs_with_one_and_two_workers(
        runner: RayRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without model stages every source is read by a read task in a worker; outputs do not depend on
    how many workers there are, and match what the driver-side reading (the generate run's path) gives."""
    recipe = load_recipe(DEMO).model_copy(update={"generate": None})
    runner.options.workers = 1
    build(recipe, out_dir=tmp_path / "one", runner=runner)
    runner.options.workers = 2
    two = build(recipe, out_dir=tmp_path / "two", runner=runner)
    for name in DETERMINISTIC:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert two.stats["records"]["adds_up"] and two.stats["samples"]["accepted"] > 0
    # the same bytes as reading every source in the driver (the path of runs with model stages)
    from pipeline.ray_runner import _Progress

    def in_driver(self, readers, stages, on_progress=None, on_read=None):  # type: ignore[no-untyped-def]
        return self._run_readers_here(readers, stages, _Progress(on_progress), on_read)

    monkeypatch.setattr(RayRunner, "run_readers", in_driver)
    build(recipe, out_dir=tmp_path / "driver", runner=runner)
    for name in DETERMINISTIC:
        assert (tmp_path / "driver" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_cli_reports_recipe_and_source_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "images").mkdir()
    bad = tmp_path / "recipe.yaml"
    bad.write_text(yaml.safe_dump({"images": "images", "sources": [
        {"kind": "vqav2", "questions": "q.json", "annotations": "a.json"}, {"kind": "nope"}]}))
    assert main(["build", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "sources[0].questions: file not found" in err and "sources[0].annotations: file not found" in err
    assert "sources[1].kind: unknown source kind 'nope'" in err

    # the right keys but the wrong file: a questions file given as annotations
    q = REPO / "tests" / "assets" / "sources" / "vqa" / "v2_OpenEnded_mscoco_val2014_questions.json"
    shutil.copy(q, tmp_path / "q.json")
    shutil.copy(q, tmp_path / "a.json")
    bad.write_text(yaml.safe_dump({"images": "images", "sources": [
        {"kind": "vqav2", "questions": "q.json", "annotations": "a.json"}], "adapt": {},
        "outputs": {"dir": str(tmp_path / "out")}}))
    assert main(["build", str(bad), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "a.json" in err and "questions file" in err
