"""The TRL writer: exact content blocks, a parquet / save_to_disk dataset with embedded images, and TRL itself
(`prepare_multimodal_messages` and its vision data collator, with a tiny LLaVA processor) reading it."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_helpers import load_parquet, make_image_root, undecoded
from writer_samples import BOXES, all_samples, boxed_sample, image_sample, multi_image_sample, system_sample

from outputs.registry import WRITERS
from outputs.trl import TrlWriter, content_blocks
from outputs.validators import validate_file
from schemas.recipe import OutputFormat

IMAGE = {"type": "image"}


def text(t: str) -> dict[str, str]:
    return {"type": "text", "text": t}


def writer(box_format: str = "llava", shard_rows: int | None = None) -> TrlWriter:
    return TrlWriter(OutputFormat(kind="trl", box_format=box_format, shard_rows=shard_rows), "demo")


def test_registered_under_its_kind() -> None:
    assert WRITERS["trl"] is TrlWriter


@pytest.mark.parametrize(("source", "blocks"), [
    ("<image>\nDescribe it.", [IMAGE, text("Describe it.")]),
    ("<image>\n<image>\nWhich one?", [IMAGE, IMAGE, text("Which one?")]),
    ("Look at <image>\nthis.", [text("Look at"), IMAGE, text("this.")]),
    ("Compare <image> and <image>.", [text("Compare"), IMAGE, text("and"), IMAGE, text(".")]),
    ("<image>", [IMAGE]),
    ("No image here, and  two spaces.", [text("No image here, and  two spaces.")]),
])
def test_content_blocks_put_each_image_in_place(source: str, blocks: list[dict[str, str]]) -> None:
    assert content_blocks(source) == blocks


def test_multi_image_record() -> None:
    assert writer().to_record(multi_image_sample()) == {
        "id": "hand/2/compare/0",
        "images": ["img/a.png", "img/b.png"],
        "messages": [{"role": "user", "content": [IMAGE, IMAGE, text("Which one is red?")]},
                     {"role": "assistant", "content": [text("The first.")]},
                     {"role": "user", "content": [text("And the second?")]},
                     {"role": "assistant", "content": [text("Blue.")]}],
    }


def test_image_blocks_are_exactly_type_image() -> None:
    rec = writer().to_record(image_sample())
    block = rec["messages"][0]["content"][0]
    assert block == {"type": "image"} and list(block) == ["type"]


def test_system_turn_is_a_system_message_of_text_blocks() -> None:
    assert writer().to_record(system_sample())["messages"] == [
        {"role": "system", "content": [text("Answer in one word.")]},
        {"role": "user", "content": [IMAGE, text("What colour is it?")]},
        {"role": "assistant", "content": [text("Red.")]},
    ]


@pytest.mark.parametrize("box_format", sorted(BOXES))
def test_box_markers_render_in_each_box_format(box_format: str) -> None:
    kite, whole = BOXES[box_format]
    assert writer(box_format).to_record(boxed_sample())["messages"] == [
        {"role": "user", "content": [IMAGE, text(f"The region {whole} holds what? Give its box.")]},
        {"role": "assistant", "content": [text(f"A kite at {kite}.")]},
    ]


def test_encode_is_one_json_line() -> None:
    assert writer().encode(image_sample()) == (
        '{"id":"hand/1/caption/0","images":["img/a.png"],"messages":[{"role":"user","content":[{"type":"image"},'
        '{"type":"text","text":"Describe the image briefly."}]},{"role":"assistant","content":[{"type":"text",'
        '"text":"A red square."}]}]}')


@pytest.fixture
def written(tmp_path: Path) -> tuple[list[Path], Path]:
    """all_samples() written as TRL parquet + save_to_disk; (files, image root)."""
    root = make_image_root(tmp_path)
    w = writer()
    return w.write([w.encode(s) for s in all_samples()], tmp_path / "trl", str(root)), root


def test_parquet_round_trip(written: tuple[list[Path], Path], tmp_path: Path) -> None:
    from datasets import Image, List, load_from_disk

    files, root = written
    expected = [writer().to_record(s) for s in all_samples()]
    for ds in (load_parquet(files[:1], tmp_path / "cache"), load_from_disk(str(files[1]))):
        assert ds.column_names == ["id", "images", "messages"]
        assert ds.features["images"] == List(Image())
        assert ds["id"] == [r["id"] for r in expected]
        # Arrow structs give every block both fields: an image block reads back with "text": None.
        assert ds["messages"] == [[{"role": m["role"], "content": [{"text": None, **b} for b in m["content"]]}
                                   for m in r["messages"]] for r in expected]
        stored = undecoded(ds)["images"]
        assert [[im["bytes"] for im in row] for row in stored] == [[(root / p).read_bytes() for p in r["images"]]
                                                                  for r in expected]


def test_our_output_passes_the_trl_validator(written: tuple[list[Path], Path]) -> None:
    files, _ = written
    for path in (files[0].parent.parent, files[0], files[1]):
        assert validate_file(path, "trl") == [], path


CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}:{% for c in m['content'] %}"
                 "{% if c['type'] == 'image' %}<image>{% else %} {{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}")
#: 8x8 crops in 4x4 patches, every patch kept: 4 image tokens per image.
TOKENS_PER_IMAGE = 4


def tiny_llava_processor():
    """A LLaVA processor assembled here: a word-level tokenizer with a 3-token vocabulary and `<image>` as a
    special token, and a CLIP image processor at 8x8 pixels. Nothing is downloaded."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlavaProcessor, PreTrainedTokenizerFast
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tk = Tokenizer(models.WordLevel(vocab={"<pad>": 0, "<unk>": 1, "<image>": 2}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>",
                                  additional_special_tokens=["<image>"])
    images = CLIPImageProcessorPil(size={"shortest_edge": 8}, crop_size={"height": 8, "width": 8})
    return LlavaProcessor(image_processor=images, tokenizer=tok, patch_size=4, vision_feature_select_strategy="full",
                          chat_template=CHAT_TEMPLATE)


def test_trl_reads_our_output_through_its_collator(written: tuple[list[Path], Path], tmp_path: Path) -> None:
    from trl.data_utils import prepare_multimodal_messages
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    files, _ = written
    ds = load_parquet(files[:1], tmp_path / "cache")
    n_images = [len(s.images) for s in all_samples()]
    assert n_images == [1, 2, 0, 1, 0, 1]
    rows = [ds[i] for i in range(len(ds))]
    for row, n in zip(rows, n_images):
        filled = [b["image"] for m in prepare_multimodal_messages(row["messages"], row["images"])
                  for b in m["content"] if b["type"] == "image"]
        assert filled == row["images"] and len(filled) == n

    processor = tiny_llava_processor()
    batch = DataCollatorForVisionLanguageModeling(processor)(rows)
    assert batch["pixel_values"].shape == (sum(n_images), 3, 8, 8)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert (batch["input_ids"] == image_id).sum(dim=1).tolist() == [n * TOKENS_PER_IMAGE for n in n_images]
    assert batch["labels"].shape == batch["input_ids"].shape
