"""Recipe validation: every problem reported at once, each naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schemas.recipe import RecipeError, load_recipe, parse_recipe


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "recipe.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_valid_recipe_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "ann.csv").write_text("file,text\n")
    r = load_recipe(write(tmp_path, {
        "name": "t", "images": "imgs",
        "sources": [{"kind": "generic", "path": "ann.csv", "columns": {"image": "file", "caption": "text"}}],
        "outputs": {"dir": "out", "formats": [{"kind": "llava", "box_format": "norm1000"}]},
    }))
    assert r.images == str(tmp_path / "imgs")
    assert r.sources[0].path == str(tmp_path / "ann.csv")
    assert r.sources[0].source_name == "generic"
    assert r.outputs.formats[0].box_format == "norm1000"
    assert r.validate_.max_chars_per_turn == 4000


def test_every_error_at_once(tmp_path: Path) -> None:
    data = {
        "name": "t", "images": "no_such_folder", "seeed": 1,
        "sources": [
            {"kind": "cocoo_captions", "path": "x.json"},
            {"kind": "generic", "path": "missing.csv", "columns": {"image": "f", "captoin": "t"}},
            {"kind": "scienceqa", "path": "problems.json", "limit": 0},
            {"kind": "scienceqa"},
        ],
        "adapt": {"tasks": ["vqa_short", "vqa_long"]},
        "outputs": {"formats": [{"kind": "llava", "box_format": "xyxy"}, {"kind": "parquett"}]},
    }
    with pytest.raises(RecipeError) as ei:
        parse_recipe(data, base_dir=tmp_path, path="r.yaml")
    errs = ei.value.errors
    text = "\n".join(errs)
    expected = [
        "sources[0].kind: unknown source kind 'cocoo_captions'. Choose one:",
        "sources[1].columns.captoin: unknown key",
        "sources[2].limit:",
        "sources[3].path: required key is missing",
        "seeed: unknown key",
        "outputs.formats[0].box_format:",
        "outputs.formats[1].kind: unknown output format 'parquett'. Choose one:",
        "images: image root not found",
        "adapt.tasks: unknown task 'vqa_long'",
    ]
    for e in expected:
        assert e in text, f"missing {e!r} in:\n{text}"
    assert "Choose one: llava, norm1000, absolute, norm1" in text
    assert str(ei.value).startswith(f"recipe r.yaml has {len(errs)} problem(s):")


def test_missing_input_file_is_reported_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    with pytest.raises(RecipeError) as ei:
        parse_recipe({"images": "imgs", "sources": [{"kind": "scienceqa", "path": "nope.json"}]}, base_dir=tmp_path)
    [err] = ei.value.errors
    assert err.startswith(f"sources[0].path: file not found: {tmp_path / 'nope.json'}. Fix the path")


def test_duplicate_source_names(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text("{}")
    src = {"kind": "scienceqa", "path": "p.json"}
    with pytest.raises(RecipeError, match=r"sources\[1\].name: source name 'scienceqa' is also used by sources\[0\]"):
        parse_recipe({"sources": [src, src]}, base_dir=tmp_path)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("sources: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="must be a YAML mapping"):
        load_recipe(p)
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "none.yaml")
