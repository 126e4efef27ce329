"""Which parameters each tuning method trains (taxonomy of arXiv 2503.04543; IAA from arXiv 2408.12902).

    projector    the projector only (stage-1 alignment)
    lora         peft LoRA (or DoRA) adapters on the LLM's decoder linear layers + the projector in full
    last_layers  the last k decoder layers of the LLM + the projector
    full         every LLM parameter + the projector
    iaa          the inner adaptor (insertion layers, multimodal embedding, norm, head) + the projector

The vision tower is frozen in every method. `apply_method` freezes everything, makes the structural
change a method needs the first time it is used (peft injection, the inner adaptor), marks what the
stage trains and returns those parameter names.
"""

from __future__ import annotations

import re

from torch import nn

from pipeline.tune.config import (IAAStage, LastLayersStage, LoraStage, ProjectorStage, FullStage, Stage)
from pipeline.tune.iaa import InnerAdaptor


class MethodError(Exception):
    """A method cannot be applied to this model; the message says why and what to choose instead."""


def _decoder_layers(llm: nn.Module) -> nn.ModuleList:
    """`model.layers` of a causal LM, or `layers` of a bare decoder (a whole VLM's language model)."""
    layers = getattr(getattr(llm, "model", None), "layers", None)
    if layers is None:
        layers = getattr(llm, "layers", None)
    if layers is None:
        raise MethodError(f"cannot find the decoder layers of {type(llm).__name__} (expected model.layers)")
    return layers


def _lora_targets(llm: nn.Module, targets: list[str]) -> str:
    """A peft regex that matches the named linear layers inside decoder layers, and nothing else."""
    layers = _decoder_layers(llm)
    available = sorted({name.rsplit(".", 1)[-1] for name, m in layers.named_modules() if isinstance(m, nn.Linear)})
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise MethodError(f"lora.targets {unknown} match no linear layer in the LLM's decoder layers. "
                          f"Choose from: {', '.join(available)}")
    names = "|".join(re.escape(t) for t in targets)
    return rf"^(?:.*\.)?layers\.\d+\.(?:.*\.)?(?:{names})$"


def _add_lora(model: nn.Module, stage: LoraStage) -> None:
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=stage.rank, lora_alpha=stage.alpha, lora_dropout=stage.dropout, use_dora=stage.dora,
                     target_modules=_lora_targets(model.llm, stage.targets), bias="none",
                     # a whole VLM's language model is a bare decoder (no head): no causal-LM task wrapper
                     task_type="CAUSAL_LM" if hasattr(model.llm, "lm_head") else None)
    model.replace_llm(get_peft_model(model.llm, cfg))


def has_lora(model: nn.Module) -> bool:
    return hasattr(model.llm, "peft_config")


def apply_method(model: nn.Module, stage: Stage) -> list[str]:
    """Set requires_grad for `stage` on `model` (a VisionLanguageModel); return the trainable names."""
    model.requires_grad_(False)
    model.projector.requires_grad_(True)
    if isinstance(stage, ProjectorStage):
        pass
    elif isinstance(stage, LoraStage):
        if not has_lora(model):
            _add_lora(model, stage)
        for name, p in model.llm.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)
    elif isinstance(stage, LastLayersStage):
        layers = _decoder_layers(model.base_llm)
        if stage.k > len(layers):
            raise MethodError(f"last_layers.k = {stage.k} but the LLM has {len(layers)} layers. "
                              f"Choose k in 1..{len(layers)}")
        for layer in layers[len(layers) - stage.k:]:
            layer.requires_grad_(True)
    elif isinstance(stage, FullStage):
        model.llm.requires_grad_(True)
    elif isinstance(stage, IAAStage):
        if getattr(model, "iaa", "absent") == "absent":
            raise MethodError("iaa needs an assembled model (llm + vision); a whole vision-language model "
                              "(model.vlm) supports projector and lora only")
        if model.iaa is None:
            model.iaa = InnerAdaptor(model.base_llm, stage.insert_at)
        model.iaa.requires_grad_(True)
    else:  # pragma: no cover - the config's discriminated union admits nothing else
        raise MethodError(f"unknown method {stage.method!r}")
    return [n for n, p in model.named_parameters() if p.requires_grad]


def prepare_structure(model: nn.Module, stages: list[Stage]) -> None:
    """Make the structural changes of `stages` (peft injection, inner adaptor) without training anything.

    Used when loading saved weights or resuming: the modules must exist before their weights load.
    """
    for stage in stages:
        if isinstance(stage, (LoraStage, IAAStage)):
            apply_method(model, stage)
    model.requires_grad_(False)
