"""Synthetic COCO-captions + VQAv2-format data at benchmark scale, with a few real photos reused.

`make_dataset(root, images, questions_per_image)` writes `captions.json`, `vqa_questions.json`,
`vqa_annotations.json` and an image folder in which every image id has its own file name, all
hard links to a handful of real photos from scikit-image (so the existence checks are real).
Deterministic for a given size.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

SUBJECTS = ["cat", "dog", "man", "woman", "bus", "train", "pizza", "horse", "boat", "kite", "clock", "bench"]
PLACES = ["on a street", "in a kitchen", "near the water", "in a park", "on a table", "at the station"]
COLOURS = ["red", "blue", "white", "black", "green", "yellow", "brown"]
QUESTIONS = [("What color is the {s}?", "{c}", "other"), ("Is there a {s} in the picture?", "yes", "yes/no"),
             ("How many {s}s are there?", "{n}", "number"), ("Where is the {s}?", "{p}", "other"),
             ("What is the {s} doing?", "sitting", "other"), ("Is the {s} {c}?", "no", "yes/no")]


def _photos(folder: Path) -> list[Path]:
    """Write a few real photos (scikit-image's public-domain samples) once; reuse them."""
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        p = folder / f"{name}.jpg"
        if not p.exists():
            img = Image.fromarray(getattr(data, name)())
            img.thumbnail((320, 320))
            img.convert("RGB").save(p, quality=85)
        out.append(p)
    return out


def make_dataset(root: str | os.PathLike[str], images: int = 100_000, questions_per_image: int = 4,
                 subtype: str = "train2014") -> dict[str, Path]:
    root = Path(root)
    marker = root / f"done-{images}-{questions_per_image}"
    files = {"captions": root / "captions.json", "questions": root / "vqa_questions.json",
             "annotations": root / "vqa_annotations.json", "images": root / "images"}
    if marker.exists():
        return files
    rng = random.Random(0)
    photos = _photos(root / "photos")
    img_dir = files["images"] / subtype
    img_dir.mkdir(parents=True, exist_ok=True)
    coco_images, captions, questions, annotations = [], [], [], []
    qid = 0
    for i in range(1, images + 1):
        name = f"COCO_{subtype}_{i:012d}.jpg"
        target = img_dir / name
        if not target.exists():
            os.link(photos[i % len(photos)], target)
        coco_images.append({"id": i, "file_name": name, "width": 320, "height": 213})
        s, c, p = rng.choice(SUBJECTS), rng.choice(COLOURS), rng.choice(PLACES)
        captions.append({"id": i, "image_id": i, "caption": f"A {c} {s} {p}."})
        for _ in range(questions_per_image):
            qid += 1
            q, a, t = rng.choice(QUESTIONS)
            n = str(rng.randint(1, 5))
            answer = a.format(c=c, n=n, p=p)
            questions.append({"image_id": i, "question": q.format(s=s, c=c), "question_id": qid})
            annotations.append({"question_id": qid, "image_id": i, "question_type": "what", "answer_type": t,
                                "multiple_choice_answer": answer,
                                "answers": [{"answer": answer, "answer_confidence": "yes", "answer_id": k + 1}
                                            for k in range(10)]})
    files["captions"].write_text(json.dumps({"images": coco_images, "annotations": captions}))
    files["questions"].write_text(json.dumps({"data_subtype": subtype, "questions": questions}))
    files["annotations"].write_text(json.dumps({"data_subtype": subtype, "annotations": annotations}))
    marker.touch()
    return files
