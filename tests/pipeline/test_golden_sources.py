"""Golden end-to-end tests: each registered source's tiny fixture -> adapt -> validate -> LLaVA records.

One test per kind in sources/registry.py. Each reads the fixture in tests/assets/sources/<family>/ with the
image root its tests/sources/*.py test builds (see golden_helpers.py), adapts it with seed 0, the bundled
templates and no grouping, validates, and compares every accepted sample's LLaVA record (box_format
llava: [0,1] of the image padded to a centred square, 2 decimals) and the (reason, record) of every reject,
from the source, adapt or validate, in order, with the literal lists below.

The expected values were generated once and then checked by hand against the fixtures and
templates/<task>/*.jinja2: the VQA / OCR / short-answer questions end with "\\nAnswer the question using a
single word or phrase.", multiple choice ends with "Answer with the option's letter from the given
choices directly." and is answered with the letter, source text that holds a literal <image> comes out
escaped, and each box string was worked out from the fixture's box and image size.
A change to a template's wording, to the seeded style choice or to a source's record/reject order makes
these fail: regenerate them and check them again the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from golden_helpers import (ASSETS, coco_root, flat_root, generic_root, image_folder_root, karpathy_root,
                            refcoco_root, run_golden, scienceqa_root, vqa_root)
from outputs.llava import LlavaWriter
from pipeline.adapt import AdaptStage
from pipeline.validate import ValidateStage
from schemas.box import parse_box, render_box
from schemas.recipe import OutputFormat
from schemas.record import AnnotationRecord
from schemas.sample import Sample
from sources.coco_captions import CocoCaptionsSource
from sources.coco_instances import CocoInstancesSource
from sources.registry import REGISTRY

COCO_CAPTIONS = str(ASSETS / "coco" / "captions_val2017.json")
COCO_INSTANCES = str(ASSETS / "coco" / "instances_val2017.json")
VQA = ASSETS / "vqa"
UNC = str(ASSETS / "refcoco" / "refs(unc).p")
UMD = str(ASSETS / "refcoco" / "refs(umd).p")


def _row(sid: str, image: str | None, human: str, gpt: str) -> dict[str, Any]:
    """One LLaVA record of a single-exchange sample (`image` None: a text-only row, no `image` key)."""
    row: dict[str, Any] = {"id": sid}
    if image is not None:
        row["image"] = image
    row["conversations"] = [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    return row


# ---- COCO ------------------------------------------------------------------------------------------------

def test_golden_coco_captions(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "coco_captions", "path": COCO_CAPTIONS}, coco_root(tmp_path))
    assert records == [
        # 397133 has captions 2 and 3; the seeded pick is 3, whose literal <image> is escaped.
        _row("coco_captions/397133/caption_short/0", "000000397133.jpg",
             "<image>\nSum up what this picture shows in a single sentence.",
             "A man holds a sign that says &lt;image&gt;."),
        _row("coco_captions/37777/caption_short/0", "000000037777.jpg",
             "<image>\nWhat is going on in this image? Keep your answer short.",
             "A kitchen with a stove and a sink."),
    ]
    assert rejects == [("missing_key", "7"), ("empty_caption", "4"), ("empty_caption", "5"), ("missing_key", "8"),
                       ("unknown_image", "6")]


def test_golden_coco_instances(tmp_path: Path) -> None:
    # Image 397133 only (limit 1): person 10, dog 11, a crowd person 12 and 13 of unknown category 99.
    # The crowd region makes "person" uncountable, so only the dog is counted. Image 37777 is left out
    # of this golden: see test_counting_does_not_undercount_after_source_rejects.
    records, rejects = run_golden({"kind": "coco_instances", "path": COCO_INSTANCES, "limit": 1},
                                  coco_root(tmp_path))
    assert records == [
        _row("coco_instances/397133/counting/0", "000000397133.jpg",
             "<image>\nHow many dogs are there in the image?",
             "1"),
    ]
    assert rejects == [("unknown_category", "13")]


def _merged_coco(tmp_path: Path, image_ids: set[str]) -> list[AnnotationRecord]:
    """COCO instances records with the captions of the same image from the captions file.

    No source gives one record both captions and boxes and no stage joins records, so grounded_caption
    only runs on a record merged like this."""
    root = coco_root(tmp_path)
    caps = {r.id: r.captions for r in CocoCaptionsSource(
        CocoCaptionsSource.Options(kind="coco_captions", path=COCO_CAPTIONS), root).read()
        if isinstance(r, AnnotationRecord)}
    inst = [r for r in CocoInstancesSource(
        CocoInstancesSource.Options(kind="coco_instances", path=COCO_INSTANCES), root).read()
        if isinstance(r, AnnotationRecord) and r.id in image_ids]
    return [r.model_copy(update={"captions": caps[r.id]}) for r in inst]


def _llava(items: list[Any]) -> list[dict[str, Any]]:
    items = ValidateStage().process_batch(items)
    assert all(isinstance(x, Sample) for x in items), items
    writer = LlavaWriter(OutputFormat(kind="llava"), "g")
    return [writer.to_record(x) for x in items]


def test_golden_coco_grounded_caption(tmp_path: Path) -> None:
    # 640x427 padded to 640x640 (106.5 px above and below). Person [10, 20, 60, 50] ->
    # [10/640, 126.5/640, 60/640, 156.5/640]; dog [600, 400, 640, 427] -> [600/640, 506.5/640, 1, 533.5/640].
    items = AdaptStage(seed=0, tasks=["grounded_caption"], styles={}, template_dirs=[],
                       group_max_turns=None).process_batch(_merged_coco(tmp_path, {"397133"}))
    assert _llava(items) == [
        _row("coco_instances/397133/grounded_caption/0", "000000397133.jpg",
             "<image>\nGive a short caption of this image, then name each object in it with its box.",
             "A cook prepares food in a kitchen.\n"
             "Objects: person [0.02, 0.20, 0.09, 0.24], dog [0.94, 0.79, 1.00, 0.83]."),
    ]


def test_counting_does_not_undercount_after_source_rejects(tmp_path: Path) -> None:
    records, _ = run_golden({"kind": "coco_instances", "path": COCO_INSTANCES}, coco_root(tmp_path),
                            tasks=["counting"])
    chair_counts = [r["conversations"][1]["value"] for r in records
                    if r["image"] == "000000037777.jpg" and "chair" in r["conversations"][0]["value"]]
    # The file annotates 4 chairs on 37777: either the count says so or the category is not asked about.
    assert all(c == "4" for c in chair_counts), chair_counts


def test_rendered_llava_boxes_parse_back(tmp_path: Path) -> None:
    items = AdaptStage(seed=0, tasks=["grounded_caption"]).process_batch(_merged_coco(tmp_path, {"37777"}))
    samples = [x for x in ValidateStage().process_batch(items) if isinstance(x, Sample)]
    assert [s.id for s in samples] == ["coco_instances/37777/grounded_caption/0"]
    boxes = [b for s in samples for b in s.boxes]
    assert len(boxes) == 2
    for b in boxes:
        text = render_box(b, "llava")
        parse_box(text, "llava", b.width, b.height)  # raises on a box with no area


# ---- VQA family ------------------------------------------------------------------------------------------

def test_golden_vqav2(tmp_path: Path) -> None:
    options = {"kind": "vqav2", "questions": str(VQA / "v2_OpenEnded_mscoco_val2014_questions.json"),
               "annotations": str(VQA / "v2_mscoco_val2014_annotations.json")}
    records, rejects = run_golden(options, vqa_root(tmp_path))
    assert records == [
        _row("vqav2/262148/vqa_short/0", "COCO_val2014_000000262148.jpg",
             "<image>\nLook at the image. Where is he looking?\nAnswer the question using a single word or phrase.",
             "down"),
        _row("vqav2/262148/vqa_short/1", "COCO_val2014_000000262148.jpg",
             "<image>\nWhat are the people in the background doing?\n"
             "Answer the question using a single word or phrase.",
             "watching"),
        _row("vqav2/393225/vqa_short/0", "COCO_val2014_000000393225.jpg",
             "<image>\nLook at the image. Is the bowl made of wood?\n"
             "Answer the question using a single word or phrase.",
             "yes"),
        _row("vqav2/393226/vqa_short/0", "COCO_val2014_000000393226.jpg",
             "<image>\nWhat does the &lt;image&gt; sign say?\nAnswer the question using a single word or phrase.",
             "&lt;image&gt; here"),
    ]
    assert rejects == [("empty_question", "262148002"), ("missing_key", "393226001"), ("empty_answer", "393227000"),
                       ("missing_key", "5"), ("missing_key", "999")]


def test_golden_okvqa(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "okvqa", "questions": str(VQA / "OpenEnded_mscoco_val2014_questions.json"),
                                   "annotations": str(VQA / "mscoco_val2014_annotations.json")},
                                  vqa_root(tmp_path))
    assert records == [
        # race x6, motocross x2, ride x2 -> race; 195024: cat and dog 3 each, cat first.
        _row("okvqa/297147/vqa_short/0", "COCO_val2014_000000297147.jpg",
             "<image>\nWhat sport can you use this for?\nAnswer the question using a single word or phrase.",
             "race"),
        _row("okvqa/195024/vqa_short/0", "COCO_val2014_000000195024.jpg",
             "<image>\nQuestion: Which animal is this?\nAnswer the question using a single word or phrase.",
             "cat"),
    ]
    assert rejects == [("empty_answer", "2971476")]


def test_golden_gqa(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "gqa", "path": str(ASSETS / "gqa" / "val_balanced_questions.json")},
                                  flat_root(tmp_path))
    assert records == [
        _row("gqa/2370799/vqa_short/0", "2370799.jpg",
             "<image>\nQuestion: Is it overcast?\nAnswer the question using a single word or phrase.",
             "no"),
        _row("gqa/2370799/vqa_short/1", "2370799.jpg",
             "<image>\nQuestion: Do the shorts have dark color?\nAnswer the question using a single word or phrase.",
             "yes"),
        _row("gqa/2400103/vqa_short/0", "2400103.jpg",
             "<image>\nWho is wearing the dress?\nAnswer the question using a single word or phrase.",
             "woman"),
    ]
    assert rejects == [("empty_answer", "05451384"), ("missing_key", "0123")]


def test_golden_textvqa(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "textvqa", "path": str(ASSETS / "textvqa" / "TextVQA_0.5.1_val.json")},
                                  flat_root(tmp_path))
    assert records == [
        # TextVQA questions are text-reading (kind "ocr"): the ocr task, majority answer of the ten.
        _row("textvqa/003a8ae2ef43b901/ocr/0", "003a8ae2ef43b901.jpg",
             "<image>\nQuestion: what is the brand of this camera?\n"
             "Answer the question using a single word or phrase.",
             "dakota"),
        _row("textvqa/003a8ae2ef43b901/ocr/1", "003a8ae2ef43b901.jpg",
             "<image>\nwhat does the small white text spell?\nAnswer the question using a single word or phrase.",
             "copenhagen"),
        _row("textvqa/0054c91397f2fe05/ocr/0", "0054c91397f2fe05.jpg",
             "<image>\nQuestion: what number is on the player's jersey?\n"
             "Answer the question using a single word or phrase.",
             "22"),
    ]
    assert rejects == [("empty_question", "34606"), ("empty_answer", "34605")]


def test_golden_ocrvqa(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "ocrvqa", "path": str(ASSETS / "ocrvqa" / "dataset.json")},
                                  flat_root(tmp_path))
    assert records == [
        _row("ocrvqa/1590275/ocr/0", "1590275.jpg",
             "<image>\nQuestion: Who wrote this book?\nAnswer the question using a single word or phrase.",
             "Kathleen Kennedy"),
        _row("ocrvqa/1590275/ocr/1", "1590275.jpg",
             "<image>\nWhat is the title of this book?\nAnswer the question using a single word or phrase.",
             "The Little Book of Knots"),
        _row("ocrvqa/1590275/ocr/2", "1590275.jpg",
             "<image>\nQuestion: What is the genre of this book?\nAnswer the question using a single word or phrase.",
             "Crafts, Hobbies & Home"),
        _row("ocrvqa/1590275/ocr/3", "1590275.jpg",
             "<image>\nQuestion: Is this a comedy book?\nAnswer the question using a single word or phrase.",
             "No"),
        # The answer 1998 is a number in the file.
        _row("ocrvqa/0394726/ocr/0", "0394726.jpg",
             "<image>\nWhat year is on the cover?\nAnswer the question using a single word or phrase.",
             "1998"),
        _row("ocrvqa/0842329/ocr/0", "0842329.jpg",
             "<image>\nWhat is the title of this book?\nAnswer the question using a single word or phrase.",
             "Words of &lt;image&gt; Light"),
        _row("ocrvqa/0842329/ocr/1", "0842329.jpg",
             "<image>\nIs this a religious book?\nAnswer the question using a single word or phrase.",
             "Yes"),
    ]
    assert rejects == [("empty_answer", "0394726_0"), ("bad_value", "1579125")]


# ---- RefCOCO family ----------------------------------------------------------------------------------------
# Image 1 is 64x48, padded to 64x64 (8 px above and below): ref 100 [4, 6, 24, 36] ->
# [4/64, 14/64, 24/64, 44/64] = [0.06, 0.22, 0.38, 0.69]; ref 102 [30, 10, 55, 30] ->
# [30/64, 18/64, 55/64, 38/64] = [0.47, 0.28, 0.86, 0.59]. Image 2 is 40x40: [1, 1, 39, 39] ->
# [0.03, 0.03, 0.97, 0.97]. Image 5 is 20x20: [2, 2, 12, 12] -> [0.10, 0.10, 0.60, 0.60].

REFCOCO_REJECTS = [("missing_key", "108"), ("bad_value", "102/sent 1004"), ("unknown_annotation", "105"),
                   ("unknown_category", "109"), ("box_invalid", "103"), ("box_outside_image", "104"),
                   ("bad_value", "110"), ("image_missing", "3"), ("unknown_image", "4")]


def test_golden_refcoco_rec(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "refcoco", "refs": UNC, "image_prefix": "train2014"},
                                  refcoco_root(tmp_path), tasks=["rec"])
    assert records == [
        _row("refcoco/1/rec/0", "train2014/COCO_train2014_000000000001.jpg",
             "<image>\nGive the bounding box of the region this phrase describes: man on left",
             "[0.06, 0.22, 0.38, 0.69]"),
        _row("refcoco/1/rec/1", "train2014/COCO_train2014_000000000001.jpg",
             "<image>\nWhere is \"café guy\" in the image? Give its bounding box.",
             "[0.06, 0.22, 0.38, 0.69]"),
        _row("refcoco/1/rec/2", "train2014/COCO_train2014_000000000001.jpg",
             "<image>\nWhere is \"red car\" in the image? Give its bounding box.",
             "[0.47, 0.28, 0.86, 0.59]"),
        _row("refcoco/2/rec/0", "train2014/COCO_train2014_000000000002.jpg",
             "<image>\nWhere is \"whole thing\" in the image? Give its bounding box.",
             "[0.03, 0.03, 0.97, 0.97]"),
        _row("refcoco/5/rec/0", "train2014/COCO_train2014_000000000005.jpg",
             "<image>\nWhere is \"small &lt;image&gt; square\" in the image? Give its bounding box.",
             "[0.10, 0.10, 0.60, 0.60]"),
    ]
    assert rejects == REFCOCO_REJECTS


def test_golden_refcoco_plus_reg(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "refcoco_plus", "refs": UNC, "image_prefix": "train2014"},
                                  refcoco_root(tmp_path), tasks=["reg"])
    assert records == [
        _row("refcoco_plus/1/reg/0", "train2014/COCO_train2014_000000000001.jpg",
             "<image>\nWrite a referring expression for the object at [0.06, 0.22, 0.38, 0.69].",
             "man on left"),
        _row("refcoco_plus/1/reg/1", "train2014/COCO_train2014_000000000001.jpg",
             "<image>\nWrite a referring expression for the object at [0.06, 0.22, 0.38, 0.69].",
             "café guy"),
        _row("refcoco_plus/1/reg/2", "train2014/COCO_train2014_000000000001.jpg",
             "<image>\nWhat is in the box [0.47, 0.28, 0.86, 0.59]? Describe it so that it cannot be confused with "
             "anything else in the image.",
             "red car"),
        _row("refcoco_plus/2/reg/0", "train2014/COCO_train2014_000000000002.jpg",
             "<image>\nWrite a referring expression for the object at [0.03, 0.03, 0.97, 0.97].",
             "whole thing"),
        _row("refcoco_plus/5/reg/0", "train2014/COCO_train2014_000000000005.jpg",
             "<image>\nWhat is in the box [0.10, 0.10, 0.60, 0.60]? Describe it so that it cannot be confused with "
             "anything else in the image.",
             "small &lt;image&gt; square"),
    ]
    assert rejects == REFCOCO_REJECTS


def test_golden_refcocog(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "refcocog", "refs": UMD, "image_prefix": "train2014"},
                                  refcoco_root(tmp_path))
    assert records == [
        _row("refcocog/1/rec/0", "train2014/COCO_train2014_000000000001.jpg",
             "<image>\nWhere is \"the man standing on the left side\" in the image? Give its bounding box.",
             "[0.06, 0.22, 0.38, 0.69]"),
        _row("refcocog/1/reg/0", "train2014/COCO_train2014_000000000001.jpg",
             "<image>\nWrite a referring expression for the object at [0.06, 0.22, 0.38, 0.69].",
             "the man standing on the left side"),
        _row("refcocog/2/rec/0", "train2014/COCO_train2014_000000000002.jpg",
             "<image>\nGive the bounding box of the region this phrase describes: a big person filling the picture",
             "[0.03, 0.03, 0.97, 0.97]"),
        _row("refcocog/2/reg/0", "train2014/COCO_train2014_000000000002.jpg",
             "<image>\nWhat is in the box [0.03, 0.03, 0.97, 0.97]? Describe it so that it cannot be confused with "
             "anything else in the image.",
             "a big person filling the picture"),
        _row("refcocog/5/rec/0", "train2014/COCO_train2014_000000000005.jpg",
             "<image>\nFind the object described as \"the small square\" and answer with its box coordinates.",
             "[0.10, 0.10, 0.60, 0.60]"),
        _row("refcocog/5/reg/0", "train2014/COCO_train2014_000000000005.jpg",
             "<image>\nDescribe the region [0.10, 0.10, 0.60, 0.60] with a short phrase that singles it out.",
             "the small square"),
    ]
    assert rejects == []


# ---- ScienceQA ---------------------------------------------------------------------------------------------

def test_golden_scienceqa(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "scienceqa", "path": str(ASSETS / "scienceqa" / "problems.json"),
                                   "image_prefix": "images"}, scienceqa_root(tmp_path))
    assert records == [
        _row("scienceqa/1/mc/0", "images/train/1/image.png",
             "<image>\n"
             "Question: Which of these states is farthest north?\n"
             "Options:\n"
             "A. West Virginia\n"
             "B. Louisiana\n"
             "C. Arizona\n"
             "D. Oklahoma\n"
             "Answer with the option's letter from the given choices directly.",
             "A"),
        # Problems 2 and 9 have no image: text-only rows (no `image`, no <image>); the hint is the context.
        _row("scienceqa/2/mc/0", None,
             "Context: A token &lt;image&gt; appears here.\n"
             "Which word would you find on a dictionary page with the guide words helping - hunter?\n"
             "A. hospital\n"
             "B. hardly\n"
             "Answer with the option's letter from the given choices directly.",
             "A"),
        _row("scienceqa/9/mc/0", None,
             "Context: Mona runs to the bus stop.\n"
             "Which tense does the sentence use?\n"
             "A. past tense\n"
             "B. future tense\n"
             "C. present tense\n"
             "Answer with the option's letter from the given choices directly.",
             "C"),
    ]
    assert rejects == [("bad_value", "3"), ("image_missing", "4"), ("missing_key", "5"), ("empty_question", "6"),
                       ("empty_answer", "7"), ("bad_value", "8")]


# ---- Karpathy splits -----------------------------------------------------------------------------------------

def test_golden_karpathy_coco(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "karpathy", "path": str(ASSETS / "karpathy" / "dataset_coco.json")},
                                  karpathy_root(tmp_path))
    assert records == [
        _row("karpathy/val2014/COCO_val2014_000000391895.jpg/caption_short/0",
             "val2014/COCO_val2014_000000391895.jpg",
             "<image>\nSum up what this picture shows in a single sentence.",
             "A man with a red helmet on a small moped on a dirt road."),
        _row("karpathy/val2014/COCO_val2014_000000522418.jpg/caption_short/0",
             "val2014/COCO_val2014_000000522418.jpg",
             "<image>\nSum up what this picture shows in a single sentence.",
             "A woman wearing a net on her head cutting a cake."),
        _row("karpathy/train2014/COCO_train2014_000000318556.jpg/caption_short/0",
             "train2014/COCO_train2014_000000318556.jpg",
             "<image>\nSum up what this picture shows in a single sentence.",
             "A very clean and well decorated empty bathroom"),
    ]
    assert rejects == []


def test_golden_flickr30k(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "flickr30k", "path": str(ASSETS / "karpathy" / "dataset_flickr30k.json"),
                                   "image_prefix": "flickr30k-images"}, karpathy_root(tmp_path))
    assert records == [
        _row("flickr30k/1000092795.jpg/caption_short/0", "flickr30k-images/1000092795.jpg",
             "<image>\nSum up what this picture shows in a single sentence.",
             "Two friends enjoy time spent together."),
        _row("flickr30k/10002456.jpg/caption_short/0", "flickr30k-images/10002456.jpg",
             "<image>\nWrite a short caption for this photo.",
             "Several men in hard hats &lt;image&gt; operate a giant pulley system."),
    ]
    assert rejects == [("empty_caption", "10002456.jpg#6"), ("image_missing", "1000268201.jpg"),
                       ("missing_key", "1000344755.jpg"), ("missing_key", "1000366164.jpg"),
                       ("bad_value", "1000092795.jpg"), ("missing_key", "1000523639.jpg#30"),
                       ("image_path_escapes_root", "../../outside.jpg"), ("bad_value", "#8")]


# ---- image folder ------------------------------------------------------------------------------------------

def test_golden_image_folder(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "image_folder", "folder": "pets"}, image_folder_root(tmp_path))
    assert records == [
        _row("image_folder/cat/a.PNG/classification/0", "pets/cat/a.PNG",
             "<image>\nWhat is the main subject of this image? Answer with its category name.",
             "cat"),
        _row("image_folder/cat/b.jpg/classification/0", "pets/cat/b.jpg",
             "<image>\nWhich class does this image belong to?\nAnswer the question using a single word or phrase.",
             "cat"),
        _row("image_folder/cat/sub/c.jpeg/classification/0", "pets/cat/sub/c.jpeg",
             "<image>\nWhich class does this image belong to?\nAnswer the question using a single word or phrase.",
             "cat"),
        _row("image_folder/dog/x.jpg/classification/0", "pets/dog/x.jpg",
             "<image>\nWhat is the main subject of this image? Answer with its category name.",
             "dog"),
    ]
    assert rejects == [("image_path_escapes_root", "dog/link.jpg"), ("missing_key", "stray.jpg")]


# ---- generic tables ----------------------------------------------------------------------------------------

def test_golden_generic_csv_multiple_choice(tmp_path: Path) -> None:
    columns = {"id": "uid", "image": "file", "question": "question", "answer": "answer", "choices": "options",
               "split": "split"}
    records, rejects = run_golden({"kind": "generic", "path": str(ASSETS / "generic" / "qa.csv"), "columns": columns},
                                  generic_root(tmp_path))
    assert records == [
        _row("generic/q1/mc/0", "a.jpg",
             "<image>\n"
             "What color is the sky?\n"
             "A. red\n"
             "B. blue\n"
             "C. green\n"
             "Answer with the option's letter from the given choices directly.",
             "B"),
        _row("generic/q2/mc/0", "b.jpg",
             "<image>\n"
             "How many, roughly?\n"
             "A. 1\n"
             "B. 3\n"
             "C. 5\n"
             "Answer with the option's letter from the given choices directly.",
             "B"),
        _row("generic/q9/mc/0", "a.jpg",
             "<image>\n"
             "Question: Is &lt;image&gt; literal?\n"
             "Options:\n"
             "A. yes\n"
             "B. no\n"
             "Answer with the option's letter from the given choices directly.",
             "A"),
    ]
    assert rejects == [("bad_value", "row 2 (line 4)"), ("image_missing", "row 3 (line 5)"),
                       ("empty_question", "row 4 (line 6)"), ("empty_answer", "row 5 (line 7)"),
                       ("bad_value", "row 6 (line 8)"), ("missing_key", "row 7 (line 9)")]


def test_golden_generic_jsonl_captions_and_labels(tmp_path: Path) -> None:
    records, rejects = run_golden({"kind": "generic", "path": str(ASSETS / "generic" / "rows.jsonl"),
                                   "columns": {"image": "image", "caption": "cap", "label": "cls"}},
                                  generic_root(tmp_path))
    assert records == [
        _row("generic/0/caption_short/0", "a.jpg",
             "<image>\nSum up what this picture shows in a single sentence.",
             "A small red square."),
        _row("generic/0/classification/0", "a.jpg",
             "<image>\nClassify this image. Reply with the label only.",
             "square"),
        # Row 1 has two captions: the seeded pick is the second.
        _row("generic/1/caption_short/0", "b.jpg",
             "<image>\nDescribe the image briefly.",
             "Another caption."),
        _row("generic/1/classification/0", "b.jpg",
             "<image>\nWhat is the main subject of this image? Answer with its category name.",
             "blob"),
        _row("generic/7/caption_short/0", "a.jpg",
             "<image>\nSum up what this picture shows in a single sentence.",
             "fine"),
        # The label 7 is a number in the file.
        _row("generic/7/classification/0", "a.jpg",
             "<image>\nWhat is the main subject of this image? Answer with its category name.",
             "7"),
    ]
    assert rejects == [("bad_value", "row 2 (line 4)"), ("bad_value", "row 3 (line 5)"),
                       ("empty_caption", "row 4 (line 6)"), ("missing_key", "row 5 (line 7)"),
                       ("image_path_escapes_root", "row 6 (line 8)"), ("bad_value", "row 8 (line 10)")]


# ---- text-only sources (rows -> samples directly; LLaVA has no system role, so the writer puts a system
# message before the first user text, after a blank line) -------------------------------------------------

TEXT = ASSETS / "text"


def _chat(sid: str, *texts: str) -> dict[str, Any]:
    """One text-only LLaVA record whose turns alternate human, gpt, human, ..."""
    return {"id": sid, "conversations": [{"from": "gpt" if i % 2 else "human", "value": t}
                                         for i, t in enumerate(texts)]}


def test_golden_alpaca() -> None:
    records, rejects = run_golden({"kind": "alpaca", "path": str(TEXT / "alpaca.json")}, TEXT)
    assert records == [
        _chat("alpaca/0/text/0", "Name the largest planet in the Solar System.", "Jupiter."),
        _chat("alpaca/1/text/0", "Translate the sentence into French.\n\nGood morning, friends.", "Bonjour, les amis."),
        _chat("alpaca/2/text/0", "What does the &lt;image&gt; tag mark in LLaVA training data?",
              "It marks where the picture goes in the prompt."),
        _chat("alpaca/3/text/0", "You are a patient maths tutor.\n\nWhat is the square of 11?", "121.",
              "And the square of 12?", "144."),
        _chat("alpaca/4/text/0", "What is 6 times 7?", "42"),
        _chat("alpaca/greeting/text/0", "Say goodbye.", "Goodbye."),
    ]
    assert rejects == [("empty_question", "5"), ("missing_key", "6"), ("empty_answer", "7"), ("bad_value", "8"),
                       ("bad_value", "9"), ("bad_value", "10"), ("bad_value", "1")]


def test_golden_sharegpt() -> None:
    records, rejects = run_golden({"kind": "sharegpt", "path": str(TEXT / "sharegpt.json")}, TEXT)
    assert records == [
        _chat("sharegpt/plain/text/0", "What is the boiling point of water at sea level?", "100 degrees Celsius.",
              "And in Fahrenheit?", "212 degrees Fahrenheit."),
        _chat("sharegpt/system/text/0", "Answer in one word.\n\nWhat colour is grass?", "Green."),
        _chat("sharegpt/leading/text/0", "What is 2 + 2?", "4."),
        _chat("sharegpt/merge/text/0", "I have a question.\n\nWhat is the capital of Italy?",
              "Rome.\n\nIt has been the capital since 1871."),
        _chat("sharegpt/trailing/text/0", "Name a prime number.", "7."),
        _chat("sharegpt/trailing_empty/text/0", "Spell cat backwards.", "tac"),
        _chat("sharegpt/systems/text/0", "You are helpful.\n\nBe brief.\n\nOpposite of hot?", "Cold.",
              "Opposite of up?", "Down.", "Opposite of left?", "Right."),
        _chat("sharegpt/row_system/text/0", "Reply politely.\n\nThanks for the help.", "You are welcome."),
        _chat("sharegpt/18/text/0", "Why does my &lt;image&gt; tag show up as text?",
              "Because &lt;image&gt; here is a literal string."),
    ]
    assert rejects == [("unknown_role", "unknown_role"), ("system_not_first", "system_late"),
                       ("empty_turn", "empty_middle"), ("empty_conversation", "only_gpt"),
                       ("empty_conversation", "no_turns"), ("empty_conversation", "only_human"),
                       ("missing_key", "no_conversations"), ("missing_key", "no_value"),
                       ("bad_value", "value_object"), ("bad_value", "plain")]


def test_golden_dolly() -> None:
    records, rejects = run_golden({"kind": "dolly", "path": str(TEXT / "dolly.jsonl")}, TEXT)
    assert records == [
        _chat("dolly/0/text/0", "The Eiffel Tower was built for the 1889 World's Fair in Paris and was completed in "
                                "March 1889.\n\nWhen was the tower completed?", "It was completed in March 1889."),
        _chat("dolly/1/text/0", "Give me three primary colours of paint.", "Red, yellow and blue."),
        _chat("dolly/6/text/0", "Is &lt;image&gt; an HTML tag?", "No, HTML has <img>."),
    ]
    assert rejects == [("bad_value", "2"), ("empty_answer", "3"), ("missing_key", "4"), ("bad_value", "5")]


def test_golden_openai_messages() -> None:
    records, rejects = run_golden({"kind": "openai_messages", "path": str(TEXT / "openai.jsonl")}, TEXT)
    assert records == [
        _chat("openai_messages/0/text/0", "You are a concise assistant.\n\nWhat is the chemical symbol for gold?",
              "Au."),
        _chat("openai_messages/1/text/0", "Add these numbers:\n15 and 27", "42"),
        _chat("openai_messages/2/text/0", "Answer with a number.\n\nHow many legs does a spider have?", "8"),
        _chat("openai_messages/7/text/0", "What is the opposite of day?", "Night."),
    ]
    assert rejects == [("bad_value", "3"), ("unknown_role", "4"), ("missing_key", "5"), ("bad_value", "6"),
                       ("missing_key", "8"), ("bad_value", "9")]


def test_golden_hf_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "chats"
    datasets.Dataset.from_list([
        {"id": "x1", "conversations": [{"from": "human", "value": "Largest ocean?"}, {"from": "gpt", "value": "The "
                                       "Pacific."}]},
        {"id": "x2", "conversations": [{"from": "gpt", "value": "Hi!"}, {"from": "human", "value": "Hello."}]},
    ]).save_to_disk(str(folder))
    records, rejects = run_golden({"kind": "hf_dataset", "path": str(folder)}, tmp_path)
    assert records == [_chat("hf_dataset/x1/text/0", "Largest ocean?", "The Pacific.")]
    assert rejects == [("empty_conversation", "x2")]


# ---- coverage ----------------------------------------------------------------------------------------------

#: The kinds the goldens above cover; a new registered source needs a golden here.
def test_images_unlabelled(tmp_path: Path) -> None:
    # Unlabelled images carry nothing to adapt until the describe stage adds captions and boxes: without
    # it every image is a no_task reject (never dropped silently).
    from PIL import Image

    for name, size in (("b.png", (30, 20)), ("a.jpg", (40, 40)), ("notes.txt", None)):
        if size is None:
            (tmp_path / name).write_text("not an image")
        else:
            Image.new("RGB", size).save(tmp_path / name)
    records, rejects = run_golden({"kind": "images"}, tmp_path)
    assert records == []
    assert rejects == [("no_task", "a.jpg"), ("no_task", "b.png")]


GOLDEN_KINDS = {"coco_captions", "coco_instances", "vqav2", "okvqa", "gqa", "textvqa", "ocrvqa", "refcoco",
                "refcoco_plus", "refcocog", "scienceqa", "karpathy", "flickr30k", "image_folder", "generic",
                "alpaca", "sharegpt", "dolly", "openai_messages", "hf_dataset", "images"}


def test_every_registered_source_has_a_golden() -> None:
    assert set(REGISTRY) == GOLDEN_KINDS
