"""Shared pieces of the golden end-to-end tests: image roots for the source fixtures, and the
source -> adapt -> validate -> LLaVA record chain whose full output the goldens pin down.

The image roots mirror those of tests/sources/*.py: tiny PIL images at the paths each fixture names
(the sources only check that the files exist; sizes come from the annotation files where they matter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from outputs.llava import LlavaWriter
from pipeline.adapt import AdaptStage
from pipeline.validate import ValidateStage
from schemas.recipe import OutputFormat
from schemas.reject import Reject
from schemas.sample import Sample
from sources.registry import REGISTRY

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources"


def _save(path: Path, size: tuple[int, int], fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 200)).save(path, format=fmt)


# ---- image roots (the same files tests/sources/*.py create) --------------------------------------------

def coco_root(root: Path) -> Path:
    """tests/sources/test_coco.py: val2017 file names at the root."""
    for i in (397133, 37777, 252219):
        _save(root / f"{i:012d}.jpg", (4, 4))
    return root


def vqa_root(root: Path) -> Path:
    """tests/sources/test_vqa.py: COCO val2014 file names at the root."""
    for i in (262148, 393225, 393226, 393227, 297147, 195024):
        _save(root / f"COCO_val2014_{i:012d}.jpg", (4, 4))
    return root


def flat_root(root: Path) -> Path:
    """tests/sources/test_gqa_textvqa_ocrvqa.py: `<image id>.jpg` at the root (GQA, TextVQA, OCR-VQA)."""
    for name in ("2370799", "2400103", "n336443", "003a8ae2ef43b901", "0054c91397f2fe05", "00685bc495504d61",
                 "fe5f0d8a1b1f1a04", "1590275", "0394726", "1579125", "0842329"):
        _save(root / f"{name}.jpg", (4, 4))
    return root


#: RefCOCO fixture image sizes (image 3 is deliberately absent), as in tests/sources/test_refcoco.py.
REFCOCO_SIZES = {1: (64, 48), 2: (40, 40), 5: (20, 20)}


def refcoco_root(root: Path) -> Path:
    for i, size in REFCOCO_SIZES.items():
        _save(root / "train2014" / f"COCO_train2014_{i:012d}.jpg", size)
    return root


def scienceqa_root(root: Path) -> Path:
    """Problem 4's image (test) is deliberately absent, as in tests/sources/test_scienceqa.py."""
    for rel in ("images/train/1", "images/val/3"):
        _save(root / rel / "image.png", (12, 8))
    return root


def karpathy_root(root: Path) -> Path:
    """tests/sources/test_karpathy.py: Flickr30k images (not 1000268201.jpg) and the COCO Karpathy ones."""
    rels = [f"flickr30k-images/{f}" for f in ("1000092795.jpg", "10002456.jpg", "1000366164.jpg",
                                               "1000523639.jpg")]
    rels += ["val2014/COCO_val2014_000000391895.jpg", "val2014/COCO_val2014_000000522418.jpg",
             "train2014/COCO_train2014_000000318556.jpg"]
    for rel in rels:
        _save(root / rel, (10, 10))
    return root


def image_folder_root(tmp_path: Path) -> Path:
    """tests/sources/test_image_folder.py: a class tree with a stray file, hidden entries, a non-image and a
    symlink that leaves the root. Returns the image root (tmp_path/images)."""
    r = tmp_path / "images"
    for rel in ("pets/cat/b.jpg", "pets/cat/a.PNG", "pets/cat/sub/c.jpeg", "pets/dog/x.jpg", "pets/stray.jpg",
                "pets/.hidden/z.jpg", "pets/cat/.thumb.jpg", "pets/dog/photo.gif"):
        _save(r / rel, (6, 4), "PNG")
    (r / "pets/dog/notes.txt").write_text("not an image")
    _save(tmp_path / "secret.jpg", (6, 4), "PNG")
    (r / "pets/dog/link.jpg").symlink_to(tmp_path / "secret.jpg")
    return r


def generic_root(root: Path) -> Path:
    for name in ("a.jpg", "b.jpg"):
        _save(root / name, (8, 8))
    return root


# ---- the chain ----------------------------------------------------------------------------------------

def run_golden(options: dict[str, Any], image_root: Path, tasks: list[str] | None = None
               ) -> tuple[list[dict[str, Any]], list[tuple[str, str | None]]]:
    """Read `options` (a source's options mapping, with `kind`) from `image_root`, adapt (seed 0, bundled
    templates, no grouping), validate, and return (LLaVA records of the accepted samples, (reason, record)
    of every reject from the source, adapt and validate, in order; a validate reject gives its sample id)."""
    cls = REGISTRY[options["kind"]]
    items = list(cls(cls.Options.model_validate(options), image_root).read())
    adapt = AdaptStage(seed=0, tasks=tasks, styles={}, template_dirs=[], group_max_turns=None)
    items = ValidateStage().process_batch(adapt.process_batch(items))
    writer = LlavaWriter(OutputFormat(kind="llava"), "g")
    records = [writer.to_record(x) for x in items if isinstance(x, Sample)]
    # A sample rejected by validate has no source record: its sample id stands in.
    rejects = [(x.reason, x.record if x.record is not None else x.sample_id) for x in items if isinstance(x, Reject)]
    leftover = [x for x in items if not isinstance(x, (Sample, Reject))]
    assert not leftover, f"items neither adapted nor rejected: {leftover}"
    return records, rejects
