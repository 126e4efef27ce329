"""Samples: the conversations vlforge writes, with the lineage of where each came from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.box import Box
from schemas.image import ImageRef

IMAGE_TOKEN = "<image>"
#: How a literal `<image>` (or box marker) found in source text is written, so it is never counted.
IMAGE_TOKEN_ESCAPED = "&lt;image&gt;"
#: Boxes live in `Sample.boxes`; text refers to them as `<box:N>` and each output renders them
#: in its own box format at export time.
BOX_MARKER = "<box:{}>"


def escape_source_text(text: str) -> str:
    """Escape placeholders that appear literally in source text (an answer that mentions `<image>`)."""
    if "<image>" in text:
        text = text.replace("<image>", IMAGE_TOKEN_ESCAPED)
    if "<box:" in text:
        text = text.replace("<box:", "&lt;box:")
    return text


class Turn(BaseModel):
    """One message. Image placeholders are `<image>` in user text."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    text: str


class Lineage(BaseModel):
    """Where a sample (or reject) came from, and what made it."""

    model_config = ConfigDict(extra="forbid")

    source: str
    source_kind: str | None = None
    file: str | None = None
    ann_ids: list[str] = Field(default_factory=list)
    template_id: str | None = None
    template_version: int | None = None
    model: str | None = None
    sampling: dict[str, Any] | None = None
    prompt_hash: str | None = None
    raw_output: str | None = None
    filters: list[str] = Field(default_factory=list)


class Sample(BaseModel):
    """A training conversation: 0..n images, alternating turns, the task that made it and its lineage."""

    model_config = ConfigDict(extra="forbid")

    id: str
    images: list[ImageRef] = Field(default_factory=list)
    turns: list[Turn]
    boxes: list[Box] = Field(default_factory=list)
    task: str
    source: str
    lineage: Lineage

    @property
    def text_only(self) -> bool:
        return not self.images
