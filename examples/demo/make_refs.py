"""Write the demo's RefCOCO-style referring expressions to `annotations/refs(unc).p`.

RefCOCO ships its expressions as a pickled list of dicts (Python 2 era, so pickle protocol 2) next to
a COCO `instances.json`; each ref names one instance by `ann_id` and the box comes from that instance.
The expressions below were written by hand while looking at the demo images; the `ann_id`s are the
ids of `annotations/instances.json`. Deterministic: the same list gives the same bytes.

Run from anywhere: `python examples/demo/make_refs.py [--out FILE]`.
"""

from __future__ import annotations

import argparse
import pickle
import re
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "annotations" / "refs(unc).p"

#: (ann_id, image_id, category_id, raw expressions as an annotator typed them).
REFS: tuple[tuple[int, int, int, tuple[str, ...]], ...] = (
    (1, 1, 1, ("woman in the orange suit", "THE SMILING ASTRONAUT", "lady with short hair")),
    (2, 2, 47, ("the coffee cup", "red cup full of espresso")),
    (3, 2, 50, ("silver spoon on the right", "the spoon next to the cup")),
    (4, 3, 17, ("the cat", "tabby cat with green eyes")),
    (5, 5, 1, ("man behind the camera", "guy in the black coat")),
    (6, 9, 19, ("black horse", "the horse silhouette")),
    (7, 10, 85, ("blurry clock in the middle",)),
)


def tokenize(raw: str) -> list[str]:
    """RefCOCO's normalised tokens: lower case, words and numbers only."""
    return re.findall(r"[a-z0-9]+", raw.lower())


def build_refs() -> list[dict[str, Any]]:
    """The refs in RefCOCO's exact layout (ref_id and sent_id numbered from 0 in order)."""
    refs: list[dict[str, Any]] = []
    sent_id = 0
    for ref_id, (ann_id, image_id, category_id, raws) in enumerate(REFS):
        sentences = []
        for raw in raws:
            tokens = tokenize(raw)
            sentences.append({"tokens": tokens, "raw": raw, "sent_id": sent_id, "sent": " ".join(tokens)})
            sent_id += 1
        refs.append({
            "sent_ids": [s["sent_id"] for s in sentences],
            # As in RefCOCO, file_name carries a suffix and is not a file on disk: readers take the
            # image from instances.json through image_id.
            "file_name": f"{image_id:012d}_{ann_id}.jpg",
            "ann_id": ann_id,
            "ref_id": ref_id,
            "image_id": image_id,
            "split": "train",
            "sentences": sentences,
            "category_id": category_id,
        })
    return refs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="pickle to write (default: annotations/refs(unc).p)")
    args = parser.parse_args(argv)
    refs = build_refs()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as f:
        pickle.dump(refs, f, protocol=2)
    print(f"wrote {len(refs)} refs, {sum(len(r['sentences']) for r in refs)} sentences to {args.out}")


if __name__ == "__main__":
    main()
