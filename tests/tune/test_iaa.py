"""IAA: the text-only workflow is the untouched LLM, bit for bit, before and after training."""

from __future__ import annotations

import pytest
import torch

from pipeline.tune.collate import ChatEncoder, Collator
from pipeline.tune.config import IAAStage
from pipeline.tune.data import TuneExample
from pipeline.tune.iaa import InnerAdaptor, default_insert_at
from pipeline.tune.methods import apply_method
from pipeline.tune.model import causal_lm_loss

LAYER = ["input_layernorm.weight", "post_attention_layernorm.weight", "self_attn.q_proj.weight",
         "self_attn.k_proj.weight", "self_attn.v_proj.weight", "self_attn.o_proj.weight", "mlp.gate_proj.weight",
         "mlp.up_proj.weight", "mlp.down_proj.weight"]


def test_default_rule_matches_the_paper() -> None:
    assert len(default_insert_at(32)) == 14  # IAA-14
    assert len(default_insert_at(30)) == 12  # IAA.md's size example
    assert default_insert_at(12) == [0, 1, 5, 6, 10, 11]


def test_adaptor_holds_untied_copies_and_only_its_own_parameters(build) -> None:
    built = build("llama")
    llm = built.model.llm
    base_keys = list(llm.state_dict())
    iaa = InnerAdaptor(llm)
    assert iaa.insert_at == [0, 1]
    assert set(dict(iaa.named_parameters())) == {"embed.weight", "norm.weight", "head.weight"} | {
        f"layers.{i}.{s}" for i in (0, 1) for s in LAYER}
    assert list(llm.state_dict()) == base_keys  # the base checkpoint's keys are unchanged
    emb, head = llm.model.embed_tokens.weight, llm.lm_head.weight
    assert emb.data_ptr() == head.data_ptr()  # the tiny llama ties them ...
    ptrs = {iaa.embed.weight.data_ptr(), iaa.head.weight.data_ptr(), emb.data_ptr()}
    assert len(ptrs) == 3  # ... IAA's copies are untied from them and from each other
    assert torch.equal(iaa.embed.weight, emb) and torch.equal(iaa.head.weight, head)
    for i in (0, 1):
        for s in LAYER:
            a = dict(iaa.layers[str(i)].named_parameters())[s]
            b = dict(llm.model.layers[i].named_parameters())[s]
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    with pytest.raises(ValueError, match=r"layer indices \[7\] outside 0..3"):
        InnerAdaptor(llm, [0, 7])


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_text_only_logits_bit_identical_before_and_after_training(build, tiny, family: str) -> None:
    built = build(family)
    model = built.model
    base = type(model.llm).from_pretrained(tiny[family])  # an independent copy of the base LLM
    ids = torch.tensor([[1, 5, 9, 30, 200, 7, 2], [1, 44, 3, 8, 0, 0, 0]])
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        ref = base(input_ids=ids, attention_mask=mask).logits

    apply_method(model, IAAStage(method="iaa", lr=1e-2, steps=1))
    enc = ChatEncoder(built.tokenizer, model.num_image_tokens, 200)
    collate = Collator(enc.pad_id, built.image_spec)
    img = str(tiny["images"] / "img1.png")
    batch = collate([enc.encode(TuneExample("a", [{"role": "user", "content": "<image>\nColour?"},
                                                  {"role": "assistant", "content": "green"}], [img]))])
    with torch.no_grad():
        assert torch.equal(model.text_forward(ids, mask), ref)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    mm_before = model(**batch).detach()
    for _ in range(3):
        causal_lm_loss(model(**batch), batch["labels"]).backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        assert not torch.equal(model(**batch), mm_before)  # the multimodal workflow did learn
        assert torch.equal(model.text_forward(ids, mask), ref)  # the text-only workflow did not move a bit


def test_multimodal_workflow_runs_inserted_layers(build) -> None:
    """Without insertion layers IAA's multimodal path computes what the LLM computes; with one it differs."""
    built = build("llama")
    model = built.model
    model.iaa = InnerAdaptor(model.llm, insert_at=[0])
    ids = torch.tensor([[1, 5, 9, 30]])
    with torch.no_grad():
        with_insert = model(ids)
        model.iaa.layers = torch.nn.ModuleDict()
        without = model(ids)
        plain = model.llm(input_ids=ids).logits
    assert torch.allclose(without, plain, atol=1e-6)
    assert not torch.allclose(with_insert, plain, atol=1e-4)
