"""The transformers backend: a vision-language model loaded with `from_pretrained`, run in batches.

Florence-2 takes its task token as the whole text; chat models (Qwen2-VL, Qwen2.5-VL, LLaVA, SmolVLM /
Idefics3) get one user turn holding the image and the prompt, through the processor's chat template. Batches
are left-padded so every row's new tokens start at the same column. Replies are decoded with special tokens
kept, because box conventions live in them (`<loc_N>`, `<|box_start|>`); the parsers strip the rest.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.describe.backend import Reply
from pipeline.describe.config import MODEL_TYPE_FAMILY, DescribeSection

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)


def _missing_torchvision(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) comes from torchvision being absent."""
    try:
        import torchvision  # noqa: F401
        return False
    except ImportError:
        pass
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = f"{type(e).__name__}: {e}"
        # transformers without torchvision: the video-processor auto classes are stubs, so the base-class lookup
        # fails with these messages (5.x), or an import names torchvision directly.
        if "torchvision" in text.lower() or "VIDEO_PROCESSOR_MAPPING" in text or "VideoProcessor" in text:
            return True
        e = e.__cause__ or e.__context__
    return False


def image_only_qwen2vl_processor(model: str, family: str = "qwen2vl") -> Any:
    """A Qwen2-VL processor without its video processor, for machines without torchvision.

    Qwen2-VL's `AutoProcessor` also loads a video processor, which needs torchvision; images need only the
    PIL/numpy image processor (`Qwen2VLImageProcessorPil`) and the tokenizer. The processor class checks every
    sub-processor's type, and without torchvision the video processor's base class cannot even be looked up,
    so the subclass here skips that check for an absent (None) video processor. Videos are not supported.
    """
    import transformers
    from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

    base = transformers.Qwen2_5_VLProcessor if family == "qwen25vl" else transformers.Qwen2VLProcessor

    class ImageOnlyQwen2VLProcessor(base):  # type: ignore[misc, valid-type]
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    folder = Path(model)
    ip_kwargs: dict[str, Any] | None = None
    chat_template: str | None = None
    if folder.is_dir():
        if (folder / "preprocessor_config.json").is_file():
            ip_kwargs = json.loads((folder / "preprocessor_config.json").read_text())
        elif (folder / "processor_config.json").is_file():
            ip_kwargs = json.loads((folder / "processor_config.json").read_text()).get("image_processor")
        if (folder / "chat_template.jinja").is_file():
            chat_template = (folder / "chat_template.jinja").read_text()
        elif (folder / "chat_template.json").is_file():
            chat_template = json.loads((folder / "chat_template.json").read_text()).get("chat_template")
    if ip_kwargs is not None:
        drop = {"image_processor_type", "processor_class", "_processor_class", "auto_map", "backend"}
        image_processor = Qwen2VLImageProcessorPil(**{k: v for k, v in ip_kwargs.items() if k not in drop})
    else:  # a hub id: let transformers resolve the file
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    if chat_template is None:
        chat_template = getattr(tokenizer, "chat_template", None)
    return ImageOnlyQwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                                     chat_template=chat_template)


def load_processor(model: str, family: str) -> Any:
    """`AutoProcessor.from_pretrained(model)`, or for Qwen2-VL-style models without torchvision an image-only
    processor assembled from the PIL image processor and the tokenizer (logged)."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model)
    except Exception as e:
        if family not in ("qwen2vl", "qwen25vl") or not _missing_torchvision(e):
            raise
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
        log.warning("describe: AutoProcessor for %s needs torchvision, which is not installed (%s: %s); "
                    "using an image-only processor (Qwen2VLImageProcessorPil + tokenizer, no video processor)",
                    model, type(e).__name__, first[:200])
        return image_only_qwen2vl_processor(model, family)


class TransformersBackend:
    """Loads processor and model once; `generate` runs one prompt over a batch of images."""

    def __init__(self, cfg: DescribeSection) -> None:
        try:
            import torch
            from transformers import AutoConfig, AutoModelForImageTextToText
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
        self.processor = load_processor(cfg.model, family)
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
