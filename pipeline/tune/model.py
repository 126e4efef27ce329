"""Model assembly: a frozen vision encoder, a projector, a causal LLM; visual tokens spliced at `<image>`.

    pixels --vision tower (frozen)--> patch features [n, T, Dv] --projector--> [n, T, D]
    token embeddings [b, S, D] with the T positions of each `<image>` replaced by that image's features
    --> causal LLM (or IAA's multimodal workflow) --> logits

The vision tower is a CLIP or SigLIP family `*VisionModel`; features come from hidden state
`vision_feature_layer` (LLaVA-1.5 takes the penultimate), with CLIP's class token dropped.
The projector is LLaVA-1.5's two-layer MLP with GELU.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.tune.collate import IGNORE, ImageSpec
from pipeline.tune.iaa import InnerAdaptor

#: A file that marks a vision tower folder as randomly initialised (written by embedded.py).
RANDOM_MARKER = "VLFORGE_RANDOM_INIT"

_FAMILY_NORM = {  # image mean/std by family when the checkpoint has no preprocessor_config.json
    "siglip": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
}


class ModelLoadError(Exception):
    """A model named in the recipe cannot be loaded or is of an unsupported family."""


class Projector(nn.Module):
    """Vision width -> LLM width: Linear, GELU, Linear (LLaVA-1.5's `mlp2x_gelu`)."""

    def __init__(self, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, llm_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(llm_dim, llm_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def next_token_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels shifted left by one (position t predicts token t+1); the last position predicts nothing.

    Shifting the labels rather than the logits avoids copying the [b, S, vocab] logits."""
    return F.pad(labels[:, 1:], (0, 1), value=IGNORE)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy over labelled positions (labels -100 elsewhere), in float32."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), next_token_labels(labels).reshape(-1),
                           ignore_index=IGNORE, reduction=reduction)


class VisionLanguageModel(nn.Module):
    """Frozen vision tower + projector + causal LLM, with an optional inner adaptor (`iaa`)."""

    def __init__(self, vision: nn.Module, llm: nn.Module, vision_feature_layer: int = -2,
                 drop_cls: bool = False) -> None:
        super().__init__()
        self.vision = vision
        self.vision.requires_grad_(False)
        self.vision_feature_layer = vision_feature_layer
        self.drop_cls = drop_cls
        vcfg = vision.config
        self.projector = Projector(vcfg.hidden_size, llm.config.hidden_size)
        self.llm = llm
        self.iaa: InnerAdaptor | None = None

    @property
    def num_image_tokens(self) -> int:
        cfg = self.vision.config
        return (cfg.image_size // cfg.patch_size) ** 2

    @property
    def base_llm(self) -> nn.Module:
        """The transformers causal LM, unwrapped from peft when LoRA is on."""
        return self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm

    def replace_llm(self, module: nn.Module) -> None:
        """Put `module` (the peft-wrapped LLM) where the LLM was."""
        self.llm = module

    def train(self, mode: bool = True) -> "VisionLanguageModel":
        super().train(mode)
        self.vision.eval()  # frozen: no dropout, whatever mode the rest is in
        return self

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[n, 3, H, W] -> projected visual tokens [n, T, D]."""
        with torch.no_grad():
            out = self.vision(pixel_values=pixel_values, output_hidden_states=True)
            feats = out.hidden_states[self.vision_feature_layer]
            if self.drop_cls:
                feats = feats[:, 1:]
        return self.projector(feats)

    def embed(self, input_ids: torch.Tensor, image_mask: torch.Tensor | None = None,
              pixel_values: torch.Tensor | None = None,
              image_features: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with visual features written at the `image_mask` positions."""
        table = self.iaa.embed if self.iaa is not None else self.llm.get_input_embeddings()
        embeds = table(input_ids)
        if image_mask is not None and bool(image_mask.any()):
            if image_features is None:
                if pixel_values is None:
                    raise ValueError("the batch has image positions but no pixel_values")
                image_features = self.encode_images(pixel_values)
            n_pos = int(image_mask.sum())
            if n_pos != image_features.shape[0] * image_features.shape[1]:
                raise ValueError(f"{n_pos} image positions for {image_features.shape[0]} image(s) of "
                                 f"{image_features.shape[1]} tokens")
            embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), image_features.to(embeds.dtype))
        return embeds

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None,
                image_features: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        """Multimodal workflow -> logits [b, S, V]."""
        embeds = self.embed(input_ids, image_mask, pixel_values, image_features)
        if self.iaa is not None:
            return self.iaa(self.base_llm, embeds, attention_mask)
        return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False).logits

    def text_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Text-only workflow: the LLM as it is (with IAA: the untouched base model) -> logits."""
        return self.llm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


# ---- loading ----------------------------------------------------------------------------------------


@dataclass
class Built:
    """An assembled model with its tokenizer and how the images must be prepared."""

    model: nn.Module
    tokenizer: Any
    image_spec: ImageSpec | None
    info: dict[str, Any] = field(default_factory=dict)
    #: Token id that marks visual positions (whole VLMs); None = the pad id (our own model ignores it).
    image_token_id: int | None = None
    #: Replacement image preprocessing (whole VLMs use their own processor).
    image_fn: Any = None


def _image_norm(path: str, family: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cfg_file = os.path.join(path, "preprocessor_config.json")
    if os.path.isfile(cfg_file):
        with open(cfg_file, encoding="utf-8") as f:
            pp = json.load(f)
        if "image_mean" in pp and "image_std" in pp:
            return tuple(pp["image_mean"]), tuple(pp["image_std"])
    return _FAMILY_NORM[family]


def load_vision(path: str) -> tuple[nn.Module, ImageSpec, bool, bool]:
    """Load a CLIP/SigLIP vision tower. Returns (tower, image spec, drop_cls, randomly initialised)."""
    from transformers import AutoConfig, CLIPVisionModel, SiglipVisionModel

    try:
        cfg = AutoConfig.from_pretrained(path)
    except Exception as e:
        raise ModelLoadError(f"tune.model.vision: cannot load {path!r} ({e}). Give a local folder or a hub id "
                             f"of a CLIP or SigLIP checkpoint, or `embedded`") from None
    family = {"siglip": "siglip", "siglip_vision_model": "siglip", "clip": "clip",
              "clip_vision_model": "clip"}.get(cfg.model_type)
    if family is None:
        raise ModelLoadError(f"tune.model.vision: {path!r} is a {cfg.model_type!r} model. Choose a CLIP or SigLIP "
                             f"vision tower (model_type clip, clip_vision_model, siglip, siglip_vision_model)")
    cls = SiglipVisionModel if family == "siglip" else CLIPVisionModel
    tower = cls.from_pretrained(path, dtype=torch.float32)
    tower.requires_grad_(False).eval()
    mean, std = _image_norm(path, family)
    spec = ImageSpec(size=int(tower.config.image_size), mean=tuple(mean), std=tuple(std))  # type: ignore[arg-type]
    return tower, spec, family == "clip", os.path.isfile(os.path.join(path, RANDOM_MARKER))


def load_llm(path: str) -> tuple[nn.Module, Any]:
    """Load a causal LLM and its tokenizer in float32 (bf16 runs use autocast over fp32 weights)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
        llm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except Exception as e:
        raise ModelLoadError(f"tune.model.llm: cannot load {path!r} ({type(e).__name__}: {e}). Give a local folder "
                             f"or hub id of a Llama/Qwen2-family causal LM, or `embedded`") from None
    llm.requires_grad_(False)
    return llm, tok


def build_model(llm_path: str, vision_path: str, vision_feature_layer: int = -2) -> Built:
    """Assemble vision tower + fresh projector + LLM from resolved paths (see embedded.resolve)."""
    llm, tok = load_llm(llm_path)
    tower, spec, drop_cls, random_tower = load_vision(vision_path)
    model = VisionLanguageModel(tower, llm, vision_feature_layer, drop_cls)
    info = {"kind": "assembled", "llm": llm_path, "vision": vision_path, "vision_random": random_tower,
            "num_image_tokens": model.num_image_tokens, "image_size": spec.size,
            "vision_feature_layer": vision_feature_layer}
    return Built(model, tok, spec, info)
