"""run_tune end to end on tiny models: files, report, rejects, E/F/O; and under Ray Train with 2 workers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.tune.config import TuneSection
from pipeline.tune.model import RANDOM_MARKER
from pipeline.tune.run import run_tune


def _data_with_a_bad_row(tiny: dict[str, Path], tmp_path: Path) -> Path:
    rows = json.loads(tiny["data"].read_text())
    rows.append({"id": "bad", "image": "missing.png", "conversations": rows[0]["conversations"]})
    path = tmp_path / "set.json"
    path.write_text(json.dumps(rows))
    return path


def test_run_tune_iaa_end_to_end(tiny: dict[str, Path], tmp_path: Path) -> None:
    vision = tmp_path / "tower"
    shutil.copytree(tiny["siglip"], vision)
    (vision / RANDOM_MARKER).write_text("random\n")
    section = TuneSection.model_validate({
        "model": {"llm": str(tiny["llama"]), "vision": str(vision)},
        "stages": [{"method": "projector", "lr": 1e-2, "steps": 2}, {"method": "iaa", "lr": 1e-3, "steps": 2}],
        "batch_size": 2, "eval": {"heldout": 0.25, "max_new_tokens": 3}})
    out = tmp_path / "out"
    report = run_tune(section, str(_data_with_a_bad_row(tiny, tmp_path)), str(tiny["images"]), str(out))

    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "model", "rejects.jsonl", "report.json",
                                                     "report.md"]
    assert json.loads((out / "report.json").read_text()) == report
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(r["record"], r["reason"]) for r in rejects] == [("bad", "image_missing")]
    d = report["data"]
    assert (d["examples"], d["multimodal"], d["text_only"], d["rejected"]) == (14, 8, 6, 1)
    assert (d["train"], d["heldout_downstream"], d["heldout_text_only"], d["train_skipped_text_only"]) == (6, 2, 2, 4)
    assert [(s["method"], s["steps"], s["samples"]) for s in report["stages"]] == [("projector", 2, 6), ("iaa", 2, 6)]
    assert report["model"]["vision_random"] is True
    assert "randomly initialised" in report["model"]["vision_note"]
    # IAA: the text-only workflow is the base LLM, so forgetting is exactly zero
    assert report["after"]["text_only"]["nll"] == report["before"]["text_only"]["nll"]
    assert report["scores"]["F_nll"] == 0.0 and report["scores"]["F"] == 0.0
    assert report["after"]["downstream"]["nll"] != report["before"]["downstream"]["nll"]
    assert report["before"]["downstream"]["em_scored"] == 2 and report["before"]["text_only"]["em_scored"] == 2
    md = (out / "report.md").read_text()
    assert "**Note: the vision tower is a randomly initialised SigLIP-architecture model" in md
    assert "| 1 | iaa | 0.001 | 2 | 6 | " in md
    assert "F_nll = 0.00000" in md

    # a rerun finds the finished checkpoint and trains nothing again
    again = run_tune(section, str(_data_with_a_bad_row(tiny, tmp_path)), str(tiny["images"]), str(out))
    assert again["stages"] == report["stages"] and again["after"] == report["after"]


def test_run_tune_under_ray_train_with_two_cpu_workers(tiny: dict[str, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    section = TuneSection.model_validate({
        "model": {"llm": str(tiny["llama"]), "vision": str(tiny["siglip"])},
        "stages": [{"method": "lora", "lr": 1e-2, "steps": 2, "rank": 2}],
        "batch_size": 2, "workers": 2, "eval": {"heldout": 0.25, "max_samples": 2, "max_new_tokens": 2}})
    out = tmp_path / "out"
    report = run_tune(section, str(tiny["data"]), str(tiny["images"]), str(out))
    st = report["stages"][0]
    assert (st["method"], st["steps"], report["training"]["workers"]) == ("lora", 2, 2)
    assert st["tokens"] > 0 and st["loss_last"] is not None
    assert (out / "model" / "lora" / "adapter_model.safetensors").is_file()
    # the driver evaluated the weights the workers saved: LoRA moved the text-only likelihood
    assert report["after"]["text_only"]["nll"] != report["before"]["text_only"]["nll"]
