"""A minimal single-process converter: the baseline that `bench/adapt.py` measures vlforge against.

It does the same work as `vlforge build` on the benchmark's recipe (COCO captions -> caption_short,
VQAv2 -> vqa_short, LLaVA JSON out) with nothing but the standard library and Jinja2: read and join
the files, check each image file exists, render the same template files with the same seeded style
choice, check each sample (roles, one `<image>`, no empty turn, length cap) and write the JSON list.
Its output is meant to be byte-identical to vlforge's, which the benchmark checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
VQA_SUFFIX_TASK = "vqa_short"
MAX_CHARS = 4000


def pick(seed: int, key: str, n: int) -> int:
    if n <= 1:
        return 0
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n


def clean(text: str) -> str:
    return text.strip().replace("<image>", "&lt;image&gt;").replace("<box:", "&lt;box:")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--captions", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--images", required=True, help="image root")
    ap.add_argument("--prefix", default="", help="folder of the images under the root")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined, autoescape=False)

    def styles(task: str) -> list:
        names = sorted(p.stem for p in (TEMPLATES / task).glob("*.jinja2"))
        return [(f"{task}/{n}", env.get_template(f"{task}/{n}.jinja2")) for n in names]

    cap_styles, vqa_styles = styles("caption_short"), styles(VQA_SUFFIX_TASK)
    rows: list[str] = []
    rejected = 0

    def render(tmpl, variables: dict) -> tuple[str, str]:
        ctx = tmpl.new_context(variables)
        return ("".join(tmpl.blocks["user"](ctx)).strip(), "".join(tmpl.blocks["assistant"](ctx)).strip())

    def emit(sid: str, image: str, user: str, answer: str) -> None:
        nonlocal rejected
        user = "<image>\n" + user
        if not user.strip() or not answer.strip() or user.count("<image>") != 1 or answer.count("<image>") \
                or len(user) > MAX_CHARS or len(answer) > MAX_CHARS:
            rejected += 1
            return
        rows.append(json.dumps({"id": sid, "image": image, "conversations": [
            {"from": "human", "value": user}, {"from": "gpt", "value": answer}]}, ensure_ascii=False,
            separators=(",", ":")))

    def image_path(name: str) -> str | None:
        rel = f"{a.prefix}/{name}" if a.prefix else name
        return rel if os.path.isfile(os.path.join(a.images, rel)) else None

    # COCO captions: one caption per image (the benchmark's images have one each), images in file order.
    caps = json.load(open(a.captions, "rb"))
    by_image: dict = {}
    for ann in caps["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for img in caps["images"]:
        anns = by_image.get(img["id"])
        rel = image_path(img["file_name"]) if anns else None
        if rel is None or not anns[0]["caption"].strip():
            rejected += 1
            continue
        sid = f"coco_captions/{img['id']}/caption_short/0"
        tid, tmpl = cap_styles[pick(a.seed, f"{sid}/0", len(cap_styles))]
        user, answer = render(tmpl, {"caption": clean(anns[0]["caption"])})
        emit(sid, rel, user, answer)

    # VQAv2: questions joined with annotations, grouped per image in order of first appearance.
    qdata = json.load(open(a.questions, "rb"))
    adata = json.load(open(a.annotations, "rb"))
    answers = {x["question_id"]: x for x in adata["annotations"]}
    subtype = qdata.get("data_subtype", "")
    groups: dict = {}
    for q in qdata["questions"]:
        groups.setdefault(q["image_id"], []).append(q)
    for iid, qs in groups.items():
        rel = image_path(f"COCO_{subtype}_{iid:012d}.jpg")
        if rel is None:
            rejected += len(qs)
            continue
        n = 0
        for q in qs:
            ann = answers.get(q["question_id"])
            if ann is None or not q["question"].strip() or not ann["multiple_choice_answer"].strip():
                rejected += 1
                continue
            sid = f"vqav2/{iid}/vqa_short/{n}"
            n += 1
            tid, tmpl = vqa_styles[pick(a.seed, f"{sid}/0", len(vqa_styles))]
            user, answer = render(tmpl, {"question": clean(q["question"]),
                                         "answer": clean(ann["multiple_choice_answer"])})
            emit(sid, rel, user, answer)

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n", encoding="utf-8")
    print(json.dumps({"samples": len(rows), "rejected": rejected, "seconds": round(time.perf_counter() - t0, 3)}))


if __name__ == "__main__":
    main()
