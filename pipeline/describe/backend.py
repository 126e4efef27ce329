"""The backend interface of the describe stage: images plus one prompt in, one reply per image out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True)
class Reply:
    """A model's raw reply to one image, and the size of the image the model actually saw (when its
    processor resized it and the box convention counts pixels of that image, as Qwen2.5-VL does)."""

    text: str
    input_size: tuple[int, int] | None = None


class DescribeBackend(Protocol):
    """Runs one prompt over a batch of images. `family` names the prompt and box conventions it speaks."""

    family: str
    model_id: str

    def generate(self, images: list["Image"], prompt: str) -> list[Reply]:
        """One reply per image, in order. Raises on a failure of the whole batch."""
        ...

    def close(self) -> None:
        """Release connections or memory."""
        ...
