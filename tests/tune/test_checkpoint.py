"""Saving keeps only what was trained; loading it onto the base gives the same outputs; resume is exact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from pipeline.tune.checkpoint import load_tuned_into, save_tuned
from pipeline.tune.collate import ChatEncoder, Collator
from pipeline.tune.config import TuneSection
from pipeline.tune.data import load_examples
from pipeline.tune.train import train_stages

STAGES = {
    "lora": [{"method": "projector", "lr": 1e-2, "steps": 1},
             {"method": "lora", "lr": 1e-2, "steps": 2, "rank": 2, "dropout": 0.1, "dora": True}],
    "iaa": [{"method": "projector", "lr": 1e-2, "steps": 1}, {"method": "iaa", "lr": 1e-2, "steps": 2}],
    "last_layers": [{"method": "last_layers", "lr": 1e-2, "steps": 2, "k": 1}],
}


def _setup(build, tiny):
    built = build("llama")
    enc = ChatEncoder(built.tokenizer, built.model.num_image_tokens, 256)
    collate = Collator(enc.pad_id, built.image_spec)
    examples, _ = load_examples(str(tiny["data"]), str(tiny["images"]))
    items = [enc.encode(e) for e in examples]
    return built, collate, items


def _outputs(model, collate, items) -> tuple[torch.Tensor, torch.Tensor]:
    batch = collate(items[:3] + items[-2:])
    with torch.no_grad():
        return model(**batch), model.text_forward(batch["input_ids"], batch["attention_mask"])


@pytest.mark.parametrize("method", ["lora", "iaa", "last_layers"])
def test_save_load_same_outputs(build, tiny, tmp_path: Path, method: str) -> None:
    built, collate, items = _setup(build, tiny)
    section = TuneSection.model_validate({"stages": STAGES[method], "batch_size": 3, "resume": False})
    result = train_stages(built.model, section, items, collate, str(tmp_path / "run"), torch.device("cpu"))
    mm, text = _outputs(built.model, collate, items)
    folder = save_tuned(built.model, tmp_path / "model", built.info, section.stages, result.trained)

    files = sorted(os.listdir(folder))
    expected = {"lora": ["lora", "manifest.json", "projector.safetensors"],
                "iaa": ["iaa.safetensors", "manifest.json", "projector.safetensors"],
                "last_layers": ["llm.safetensors", "manifest.json", "projector.safetensors"]}[method]
    assert files == expected
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["base"]["llm"] == str(tiny["llama"])
    if method == "lora":
        assert sorted(os.listdir(folder / "lora")) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    if method == "last_layers":
        assert manifest["llm_keys"] == [f"model.layers.3.{s}" for s in (
            "input_layernorm.weight", "mlp.down_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
            "post_attention_layernorm.weight", "self_attn.k_proj.weight", "self_attn.o_proj.weight",
            "self_attn.q_proj.weight", "self_attn.v_proj.weight")]
    if method == "iaa":
        assert manifest["iaa"] == {"insert_at": [0, 1]}

    fresh, _, _ = _setup(build, tiny)
    mm0, _ = _outputs(fresh.model, collate, items)
    assert not torch.equal(mm0, mm)  # the fresh base really differs before loading
    loaded = load_tuned_into(fresh.model, folder)
    mm2, text2 = _outputs(loaded, collate, items)
    assert torch.equal(mm2, mm) and torch.equal(text2, text)


def test_resume_continues_exactly(build, tiny, tmp_path: Path) -> None:
    stages = [{"method": "projector", "lr": 1e-2, "steps": 2},
              {"method": "lora", "lr": 1e-2, "steps": 3, "rank": 2, "dropout": 0.2}]
    cfg = {"stages": stages, "batch_size": 2, "grad_accum": 2, "checkpoint_every": 1, "keep_checkpoints": 2}

    straight, collate, items = _setup(build, tiny)
    section = TuneSection.model_validate({**cfg, "resume": False})
    train_stages(straight.model, section, items, collate, str(tmp_path / "a"), torch.device("cpu"))

    # the interrupted run: stop after stage 0 and 1 step of stage 1 ...
    first, _, _ = _setup(build, tiny)
    short = TuneSection.model_validate({**cfg, "resume": False})
    def stop(info: dict) -> None:  # the checkpoint of a step is written after on_step: dies before step 2's
        if info["stage"] == 1 and info["step"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_stages(first.model, short, items, collate, str(tmp_path / "b"), torch.device("cpu"), on_step=stop)
    ckpts = sorted(os.listdir(tmp_path / "b" / "checkpoints"))
    assert ckpts == ["stage0-step0000002", "stage1-step0000001"]  # keep_checkpoints: 2
    # ... and a new process picks it up
    resumed, _, _ = _setup(build, tiny)
    result = train_stages(resumed.model, TuneSection.model_validate(cfg), items, collate, str(tmp_path / "b"),
                          torch.device("cpu"))
    assert [s["resumed_at_step"] for s in result.stats] == [0, 1]
    a = dict(straight.model.named_parameters())
    b = dict(resumed.model.named_parameters())
    assert a.keys() == b.keys()
    assert all(torch.equal(a[n], b[n]) for n in a)
