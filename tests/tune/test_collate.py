"""Chat template, assistant-only labels, visual placeholders, padding and image preprocessing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer

from pipeline.tune.collate import IGNORE, ChatEncoder, Collator, ImageSpec, TooLong, preprocess_image
from pipeline.tune.data import TuneExample


@pytest.fixture
def encoder(tiny: dict[str, Path]) -> ChatEncoder:
    return ChatEncoder(AutoTokenizer.from_pretrained(tiny["llama"]), num_image_tokens=4, max_length=200)


def test_pieces_cut_the_rendered_template_at_each_answer(encoder: ChatEncoder) -> None:
    msgs = [{"role": "user", "content": "<image>\nColour?"}, {"role": "assistant", "content": "red"},
            {"role": "user", "content": "Sure?"}, {"role": "assistant", "content": "yes"}]
    assert encoder.pieces(msgs) == [
        ("<|im_start|>user\n<image>\nColour?<|im_end|>\n<|im_start|>assistant\n", False),
        ("red<|im_end|>\n", True),
        ("<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\n", False),
        ("yes<|im_end|>\n", True),
    ]


def test_labels_cover_exactly_the_answers_and_images_become_placeholders(encoder: ChatEncoder) -> None:
    tok = encoder.tokenizer
    ex = TuneExample(id="x", messages=[{"role": "user", "content": "<image>\nColour?"},
                                       {"role": "assistant", "content": "red"},
                                       {"role": "user", "content": "Sure?"},
                                       {"role": "assistant", "content": "yes"}], images=["img.png"])
    enc = encoder.encode(ex)

    def ids(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    expected = (ids("<|im_start|>user\n") + [encoder.pad_id] * 4 + ids("\nColour?<|im_end|>\n<|im_start|>assistant\n")
                + ids("red<|im_end|>\n") + ids("<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\n")
                + ids("yes<|im_end|>\n"))
    assert enc.input_ids == expected
    assert enc.image_mask == [False] * len(ids("<|im_start|>user\n")) + [True] * 4 + [False] * (len(expected) - len(
        ids("<|im_start|>user\n")) - 4)
    labelled = [t for t in enc.labels if t != IGNORE]
    assert tok.decode(labelled) == "red<|im_end|>\nyes<|im_end|>\n"
    assert enc.images == ["img.png"]


def test_prompt_for_generation_stops_before_the_last_answer(encoder: ChatEncoder) -> None:
    ex = TuneExample(id="t", messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    prompt, ref = encoder.encode_prompt(ex)
    assert ref == "Hello"
    assert encoder.tokenizer.decode(prompt.input_ids) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert all(t == IGNORE for t in prompt.labels) and not any(prompt.image_mask)


def test_too_long_raises(encoder: ChatEncoder) -> None:
    encoder.max_length = 10
    ex = TuneExample(id="l", messages=[{"role": "user", "content": "<image>\nA long question here"},
                                       {"role": "assistant", "content": "An answer"}], images=["x"])
    with pytest.raises(TooLong, match=r"tokens \(with 1 x 4 visual tokens\) > tune.model.max_length 10; raise it"):
        encoder.encode(ex)


def test_chatml_is_used_when_the_tokenizer_has_none(tiny: dict[str, Path]) -> None:
    tok = AutoTokenizer.from_pretrained(tiny["llama"])
    tok.chat_template = None
    enc = ChatEncoder(tok, 4, 100)
    assert enc.template_note.startswith("the tokenizer has no chat template")
    assert enc.render([{"role": "user", "content": "Hi"}], add_generation_prompt=True) == \
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_preprocess_pads_to_square_with_the_mean_colour_then_normalises() -> None:
    spec = ImageSpec(size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = preprocess_image(Image.new("RGB", (4, 2), (255, 0, 0)), spec)
    assert x.shape == (3, 4, 4)
    # rows 0 and 3 are padding (grey 128 -> ~0 after normalising), rows 1-2 the red image
    assert torch.allclose(x[:, 0], torch.full((3, 4), 128 / 255 * 2 - 1), atol=1e-6)
    assert torch.allclose(x[0, 1:3], torch.ones(2, 4)) and torch.allclose(x[1, 1:3], -torch.ones(2, 4))


def test_collator_pads_right_and_stacks_images(encoder: ChatEncoder, tiny: dict[str, Path]) -> None:
    img = str(tiny["images"] / "img0.png")
    a = encoder.encode(TuneExample("a", [{"role": "user", "content": "<image>\nQ"},
                                         {"role": "assistant", "content": "red"}], [img]))
    b = encoder.encode(TuneExample("b", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]))
    spec = ImageSpec(size=16, mean=(0.5,) * 3, std=(0.5,) * 3)
    batch = Collator(encoder.pad_id, spec)([a, b])
    n = max(a.length, b.length)
    assert batch["input_ids"].shape == (2, n) and batch["pixel_values"].shape == (1, 3, 16, 16)
    assert batch["attention_mask"].sum(1).tolist() == [a.length, b.length]
    assert batch["input_ids"][1, b.length:].eq(encoder.pad_id).all()
    assert batch["labels"][1, b.length:].eq(IGNORE).all()
    assert batch["image_mask"].sum().item() == 4
