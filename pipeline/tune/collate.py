"""From conversations to tensors: the LLM's chat template, assistant-only labels, images, padding.

`ChatEncoder.encode` renders a conversation with the tokenizer's own chat template and cuts the text
into pieces at the assistant answers, by rendering prefixes of the conversation:

    prompt_k = template(messages[:k], add_generation_prompt=True)   # ends where answer k starts
    full_k   = template(messages[:k + 1])                           # ends after answer k (and its end token)

so the answer piece is `full_k[len(prompt_k):]`. Each piece is tokenized on its own; answer pieces are
labelled, everything else gets -100, so the loss is on assistant tokens only. Each `<image>` in a user
piece becomes `num_image_tokens` placeholder positions (marked in `image_mask`) that the model fills
with projected visual features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from pipeline.tune.data import TuneExample
from schemas.sample import IMAGE_TOKEN

IGNORE = -100

#: Used when a tokenizer has no chat template of its own (a base model): plain ChatML.
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TemplateMismatch(Exception):
    """The chat template does not render prefixes of a conversation as prefixes of the whole."""


class TooLong(Exception):
    """The tokenized sample is longer than `model.max_length`."""


@dataclass
class Encoded:
    """A tokenized conversation: ids, labels (-100 where no loss), where the visual tokens go."""

    id: str
    input_ids: list[int]
    labels: list[int]
    image_mask: list[bool]
    images: list[Any]

    @property
    def length(self) -> int:
        return len(self.input_ids)


class ChatEncoder:
    """Tokenizes conversations for one model (tokenizer + number of visual tokens per image)."""

    def __init__(self, tokenizer: Any, num_image_tokens: int, max_length: int,
                 image_token_id: int | None = None) -> None:
        self.tokenizer = tokenizer
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = CHATML_TEMPLATE
            self.template_note = "the tokenizer has no chat template; ChatML was used"
        else:
            self.template_note = "the tokenizer's own chat template"
        self.num_image_tokens = num_image_tokens
        self.max_length = max_length
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = int(pad if pad is not None else 0)
        #: Id written at visual positions: whole VLMs look for their image token; our own model ignores it.
        self.image_token_id = self.pad_id if image_token_id is None else image_token_id
        self.eos_ids = self._end_ids(tokenizer)

    @staticmethod
    def _end_ids(tokenizer: Any) -> set[int]:
        ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        for tok in ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>"):
            tid = tokenizer.convert_tokens_to_ids(tok)
            if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
                ids.add(tid)
        return ids

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def pieces(self, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
        """Cut the rendered conversation into (text, is_answer) pieces."""
        out: list[tuple[str, bool]] = []
        done = ""
        for k, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prompt = self.render(messages[:k], add_generation_prompt=True)
            full = self.render(messages[: k + 1])
            if not (prompt.startswith(done) and full.startswith(prompt)):
                raise TemplateMismatch("the chat template renders a conversation prefix differently from the whole "
                                       "conversation, so answers cannot be located; use a model with a prefix-stable "
                                       "template (ChatML, Llama-3)")
            out += [(prompt[len(done):], False), (full[len(prompt):], True)]
            done = full
        rest = self.render(messages)
        if rest.startswith(done) and len(rest) > len(done):
            out.append((rest[len(done):], False))
        return out

    def _tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _append_prompt(self, text: str, ids: list[int], labels: list[int], mask: list[bool]) -> None:
        for j, part in enumerate(text.split(IMAGE_TOKEN)):
            if j > 0:
                ids += [self.image_token_id] * self.num_image_tokens
                labels += [IGNORE] * self.num_image_tokens
                mask += [True] * self.num_image_tokens
            toks = self._tokens(part)
            ids += toks
            labels += [IGNORE] * len(toks)
            mask += [False] * len(toks)

    def encode(self, ex: TuneExample) -> Encoded:
        """Tokenize a whole conversation for training or loss evaluation. Raises TooLong."""
        ids: list[int] = []
        labels: list[int] = []
        mask: list[bool] = []
        try:
            pieces = self.pieces(ex.messages)
        except TemplateMismatch as e:
            raise TemplateMismatch(f"sample {ex.id}: {e}") from None
        for text, is_answer in pieces:
            if is_answer:
                toks = self._tokens(text)
                ids += toks
                labels += toks
                mask += [False] * len(toks)
            else:
                self._append_prompt(text, ids, labels, mask)
        if len(ids) > self.max_length:
            raise TooLong(f"{len(ids)} tokens (with {len(ex.images)} x {self.num_image_tokens} visual tokens) "
                          f"> tune.model.max_length {self.max_length}; raise it or shorten the sample")
        return Encoded(ex.id, ids, labels, mask, list(ex.images))

    def encode_prompt(self, ex: TuneExample) -> tuple[Encoded, str]:
        """The conversation up to its last answer, ready for generation, and that answer (the reference)."""
        last = max(k for k, m in enumerate(ex.messages) if m["role"] == "assistant")
        text = self.render(ex.messages[:last], add_generation_prompt=True)
        ids: list[int] = []
        labels: list[int] = []
        mask: list[bool] = []
        self._append_prompt(text, ids, labels, mask)
        n_img = sum(m["content"].count(IMAGE_TOKEN) for m in ex.messages[:last])
        return Encoded(ex.id, ids, labels, mask, list(ex.images[:n_img])), ex.messages[last]["content"]


@dataclass
class ImageSpec:
    """How the vision tower wants its input: a square of `size` pixels, normalised by mean and std."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def load_image(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as im:
        return im.convert("RGB")


def preprocess_image(image: Any, spec: ImageSpec) -> torch.Tensor:
    """Pad to a square with the mean colour (LLaVA-1.5's `pad` convention, which boxes in `llava` format
    assume), resize to the tower's size, scale to [0, 1] and normalise. Returns [3, size, size]."""
    im = load_image(image)
    w, h = im.size
    side = max(w, h)
    fill = tuple(int(round(m * 255)) for m in spec.mean)
    square = Image.new("RGB", (side, side), fill)
    square.paste(im, ((side - w) // 2, (side - h) // 2))
    square = square.resize((spec.size, spec.size), Image.Resampling.BICUBIC)
    x = torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8).view(spec.size, spec.size, 3)
    x = x.permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    return (x - mean) / std


class Collator:
    """Pads a list of `Encoded` to one batch (right padding) and preprocesses its images."""

    def __init__(self, pad_id: int, image_spec: ImageSpec | None, image_fn: Any = None) -> None:
        self.pad_id = pad_id
        self.image_spec = image_spec
        #: Optional replacement for `preprocess_image` (a whole VLM's own image processor).
        self.image_fn = image_fn

    def __call__(self, items: list[Encoded]) -> dict[str, torch.Tensor]:
        n = max(it.length for it in items)
        b = len(items)
        input_ids = torch.full((b, n), self.pad_id, dtype=torch.long)
        labels = torch.full((b, n), IGNORE, dtype=torch.long)
        attention = torch.zeros((b, n), dtype=torch.long)
        image_mask = torch.zeros((b, n), dtype=torch.bool)
        for i, it in enumerate(items):
            k = it.length
            input_ids[i, :k] = torch.tensor(it.input_ids, dtype=torch.long)
            labels[i, :k] = torch.tensor(it.labels, dtype=torch.long)
            attention[i, :k] = 1
            image_mask[i, :k] = torch.tensor(it.image_mask, dtype=torch.bool)
        batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "image_mask": image_mask}
        images = [im for it in items for im in it.images]
        if images:
            if self.image_fn is not None:
                batch["pixel_values"] = self.image_fn(images)
            else:
                assert self.image_spec is not None
                batch["pixel_values"] = torch.stack([preprocess_image(im, self.image_spec) for im in images])
        return batch
