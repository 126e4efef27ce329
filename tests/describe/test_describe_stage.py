"""The `images` source and the describe stage with a scripted backend (no model): exact records and rejects."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pipeline.describe.backend import Reply
from pipeline.describe.config import DescribeSection
from pipeline.describe.stage import DescribeStage
from pipeline.ray_runner import run_local
from schemas.record import AnnotationRecord
from schemas.reject import REASONS, Reject
from sources.base import SourceError
from sources.image_glob import ImageGlobOptions, ImageGlobSource
from sources.registry import REGISTRY

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "images"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An image root: two demo photos in a folder, a PNG made here, a broken JPEG and a text file."""
    (tmp_path / "pics" / "sub").mkdir(parents=True)
    shutil.copy(DEMO / "000000000001.jpg", tmp_path / "pics" / "b.jpg")
    shutil.copy(DEMO / "000000000002.jpg", tmp_path / "pics" / "sub" / "a.jpg")
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "pics" / "c.png")
    (tmp_path / "pics" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "pics" / "notes.txt").write_text("not an image")
    return tmp_path


def _source(root: Path, path: str, **kw: object) -> ImageGlobSource:
    return ImageGlobSource(ImageGlobOptions(kind="images", path=path, **kw), root)


def test_images_source_folder_sorted_sizes_from_header_and_unreadable_rejected(root: Path) -> None:
    items = list(_source(root, "pics").read())
    assert REGISTRY["images"] is ImageGlobSource
    recs = [x for x in items if isinstance(x, AnnotationRecord)]
    rejects = [x for x in items if isinstance(x, Reject)]
    assert [(r.id, r.image.width, r.image.height) for r in recs if r.image] == [
        ("pics/b.jpg", 320, 320), ("pics/c.png", 40, 20), ("pics/sub/a.jpg", 320, 213)]
    assert all(r.captions == [] and r.objects == [] and r.source_kind == "images" for r in recs)
    assert [(r.reason, r.record) for r in rejects] == [("image_unreadable", "pics/broken.jpg")]
    assert "pics/broken.jpg" in rejects[0].message and "replace the file" in rejects[0].message


def test_images_source_glob_limit_and_errors(root: Path) -> None:
    got = [(type(x).__name__, x.id if isinstance(x, AnnotationRecord) else x.record)
           for x in _source(root, "pics/**/*.jpg", limit=2).read()]
    assert got == [("AnnotationRecord", "pics/b.jpg"), ("Reject", "pics/broken.jpg"),
                   ("AnnotationRecord", "pics/sub/a.jpg")]  # the limit counts records, not rejects
    assert [x.id for x in _source(root, "pics/*.png").read() if isinstance(x, AnnotationRecord)] == ["pics/c.png"]
    with pytest.raises(SourceError, match="folder not found: .*nowhere"):
        list(_source(root, "nowhere").read())
    with pytest.raises(SourceError, match="no image files match"):
        list(_source(root, "pics/*.gif").read())
    with pytest.raises(ValueError, match="escapes the image root"):
        ImageGlobOptions(kind="images", path="../outside")


class ScriptedBackend:
    """Answers by image width, in Qwen2-VL's conventions; counts batches so tests can check batching."""

    family = "qwen2vl"
    model_id = "scripted"

    def __init__(self, cfg: DescribeSection) -> None:
        self.batches: list[tuple[int, str]] = []

    def generate(self, images: list[Image.Image], prompt: str) -> list[Reply]:
        self.batches.append((len(images), prompt))
        out = []
        for im in images:
            if prompt.startswith("Describe"):
                out.append(Reply(f"A picture {im.size[0]} pixels wide.<|im_end|>"))
            elif im.size[0] == 40:
                out.append(Reply("<|object_ref_start|>red<|object_ref_end|><|box_start|>(0,0),(500"))  # cut off
            else:
                out.append(Reply("<|object_ref_start|>thing<|object_ref_end|><|box_start|>(100,200),(500,750)"
                                 "<|box_end|><|object_ref_start|>speck<|object_ref_end|><|box_start|>(10,10),"
                                 "(10,20)<|box_end|><|im_end|>"))
        return out

    def close(self) -> None:
        pass


def test_describe_stage_adds_caption_boxes_lineage_and_rejects_unparseable(root: Path) -> None:
    items = list(_source(root, "pics").read())
    cfg = DescribeSection(model="scripted", batch_size=2, gpus_per_actor=0.5, actors=3, max_new_tokens=64)
    stage = DescribeStage(cfg=cfg, image_root=str(root), backend_factory=ScriptedBackend)
    assert stage.needs_actor and stage.num_gpus == 0.5 and stage.concurrency == 3 and stage.name == "describe"
    out = run_local(items, [stage])
    assert [type(x).__name__ for x in out] == ["AnnotationRecord", "Reject", "Reject", "AnnotationRecord"]
    # 3 decodable images, batch size 2: two batches per task, each task its own prompt
    assert stage.backend.batches == [(2, "Describe this image in detail."), (1, "Describe this image in detail."),
                                     (2, cfg.resolved("qwen2vl")[1]), (1, cfg.resolved("qwen2vl")[1])]
    rec = out[0]
    assert isinstance(rec, AnnotationRecord)
    assert [(c.text, c.ann_id, c.detailed) for c in rec.captions] == [
        ("A picture 320 pixels wide.", "describe:scripted", True)]
    assert [(o.category, o.box.x1, o.box.y1, o.box.x2, o.box.y2, o.ann_id) for o in rec.objects] == [
        ("thing", 32.0, 64.0, 160.0, 240.0, "describe:scripted:0")]
    assert rec.describe is not None
    assert rec.describe["model"] == "scripted" and rec.describe["box_convention"] == "qwen2vl"
    assert rec.describe["sampling"] == {"temperature": 0.0, "top_p": 1.0, "max_new_tokens": 64, "seed": 0}
    assert rec.describe["raw_output"]["caption"] == "A picture 320 pixels wide.<|im_end|>"
    assert rec.describe["dropped_boxes"] == ["'speck': box (3.2, 3.2, 3.2, 6.4) has no area inside the 320x320 image"]
    assert rec.describe["prompts"] == {"caption": "Describe this image in detail.",
                                       "detect": cfg.resolved("qwen2vl")[1]}
    source_reject, bad = out[1], out[2]
    assert isinstance(source_reject, Reject) and source_reject.stage == "source"  # passed through untouched
    assert isinstance(bad, Reject) and bad.reason == "describe_unparseable" and bad.stage == "describe"
    assert bad.record == "pics/c.png" and "describe_unparseable" in REASONS
    assert bad.lineage is not None and bad.lineage.model == "scripted"
    assert json.loads(bad.lineage.raw_output or "")["detect"] == \
        "<|object_ref_start|>red<|object_ref_end|><|box_start|>(0,0),(500"


def test_describe_stage_backend_failure_and_undecodable_image(root: Path) -> None:
    class Failing(ScriptedBackend):
        def generate(self, images: list[Image.Image], prompt: str) -> list[Reply]:
            raise RuntimeError("CUDA out of memory")

    recs = [x for x in _source(root, "pics").read() if isinstance(x, AnnotationRecord)]
    (root / "pics" / "c.png").write_bytes(b"gone bad after the scan")
    stage = DescribeStage(cfg=DescribeSection(model="m", tasks=["caption"]), image_root=str(root),
                          backend_factory=Failing)
    out = stage.process_batch(list(recs))
    assert [(x.reason, x.record) for x in out if isinstance(x, Reject)] == [
        ("describe_failed", "pics/b.jpg"), ("image_unreadable", "pics/c.png"), ("describe_failed", "pics/sub/a.jpg")]
    assert "CUDA out of memory" in out[0].message  # type: ignore[union-attr]


def test_describe_section_validation() -> None:
    with pytest.raises(ValueError, match="needs describe.base_url"):
        DescribeSection(model="m", backend="openai", family="qwen25vl")
    with pytest.raises(ValueError, match="set describe.family"):
        DescribeSection(model="m", backend="openai", base_url="http://x/v1")
    with pytest.raises(ValueError, match="extra"):
        DescribeSection(model="m", batchsize=4)  # type: ignore[call-arg]
    cfg = DescribeSection(model="m", detect_prompt="Boxes please.", box_convention="norm1")
    assert cfg.resolved("florence2") == ("<MORE_DETAILED_CAPTION>", "Boxes please.", "norm1")
