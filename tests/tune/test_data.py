"""Reading the build's outputs: LLaVA JSON with rejects, HF datasets, the held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pipeline.tune.data import TuneDataError, load_examples, split_heldout


def _write(root: Path, rows: list) -> Path:
    p = root / "set.json"
    p.write_text(json.dumps(rows), encoding="utf-8")
    return p


def test_llava_json_examples_and_every_bad_row_rejected_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 6), (1, 2, 3)).save(tmp_path / "img" / "a.png")
    (tmp_path / "img" / "broken.png").write_bytes(b"not a png")
    ok = [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A"}]
    rows = [
        {"id": "good", "image": "a.png", "conversations": ok},
        {"id": "text", "conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                                         {"from": "gpt", "value": "Hello"}]},
        {"id": "noconv", "image": "a.png"},
        {"id": "gptfirst", "conversations": [{"from": "gpt", "value": "A"}, {"from": "human", "value": "Q"}]},
        {"id": "twice", "conversations": [{"from": "human", "value": "Q"}, {"from": "human", "value": "Q2"},
                                          {"from": "gpt", "value": "A"}]},
        {"id": "tokens", "conversations": ok},
        {"id": "missing", "image": "nope.png", "conversations": ok},
        {"id": "escape", "image": "../x.png", "conversations": ok},
        {"id": "broken", "image": "broken.png", "conversations": ok},
        {"id": "role", "conversations": [{"from": "bot", "value": "x"}]},
    ]
    examples, rejects = load_examples(str(_write(tmp_path, rows)), str(tmp_path / "img"))
    assert [(e.id, e.messages, e.images) for e in examples] == [
        ("good", [{"role": "user", "content": "<image>\nQ?"}, {"role": "assistant", "content": "A"}],
         [str((tmp_path / "img" / "a.png").resolve())]),
        ("text", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello"}], []),
    ]
    assert [(r.record, r.reason) for r in rejects] == [
        ("noconv", "missing_key"), ("gptfirst", "first_turn_not_user"), ("twice", "roles_not_alternating"),
        ("tokens", "image_token_mismatch"), ("missing", "image_missing"), ("escape", "image_path_escapes_root"),
        ("broken", "image_unreadable"), ("role", "bad_value")]
    assert all(r.stage == "tune" and r.file == str(tmp_path / "set.json") for r in rejects)


def test_unusable_files_raise_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TuneDataError, match="file not found"):
        load_examples(str(tmp_path / "none.json"), str(tmp_path))
    (tmp_path / "d.json").write_text('{"images": []}')
    with pytest.raises(TuneDataError, match="expected a JSON list of LLaVA records, got dict"):
        load_examples(str(tmp_path / "d.json"), str(tmp_path))
    with pytest.raises(TuneDataError, match="unknown format"):
        load_examples(str(tmp_path / "x.csv"), str(tmp_path))


def test_hf_dataset_save_to_disk_and_parquet(tmp_path: Path) -> None:
    import datasets

    img = Image.new("RGB", (5, 4), (200, 10, 10))
    features = datasets.Features({
        "id": datasets.Value("string"),
        "images": datasets.Sequence(datasets.Image()),
        "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
    })
    ds = datasets.Dataset.from_dict({
        "id": ["a", "b", "c"],
        "images": [[img], [], []],
        "messages": [[{"role": "user", "content": "<image>\nColour?"}, {"role": "assistant", "content": "red"}],
                     [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                     [{"role": "user", "content": "<image>\nNo image here"}, {"role": "assistant", "content": "x"}]],
    }, features=features)
    ds.save_to_disk(str(tmp_path / "hf"))
    ds.to_parquet(str(tmp_path / "set.parquet"))
    for path in (tmp_path / "hf", tmp_path / "set.parquet"):
        examples, rejects = load_examples(str(path), str(tmp_path))
        assert [e.id for e in examples] == ["a", "b"]
        assert examples[0].messages[0] == {"role": "user", "content": "<image>\nColour?"}
        assert examples[0].images[0].size == (5, 4) and examples[1].images == []
        assert [(r.record, r.reason) for r in rejects] == [("c", "image_token_mismatch")]


def test_heldout_split_depends_on_seed_and_ids_only(tmp_path: Path) -> None:
    from pipeline.tune.data import TuneExample

    exs = [TuneExample(id=f"s{i}", messages=[]) for i in range(20)]
    train, held = split_heldout(exs, 0.1, seed=0)
    assert len(held) == 2 and len(train) == 18 and not {e.id for e in held} & {e.id for e in train}
    _, held_rev = split_heldout(list(reversed(exs)), 0.1, seed=0)
    assert [e.id for e in held_rev] == [e.id for e in held]
    _, held_other = split_heldout(exs, 0.1, seed=1)
    assert [e.id for e in held_other] != [e.id for e in held]
    assert split_heldout(exs[:1], 0.5, 0) == (exs[:1], [])  # never holds out the only sample
