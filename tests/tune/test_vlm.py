"""A whole LLaVA-family model: LoRA on its language model only, projector in full, save and load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.tune.checkpoint import load_tuned_into, save_tuned
from pipeline.tune.collate import ChatEncoder, Collator
from pipeline.tune.config import TuneSection
from pipeline.tune.data import load_examples
from pipeline.tune.methods import apply_method
from pipeline.tune.train import train_stages
from pipeline.tune.vlm import build_vlm


@pytest.fixture(scope="module")
def llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import make_llava

    folder = tmp_path_factory.mktemp("llava")
    make_llava(folder)
    return folder


def test_lora_on_a_whole_llava_model(llava: Path, tiny: dict[str, Path], tmp_path: Path) -> None:
    torch.manual_seed(0)
    built = build_vlm(str(llava))
    model = built.model
    assert model.num_image_tokens == 4  # (16 / 8)^2 patches, CLS dropped by the "default" strategy
    enc = ChatEncoder(built.tokenizer, model.num_image_tokens, 256, built.image_token_id)
    collate = Collator(enc.pad_id, None, built.image_fn)
    examples, _ = load_examples(str(tiny["data"]), str(tiny["images"]))
    items = [enc.encode(e) for e in examples]
    assert items[0].input_ids.count(built.image_token_id) == 4
    section = TuneSection.model_validate({"model": {"vlm": str(llava)}, "resume": False, "batch_size": 3,
                                          "stages": [{"method": "lora", "lr": 1e-2, "steps": 2, "rank": 2,
                                                      "targets": ["q_proj", "v_proj"], "dropout": 0.0}]})
    apply_method(model, section.stages[0])  # inject the adapter first, to snapshot its initial weights
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = train_stages(model, section, items, collate, str(tmp_path / "run"), torch.device("cpu"))
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    lora = {f"hf.model.language_model.base_model.model.layers.{i}.self_attn.{t}.lora_{ab}.default.weight"
            for i in range(2) for t in ("q_proj", "v_proj") for ab in "AB"}
    projector = {f"hf.model.multi_modal_projector.linear_{k}.{w}" for k in (1, 2) for w in ("weight", "bias")}
    assert result.trained == changed == lora | projector  # never the vision tower, never the head

    batch = collate(items[:2] + items[-1:])
    with torch.no_grad():
        mm, text = model(**batch), model.text_forward(batch["input_ids"], batch["attention_mask"])
    folder = save_tuned(model, tmp_path / "model", built.info, section.stages, result.trained)
    torch.manual_seed(1)
    loaded = load_tuned_into(build_vlm(str(llava)).model, folder)
    with torch.no_grad():
        assert torch.equal(loaded(**batch), mm)
        assert torch.equal(loaded.text_forward(batch["input_ids"], batch["attention_mask"]), text)


def test_run_tune_with_a_whole_vlm(llava: Path, tiny: dict[str, Path], tmp_path: Path) -> None:
    from pipeline.tune.run import run_tune

    section = TuneSection.model_validate({
        "model": {"vlm": str(llava)}, "batch_size": 2,
        "stages": [{"method": "projector", "lr": 1e-2, "steps": 1}, {"method": "lora", "lr": 1e-2, "steps": 1}],
        "eval": {"heldout": 0.25, "max_new_tokens": 2}})
    report = run_tune(section, str(tiny["data"]), str(tiny["images"]), str(tmp_path / "out"))
    assert report["model"]["kind"] == "vlm" and report["model"]["vision_random"] is False
    assert [s["method"] for s in report["stages"]] == ["projector", "lora"]
    assert [s["samples"] for s in report["stages"]] == [6, 10]  # the projector stage skips text-only samples
    assert report["after"]["text_only"]["nll"] != report["before"]["text_only"]["nll"]
