"""The transformers backend on a tiny, randomly initialised LLaVA (CLIP tower + Llama) built from configs,
saved with `save_pretrained` and loaded back through `from_pretrained` like a real checkpoint.

Its weights are random, so its replies are random bytes: this test checks the STRUCTURE of what the describe
stage makes of them (one item per image, lineage, raw output kept), never their content.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.describe.config import DescribeSection
from pipeline.describe.stage import DescribeStage
from schemas.record import AnnotationRecord
from schemas.reject import Reject
from sources.image_glob import ImageGlobOptions, ImageGlobSource

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "images"


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.describe.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


def _assert_described(out: list, records: list, model: Path, family: str, convention: str) -> None:
    """One item per record, in order. Random weights: a record either parses (its structure is checked) or
    is an unparseable reject carrying the raw replies."""
    assert [x.id if isinstance(x, AnnotationRecord) else x.record for x in out] == [r.id for r in records]
    for x in out:
        if isinstance(x, AnnotationRecord):
            assert x.describe is not None and x.describe["model"] == str(model)
            assert x.describe["family"] == family and x.describe["box_convention"] == convention
            assert set(x.describe["raw_output"]) == {"caption", "detect"}
            assert len(x.captions) == 1 and x.captions[0].detailed and x.captions[0].text
            assert all(o.box.inside_image(0) for o in x.objects)
        else:
            assert isinstance(x, Reject) and x.reason == "describe_unparseable" and x.stage == "describe"
            assert x.lineage is not None and x.lineage.model == str(model)
            assert set(json.loads(x.lineage.raw_output or "{}")) == {"caption", "detect"}


def test_tiny_llava_describes_demo_images(tiny_llava: Path) -> None:
    records = list(ImageGlobSource(ImageGlobOptions(kind="images", path="*.jpg"), DEMO).read())
    assert len(records) == 12 and all(isinstance(r, AnnotationRecord) for r in records)
    cfg = DescribeSection(model=str(tiny_llava), batch_size=5, max_new_tokens=6)
    stage = DescribeStage(cfg=cfg, image_root=str(DEMO))
    stage.setup()
    assert stage.backend.family == "llava"  # read from the saved config's model_type
    out = stage.process_batch(list(records))
    assert len(out) == 12
    _assert_described(out, records, tiny_llava, "llava", "norm1")


# ---- Qwen2-VL without torchvision ------------------------------------------------------------------------
#
# Qwen2-VL's AutoProcessor also loads a video processor, which needs torchvision (not installed here); the
# backend then assembles an image-only processor (Qwen2VLImageProcessorPil + tokenizer) and logs why. The tiny
# model is random, so only the STRUCTURE of the stage's output is checked, never the words or boxes.


@pytest.fixture(scope="module")
def tiny_qwen2vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.describe.tiny import build_tiny_qwen2vl

    return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny_qwen2vl"))


def _torchvision_missing() -> bool:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return True
    return False


def test_tiny_qwen2vl_loads_through_from_pretrained(tiny_qwen2vl: Path, caplog: pytest.LogCaptureFixture) -> None:
    from transformers import Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from pipeline.describe.hf_backend import TransformersBackend

    with caplog.at_level("WARNING", logger="pipeline.describe.hf_backend"):
        backend = TransformersBackend(DescribeSection(model=str(tiny_qwen2vl), max_new_tokens=4))
    assert backend.family == "qwen2vl"  # read from the saved config's model_type
    assert isinstance(backend.model, Qwen2VLForConditionalGeneration)
    assert not backend.encoder_decoder
    assert backend.processor.tokenizer.padding_side == "left"
    if _torchvision_missing():
        assert isinstance(backend.processor.image_processor, Qwen2VLImageProcessorPil)
        assert backend.processor.video_processor is None
        assert any("needs torchvision" in r.getMessage() and "image-only processor" in r.getMessage()
                   for r in caplog.records)
    text = backend._text("Describe this image in detail.")
    assert "<|vision_start|><|image_pad|><|vision_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_tiny_qwen2vl_describes_demo_images(tiny_qwen2vl: Path) -> None:
    records = sorted(ImageGlobSource(ImageGlobOptions(kind="images", path="*.jpg"), DEMO).read(),
                     key=lambda r: r.id)[:3]
    assert len(records) == 3 and all(isinstance(r, AnnotationRecord) for r in records)
    cfg = DescribeSection(model=str(tiny_qwen2vl), batch_size=2, max_new_tokens=6)  # 2 + 1: a ragged last batch
    stage = DescribeStage(cfg=cfg, image_root=str(DEMO))
    stage.setup()
    assert stage.backend.family == "qwen2vl"
    replies = stage.backend.generate([stage._load(r) for r in records[:2]], "Describe this image in detail.")
    assert len(replies) == 2 and all(isinstance(r.text, str) and r.input_size is None for r in replies)
    out = stage.process_batch(list(records))
    assert len(out) == 3
    _assert_described(out, records, tiny_qwen2vl, "qwen2vl", "qwen2vl")


@pytest.fixture(scope="module")
def tiny_qwen25vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.describe.tiny import build_tiny_qwen2vl

    return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny_qwen25vl"), version="2.5")


def test_tiny_qwen25vl_describes_demo_images(tiny_qwen25vl: Path) -> None:
    """Qwen2.5-VL (random weights: structure only): its grounding replies are parsed as `bbox_2d` JSON."""
    records = sorted(ImageGlobSource(ImageGlobOptions(kind="images", path="*.jpg"), DEMO).read(),
                     key=lambda r: r.id)[:2]
    cfg = DescribeSection(model=str(tiny_qwen25vl), batch_size=2, max_new_tokens=6)
    stage = DescribeStage(cfg=cfg, image_root=str(DEMO))
    stage.setup()
    assert stage.backend.family == "qwen25vl"
    assert type(stage.backend.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    out = stage.process_batch(list(records))
    assert [x.id if isinstance(x, AnnotationRecord) else x.record for x in out] == [r.id for r in records]
    for x in out:
        if isinstance(x, AnnotationRecord):
            assert x.describe is not None and x.describe["box_convention"] == "qwen25vl"
            assert set(x.describe["raw_output"]) == {"caption", "detect"}
        else:
            assert isinstance(x, Reject) and x.reason == "describe_unparseable" and x.stage == "describe"
            assert set(json.loads(x.lineage.raw_output or "{}")) == {"caption", "detect"}


# ---- Florence-2 ------------------------------------------------------------------------------------------
#
# A tiny random Florence-2 (DaViT tower + BART encoder-decoder, native in transformers), with a tokenizer holding
# `<image>`, `<loc_0>`..`<loc_999>` and the task tokens. The backend passes the task token as the whole text;
# Florence2Processor rewrites it into its question and prepends the image tokens. Random weights: only the
# STRUCTURE of what the stage makes of the replies is checked, never their words or boxes.


@pytest.fixture(scope="module")
def tiny_florence2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.describe.tiny import build_tiny_florence2

    return build_tiny_florence2(tmp_path_factory.mktemp("tiny_florence2"))


def test_tiny_florence2_loads_through_from_pretrained(tiny_florence2: Path) -> None:
    from transformers import Florence2ForConditionalGeneration, Florence2Processor

    from pipeline.describe.hf_backend import TransformersBackend

    backend = TransformersBackend(DescribeSection(model=str(tiny_florence2), max_new_tokens=4))
    assert backend.family == "florence2"  # read from the saved config's model_type
    assert isinstance(backend.model, Florence2ForConditionalGeneration)
    assert isinstance(backend.processor, Florence2Processor)
    assert backend.encoder_decoder
    assert backend._text("<OD>") == "<OD>"  # the task token is the whole text, no chat template
    tok = backend.processor.tokenizer
    assert all(tok.convert_tokens_to_ids(t) != tok.unk_token_id for t in ("<loc_0>", "<loc_999>", "<OD>", "<image>"))
    inputs = backend.processor(text=["<OD>"], images=[_demo_image()], return_tensors="pt")
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(backend.model.config.image_token_id) == backend.processor.num_image_tokens
    # the processor asks the task's question, not the task token itself
    assert "Locate the objects" in tok.decode(ids) and "<OD>" not in tok.decode(ids)


def _demo_image():  # -> PIL.Image.Image
    from PIL import Image

    with Image.open(sorted(DEMO.glob("*.jpg"))[0]) as im:
        return im.convert("RGB")


def test_tiny_florence2_describes_demo_images(tiny_florence2: Path) -> None:
    records = sorted(ImageGlobSource(ImageGlobOptions(kind="images", path="*.jpg"), DEMO).read(),
                     key=lambda r: r.id)[:3]
    assert len(records) == 3 and all(isinstance(r, AnnotationRecord) for r in records)
    cfg = DescribeSection(model=str(tiny_florence2), batch_size=2, max_new_tokens=6)  # 2 + 1: a ragged last batch
    stage = DescribeStage(cfg=cfg, image_root=str(DEMO))
    stage.setup()
    assert stage.backend.family == "florence2"
    replies = stage.backend.generate([stage._load(r) for r in records[:2]], "<OD>")
    assert len(replies) == 2 and all(isinstance(r.text, str) and r.input_size is None for r in replies)
    assert all(r.text.startswith("</s>") for r in replies)  # decoder start kept: special tokens are not skipped
    out = stage.process_batch(list(records))
    assert len(out) == 3
    _assert_described(out, records, tiny_florence2, "florence2", "florence2")


# ---- SmolVLM / Idefics3 ------------------------------------------------------------------------------------
#
# A tiny random Idefics3ForConditionalGeneration (SmolVLM's architecture) with its processor: the PIL image
# processor (no torchvision), no tiling, a byte tokenizer with Idefics3's image markers and a minimal chat
# template. Random weights: only the STRUCTURE of the stage's output is checked, never the words or boxes.


@pytest.fixture(scope="module")
def tiny_idefics3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.describe.tiny import build_tiny_idefics3

    return build_tiny_idefics3(tmp_path_factory.mktemp("tiny_idefics3"))


def test_tiny_idefics3_loads_through_from_pretrained(tiny_idefics3: Path) -> None:
    from transformers import Idefics3ForConditionalGeneration, Idefics3Processor

    from pipeline.describe.hf_backend import TransformersBackend

    backend = TransformersBackend(DescribeSection(model=str(tiny_idefics3), max_new_tokens=4))
    assert backend.family == "smolvlm"  # model_type idefics3, read from the saved config
    assert isinstance(backend.model, Idefics3ForConditionalGeneration)
    assert isinstance(backend.processor, Idefics3Processor)
    assert not backend.encoder_decoder and backend.processor.tokenizer.padding_side == "left"
    text = backend._text("Describe this image in detail.")
    assert "<image>" in text and text.endswith("Assistant:")
    inputs = backend.processor(text=[text], images=[[_demo_image()]], return_tensors="pt", padding=True)
    n_image = inputs["input_ids"][0].tolist().count(backend.model.config.image_token_id)
    assert n_image == backend.processor.image_seq_len == 4  # one untiled 32x32 image: 4x4 patches, pixel-shuffled


def test_tiny_idefics3_describes_demo_images(tiny_idefics3: Path) -> None:
    records = sorted(ImageGlobSource(ImageGlobOptions(kind="images", path="*.jpg"), DEMO).read(),
                     key=lambda r: r.id)[:3]
    cfg = DescribeSection(model=str(tiny_idefics3), batch_size=2, max_new_tokens=6)  # 2 + 1: a ragged last batch
    stage = DescribeStage(cfg=cfg, image_root=str(DEMO))
    stage.setup()
    assert stage.backend.family == "smolvlm"
    replies = stage.backend.generate([stage._load(r) for r in records[:2]], "Describe this image in detail.")
    assert len(replies) == 2 and all(isinstance(r.text, str) and r.input_size is None for r in replies)
    out = stage.process_batch(list(records))
    assert len(out) == 3
    _assert_described(out, records, tiny_idefics3, "smolvlm", "norm1")
