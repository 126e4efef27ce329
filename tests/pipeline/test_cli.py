"""The CLI's tune/run plumbing: which build output tuning reads, and the errors when a recipe cannot tune."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.cli import _tune_data, main
from schemas.recipe import parse_recipe


def recipe(tmp_path: Path, formats: list[dict], tune: dict | None = None):
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "p.json").write_text("{}")
    data = {"name": "r", "images": "images", "sources": [{"kind": "scienceqa", "path": "p.json"}],
            "outputs": {"dir": str(tmp_path / "out"), "formats": formats}}
    if tune is not None:
        data["tune"] = tune
    return parse_recipe(data, base_dir=tmp_path)


def test_tune_reads_the_llava_output_else_hf(tmp_path: Path) -> None:
    r = recipe(tmp_path, [{"kind": "hf"}, {"kind": "llava", "name": "x"}])
    assert _tune_data(r) == str(tmp_path / "out" / "llava" / "x.json")
    r = recipe(tmp_path, [{"kind": "hf"}])
    assert _tune_data(r) == str(tmp_path / "out" / "hf" / "arrow" / "r")
    with pytest.raises(SystemExit, match="add {kind: llava} to outputs.formats"):
        _tune_data(recipe(tmp_path, [{"kind": "openai_chat"}]))


def test_tune_without_a_tune_section_says_how_to_add_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe(tmp_path, [{"kind": "llava"}])
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump({"images": "images", "sources": [{"kind": "scienceqa", "path": "p.json"}]}))
    assert main(["tune", str(p)]) == 2
    err = capsys.readouterr().err
    assert "has no `tune` section" in err and "method: projector" in err


def test_tune_section_errors_are_recipe_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe(tmp_path, [{"kind": "llava"}])
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump({"images": "images", "sources": [{"kind": "scienceqa", "path": "p.json"}],
                                 "tune": {"stages": [{"method": "qlora", "lr": 1e-4, "steps": 1}]}}))
    assert main(["tune", str(p)]) == 2
    assert "tune.stages" in capsys.readouterr().err
