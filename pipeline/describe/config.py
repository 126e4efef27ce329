"""The recipe's `describe:` section: which vision-language model captions and boxes unlabelled images, and how.

`family` picks the prompts and the box convention the model was trained on; `auto` reads it from the model's
config (`model_type`) for the transformers backend. Prompts and the convention can be overridden.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Family = Literal["auto", "florence2", "qwen2vl", "qwen25vl", "llava", "smolvlm"]

#: Per family: (caption prompt, detection prompt, box convention of pipeline.describe.parse.BOX_PARSERS).
FAMILY_DEFAULTS: dict[str, tuple[str, str, str]] = {
    # Florence-2 is prompted by task tokens only.
    "florence2": ("<MORE_DETAILED_CAPTION>", "<OD>", "florence2"),
    "qwen2vl": ("Describe this image in detail.",
                "Find every object in the image and give each one's bounding box.", "qwen2vl"),
    "qwen25vl": ("Describe this image in detail.",
                 "Locate every object in the image and report them as a JSON list of "
                 '{"bbox_2d": [x1, y1, x2, y2], "label": "..."}.', "qwen25vl"),
    "llava": ("Describe this image in detail.",
              "List every object in the image, one per line, as `label: [x1, y1, x2, y2]` with coordinates "
              "between 0 and 1.", "norm1"),
    "smolvlm": ("Describe this image in detail.",
                "List every object in the image, one per line, as `label: [x1, y1, x2, y2]` with coordinates "
                "between 0 and 1.", "norm1"),
}

#: transformers `model_type` -> family, for `family: auto`.
MODEL_TYPE_FAMILY: dict[str, str] = {
    "florence2": "florence2",
    "qwen2_vl": "qwen2vl",
    "qwen2_5_vl": "qwen25vl",
    "llava": "llava",
    "llava_next": "llava",
    "llava_onevision": "llava",
    "idefics3": "smolvlm",
    "smolvlm": "smolvlm",
}


class DescribeSection(BaseModel):
    """Options of the describe stage."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["transformers", "openai"] = "transformers"
    #: Describe only the records of these sources (by name); None = every record with an image.
    sources: list[str] | None = None
    #: Hub id or local path (transformers), or the served model name (openai).
    model: str
    family: Family = "auto"
    #: What to ask for: a detailed caption, object boxes with labels, or both.
    tasks: list[Literal["caption", "detect"]] = Field(default_factory=lambda: ["caption", "detect"], min_length=1)
    caption_prompt: str | None = None
    detect_prompt: str | None = None
    #: Box convention of the detection replies; None = the family's own.
    box_convention: Literal["florence2", "qwen2vl", "qwen25vl", "norm1"] | None = None
    #: Images per forward pass (transformers) or per group of concurrent requests (openai).
    batch_size: int = Field(default=8, ge=1)
    #: Actor-pool size and GPUs per actor (0: CPU).
    actors: int = Field(default=1, ge=1)
    gpus_per_actor: float = Field(default=0.0, ge=0.0)
    max_new_tokens: int = Field(default=256, ge=1)
    #: 0 = greedy decoding.
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 0
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    #: openai backend only: the endpoint, the environment variable holding the key, parallel requests.
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = Field(default=4, ge=1)
    timeout_s: float = Field(default=120.0, gt=0.0)

    @model_validator(mode="after")
    def _check(self) -> "DescribeSection":
        if self.backend == "openai":
            if not self.base_url:
                raise ValueError("describe.backend openai needs describe.base_url (e.g. http://localhost:8000/v1 "
                                 "for vLLM serving a vision-language model)")
            if self.family == "auto":
                raise ValueError("describe.backend openai cannot read the model's config: set describe.family "
                                 f"to one of {', '.join(FAMILY_DEFAULTS)}")
        return self

    def resolved(self, family: str) -> tuple[str, str, str]:
        """(caption prompt, detection prompt, box convention) for the resolved `family`."""
        cap, det, conv = FAMILY_DEFAULTS[family]
        return self.caption_prompt or cap, self.detect_prompt or det, self.box_convention or conv

    def sampling(self) -> dict[str, float | int]:
        """The sampling parameters written into the lineage."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                "seed": self.seed}
