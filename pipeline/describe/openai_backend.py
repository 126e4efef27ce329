"""The OpenAI-compatible vision backend: each image goes as a base64 data URL to a chat endpoint
(vLLM or another server hosting a vision-language model), through the generate stage's `LLMClient`
(its concurrency limit, retries with backoff and timeouts)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
from typing import TYPE_CHECKING, Any

from pipeline.describe.backend import Reply
from pipeline.describe.config import DescribeSection

if TYPE_CHECKING:
    from PIL.Image import Image


def data_url(image: "Image", fmt: str = "JPEG") -> str:
    """The image as a `data:image/jpeg;base64,...` URL (PNG with `fmt="PNG"`)."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=95) if fmt == "JPEG" else image.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def vision_messages(image: "Image", prompt: str) -> list[dict[str, Any]]:
    """One user message holding the image and the prompt, in the OpenAI content-parts form."""
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(image)}},
                                         {"type": "text", "text": prompt}]}]


class OpenAIVisionBackend:
    """Sends one request per image, `describe.concurrency` at a time, and waits for the batch."""

    def __init__(self, cfg: DescribeSection) -> None:
        from pipeline.llm.client import LLMClient, Sampling
        from pipeline.llm.loop import LoopThread

        assert cfg.base_url is not None and cfg.family != "auto"  # DescribeSection checks both
        key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        if cfg.api_key_env and not key:
            raise ValueError(f"describe.api_key_env names {cfg.api_key_env}, which is not set in the environment; "
                             "export it or remove api_key_env for a server that needs no key")
        self.cfg = cfg
        self.family = cfg.family
        self.model_id = cfg.model
        self.loop = LoopThread()
        self.client = LLMClient(cfg.base_url, cfg.model, key, concurrency=cfg.concurrency, timeout_s=cfg.timeout_s,
                                seed=cfg.seed)
        self.sampling = Sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_new_tokens,
                                 seed=cfg.seed)

    async def _all(self, images: list["Image"], prompt: str) -> list[Reply]:
        done = await asyncio.gather(*(self.client.chat(vision_messages(im, prompt), self.sampling)  # type: ignore[arg-type]
                                      for im in images))
        return [Reply(text=c.content) for c in done]

    def generate(self, images: list["Image"], prompt: str) -> list[Reply]:
        return self.loop.run(self._all(images, prompt))

    def close(self) -> None:
        self.loop.run(self.client.aclose())
        self.loop.stop()
