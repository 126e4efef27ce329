"""Each method trains exactly its parameters; LoRA moves text-only perplexity, IAA cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.tune.collate import ChatEncoder, Collator
from pipeline.tune.config import TuneSection
from pipeline.tune.data import load_examples
from pipeline.tune.evaluate import mean_nll
from pipeline.tune.methods import MethodError, apply_method
from pipeline.tune.train import train_stages

PROJECTOR = {"projector.fc1.weight", "projector.fc1.bias", "projector.fc2.weight", "projector.fc2.bias"}
LAYER = ["input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
         "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight", "mlp.gate_proj.weight",
         "mlp.up_proj.weight", "mlp.down_proj.weight"]
LORA = "llm.base_model.model.model.layers.{i}.self_attn.{t}.lora_{ab}.default.weight"


def expected(method: str, base_names: list[str]) -> set[str]:
    if method == "projector":
        return set(PROJECTOR)
    if method == "lora":
        return PROJECTOR | {LORA.format(i=i, t=t, ab=ab) for i in range(4) for t in ("q_proj", "v_proj")
                            for ab in "AB"}
    if method == "dora":
        return expected("lora", base_names) | {
            f"llm.base_model.model.model.layers.{i}.self_attn.{t}.lora_magnitude_vector.default.weight"
            for i in range(4) for t in ("q_proj", "v_proj")}
    if method == "last_layers":
        return PROJECTOR | {f"llm.model.layers.{i}.{s}" for i in (2, 3) for s in LAYER}
    if method == "full":
        return PROJECTOR | {f"llm.{n}" for n in base_names}
    if method == "iaa":
        return PROJECTOR | {"iaa.embed.weight", "iaa.norm.weight", "iaa.head.weight"} | {
            f"iaa.layers.{i}.{s}" for i in (0, 1) for s in LAYER}
    raise AssertionError(method)


def stage(method: str, steps: int = 2, lr: float = 1e-2) -> dict:
    st = {"method": "lora" if method == "dora" else method, "lr": lr, "steps": steps, "warmup": 0,
          "schedule": "constant"}
    if method in ("lora", "dora"):
        st.update(rank=2, targets=["q_proj", "v_proj"], dropout=0.0, dora=method == "dora")
    return st


def prepared(build, tiny: dict[str, Path]):
    built = build("llama")
    enc = ChatEncoder(built.tokenizer, built.model.num_image_tokens, 256)
    collate = Collator(enc.pad_id, built.image_spec)
    examples, _ = load_examples(str(tiny["data"]), str(tiny["images"]))
    return built, enc, collate, examples


@pytest.mark.parametrize("method", ["projector", "lora", "dora", "last_layers", "full", "iaa"])
def test_exactly_the_method_parameters_train_and_change(build, tiny, tmp_path: Path, method: str) -> None:
    built, enc, collate, examples = prepared(build, tiny)
    model = built.model
    base_names = [n for n, _ in model.llm.named_parameters()]
    section = TuneSection.model_validate({"stages": [stage(method)], "batch_size": 4, "resume": False})
    items = [enc.encode(e) for e in examples if not e.text_only]
    names = apply_method(model, section.stages[0])
    assert set(names) == expected(method, base_names)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = train_stages(model, section, items, collate, str(tmp_path), torch.device("cpu"))
    assert result.trained == expected(method, base_names)
    after = dict(model.named_parameters())
    assert set(after) == set(before)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed == expected(method, base_names)  # every trained tensor moved, every frozen one did not
    assert result.stats[0]["trainable_params"] == sum(after[n].numel() for n in changed)


def test_last_layers_k_and_lora_targets_are_checked(build) -> None:
    built = build("llama")
    with pytest.raises(MethodError, match=r"last_layers.k = 9 but the LLM has 4 layers. Choose k in 1..4"):
        apply_method(built.model, TuneSection.model_validate(
            {"stages": [{"method": "last_layers", "k": 9, "lr": 1, "steps": 1}]}).stages[0])
    with pytest.raises(MethodError, match=r"lora.targets \['lm_head'\] match no linear layer .* Choose from: "
                                          r"down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj"):
        apply_method(built.model, TuneSection.model_validate(
            {"stages": [{"method": "lora", "targets": ["lm_head"], "lr": 1, "steps": 1}]}).stages[0])


def test_lora_moves_text_only_perplexity_and_iaa_leaves_it_exactly(build, tiny, tmp_path: Path) -> None:
    nll = {}
    for method in ("lora", "iaa"):
        built, enc, collate, examples = prepared(build, tiny)
        model = built.model
        text_items = [enc.encode(e) for e in examples if e.text_only]
        train_items = [enc.encode(e) for e in examples]  # the same data and steps for both
        before, _ = mean_nll(model, text_items, collate, torch.device("cpu"), text=True)
        section = TuneSection.model_validate({"stages": [stage(method, steps=3, lr=5e-3)], "batch_size": 4,
                                              "resume": False})
        train_stages(model, section, train_items, collate, str(tmp_path / method), torch.device("cpu"))
        after, _ = mean_nll(model, text_items, collate, torch.device("cpu"), text=True)
        nll[method] = (before, after)
    assert nll["lora"][0] == nll["iaa"][0]  # same base model, same starting perplexity
    assert abs(nll["lora"][1] - nll["lora"][0]) > 1e-4
    assert nll["iaa"][1] == nll["iaa"][0]
