"""Writes the tiny refs pickles used by tests/sources/test_refcoco.py (run: python make_refs.py).

`refs(unc).p` is written the way Python 2 wrote the real files: protocol 2 with every string a Python 2
byte string (SHORT_BINSTRING opcodes, UTF-8 bytes), so loading it in Python 3 exercises the bytes -> str
handling. `refs(umd).p` is written by Python 3's pickle with protocol 2 (str as BINUNICODE).
Boxes and images come from instances.json beside this script (hand-written).
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _py2_pickle(obj: Any) -> bytes:
    """Protocol-2 pickle of dicts, lists, str, int, None as Python 2's cPickle writes its byte strings."""
    out = bytearray(b"\x80\x02")

    def emit(o: Any) -> None:
        if o is None:
            out.extend(b"N")
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            if 0 <= o < 256:
                out.extend(b"K" + struct.pack("<B", o))
            elif 0 <= o < 65536:
                out.extend(b"M" + struct.pack("<H", o))
            else:
                out.extend(b"J" + struct.pack("<i", o))
        elif isinstance(o, str):
            raw = o.encode("utf-8")
            if len(raw) < 256:
                out.extend(b"U" + struct.pack("<B", len(raw)) + raw)
            else:
                out.extend(b"T" + struct.pack("<i", len(raw)) + raw)
        elif isinstance(o, list):
            out.extend(b"]")
            if o:
                out.extend(b"(")
                for v in o:
                    emit(v)
                out.extend(b"e")
        elif isinstance(o, dict):
            out.extend(b"}")
            if o:
                out.extend(b"(")
                for k, v in o.items():
                    emit(k)
                    emit(v)
                out.extend(b"u")
        else:
            raise TypeError(f"cannot write {type(o).__name__}")

    emit(obj)
    out.extend(b".")
    return bytes(out)


def _sent(sent_id: int, sent: str) -> dict[str, Any]:
    return {"tokens": sent.split(), "raw": sent, "sent_id": sent_id, "sent": sent}


def _ref(ref_id: int, ann_id: int, image_id: int, split: str, sents: list[dict[str, Any]],
         category_id: int = 1) -> dict[str, Any]:
    return {"image_id": image_id, "split": split, "sentences": sents, "file_name": f"img_{image_id}_{ann_id}.jpg",
            "category_id": category_id, "ann_id": ann_id, "sent_ids": [s["sent_id"] for s in sents],
            "ref_id": ref_id}


UNC = [
    _ref(100, 10, 1, "train", [_sent(1000, "man on left"), _sent(1001, "café guy")]),
    _ref(101, 14, 2, "train", [_sent(1002, "whole thing")]),
    _ref(102, 11, 1, "train", [_sent(1003, "red car"), _sent(1004, "")], 3),
    _ref(103, 12, 2, "train", [_sent(1005, "flat thing")]),
    _ref(104, 13, 2, "train", [_sent(1006, "car sticking out")], 3),
    _ref(105, 999, 1, "train", [_sent(1007, "ghost")]),
    _ref(106, 15, 3, "testA", [_sent(1008, "person in missing image")]),
    _ref(107, 10, 4, "testB", [_sent(1009, "unlisted image")]),
    {"ref_id": 108, "ann_id": 10, "image_id": 1, "split": "train"},
    _ref(109, 16, 1, "train", [_sent(1010, "odd category")]),
    _ref(110, 11, 2, "train", [_sent(1011, "car from another image")], 3),
    _ref(111, 17, 5, "val", [_sent(1012, "small <image> square")]),
]

UMD = [
    _ref(200, 10, 1, "test", [_sent(2000, "the man standing on the left side")]),
    _ref(201, 14, 2, "val", [_sent(2001, "a big person filling the picture")]),
    _ref(202, 17, 5, "train", [_sent(2002, "the small square")]),
]

if __name__ == "__main__":
    (HERE / "refs(unc).p").write_bytes(_py2_pickle(UNC))
    with open(HERE / "refs(umd).p", "wb") as f:
        pickle.dump(UMD, f, protocol=2)
