"""A whole HF vision-language model (LLaVA family, `AutoModelForImageTextToText`), tuned with projector or LoRA.

`WholeVLM` gives such a model the interface the tuner uses for its own assembled model: `projector`
(the model's multi-modal projector), `llm` (its language model, where peft's LoRA goes, so the vision
tower is never adapted), `forward` (multimodal), `text_forward` (text only) and `num_image_tokens`.
The model splices its own visual features at its image token; the encoder writes that token id
`num_image_tokens` times per `<image>`, and the model's own image processor prepares the pixels.
Only fixed-size image encoders (LLaVA-1.5 style) are supported: every image gives the same number of tokens.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.tune.collate import load_image
from pipeline.tune.model import Built, ModelLoadError


class WholeVLM(nn.Module):
    """Adapter around an `AutoModelForImageTextToText` model with a `model.language_model` and a projector."""

    def __init__(self, hf: nn.Module, num_image_tokens: int) -> None:
        super().__init__()
        self.hf = hf
        self.hf.requires_grad_(False)
        self._num_image_tokens = num_image_tokens
        inner = getattr(hf, "model", None)
        for attr in ("language_model", "multi_modal_projector"):
            if not hasattr(inner, attr):
                raise ModelLoadError(f"tune.model.vlm: {type(hf).__name__} has no model.{attr}; only LLaVA-family "
                                     f"models are supported. Use model.llm + model.vision instead")

    @property
    def num_image_tokens(self) -> int:
        return self._num_image_tokens

    @property
    def projector(self) -> nn.Module:
        return self.hf.model.multi_modal_projector

    @property
    def llm(self) -> nn.Module:
        """The language model (decoder stack); LoRA wraps this module only."""
        return self.hf.model.language_model

    def replace_llm(self, module: nn.Module) -> None:
        """Put `module` (the peft-wrapped language model) where the language model was."""
        self.hf.model.language_model = module

    @property
    def base_llm(self) -> nn.Module:
        return self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm

    def train(self, mode: bool = True) -> "WholeVLM":
        super().train(mode)
        self.hf.model.vision_tower.eval()
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        return self.hf(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                       use_cache=False).logits

    def text_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.hf(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def build_vlm(path: str) -> Built:
    """Load a LLaVA-family model, its processor, and the number of visual tokens per image."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(path)
        hf = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
    except Exception as e:
        raise ModelLoadError(f"tune.model.vlm: cannot load {path!r} ({type(e).__name__}: {e}). Give a local folder "
                             f"or hub id of a LLaVA-family model with its processor") from None
    token = getattr(processor, "image_token", None)
    token_id = getattr(hf.config, "image_token_id", None)
    if token is None or token_id is None:
        raise ModelLoadError(f"tune.model.vlm: {path!r} has no image token in its processor or config; only "
                             f"LLaVA-family models are supported")
    probe = load_image_probe()
    ids = processor(text=token, images=[probe], return_tensors="pt")["input_ids"][0]
    n_tokens = int((ids == token_id).sum())
    model = WholeVLM(hf, n_tokens)

    def image_fn(images: list[Any]) -> torch.Tensor:
        return processor.image_processor([load_image(im) for im in images], return_tensors="pt")["pixel_values"]

    info = {"kind": "vlm", "vlm": path, "llm": path, "vision": path, "vision_random": False,
            "num_image_tokens": n_tokens}
    return Built(model, processor.tokenizer, None, info, image_token_id=int(token_id), image_fn=image_fn)


def load_image_probe() -> Any:
    from PIL import Image

    return Image.new("RGB", (32, 32), (127, 127, 127))
