"""The transformers backend: a vision-language model loaded with `from_pretrained`, run in batches.

Florence-2 takes its task token as the whole text; chat models (Qwen2-VL, Qwen2.5-VL, LLaVA, SmolVLM /
Idefics3) get one user turn holding the image and the prompt, through the processor's chat template. Batches
are left-padded so every row's new tokens start at the same column. Replies are decoded with special tokens
kept, because box conventions live in them (`<loc_N>`, `<|box_start|>`); the parsers strip the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.describe.backend import Reply
from pipeline.describe.config import MODEL_TYPE_FAMILY, DescribeSection

if TYPE_CHECKING:
    from PIL.Image import Image


class TransformersBackend:
    """Loads processor and model once; `generate` runs one prompt over a batch of images."""

    def __init__(self, cfg: DescribeSection) -> None:
        try:
            import torch
            from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
        except ImportError:
            raise ImportError("describe.backend transformers needs torch and transformers; "
                              "install them with `pip install torch transformers`") from None
        self.cfg = cfg
        self.model_id = cfg.model
        config = AutoConfig.from_pretrained(cfg.model)
        family = cfg.family
        if family == "auto":
            family = MODEL_TYPE_FAMILY.get(config.model_type, "")
            if not family:
                raise ValueError(f"describe: model {cfg.model} has model_type {config.model_type!r}, which is not a "
                                 f"known family ({', '.join(sorted(MODEL_TYPE_FAMILY))}); set describe.family")
        self.family = family
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype: Any = {"auto": torch.bfloat16 if self.device == "cuda" else torch.float32,
                      "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        self.processor = AutoProcessor.from_pretrained(cfg.model)
        tok = getattr(self.processor, "tokenizer", None)
        if tok is not None:
            tok.padding_side = "left"
        self.model = AutoModelForImageTextToText.from_pretrained(cfg.model, dtype=dtype).to(self.device).eval()
        self.encoder_decoder = bool(getattr(self.model.config, "is_encoder_decoder", False))
        self._torch = torch

    def _text(self, prompt: str) -> str:
        if self.family == "florence2":
            return prompt
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def generate(self, images: list["Image"], prompt: str) -> list[Reply]:
        torch = self._torch
        text = self._text(prompt)
        kwargs: dict[str, Any] = {"text": [text] * len(images), "return_tensors": "pt"}
        if self.family in ("llava", "smolvlm"):
            kwargs["images"] = [[im] for im in images]
        else:
            kwargs["images"] = images
        if self.family != "florence2":
            kwargs["padding"] = True
        inputs = self.processor(**kwargs).to(self.device)
        if "pixel_values" in inputs and self.model.dtype != torch.float32:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        gen: dict[str, Any] = {"max_new_tokens": self.cfg.max_new_tokens, "do_sample": self.cfg.temperature > 0}
        if self.cfg.temperature > 0:
            gen.update(temperature=self.cfg.temperature, top_p=self.cfg.top_p)
            torch.manual_seed(self.cfg.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen)
        new = out if self.encoder_decoder else out[:, inputs["input_ids"].shape[1]:]
        texts = self.processor.batch_decode(new, skip_special_tokens=False)
        sizes: list[tuple[int, int] | None] = [None] * len(images)
        grid = inputs.get("image_grid_thw")
        if self.family == "qwen25vl" and grid is not None:
            patch = int(getattr(self.processor.image_processor, "patch_size", 14))
            sizes = [(int(w) * patch, int(h) * patch) for _, h, w in grid.tolist()]
        return [Reply(text=t, input_size=s) for t, s in zip(texts, sizes)]

    def close(self) -> None:
        del self.model
