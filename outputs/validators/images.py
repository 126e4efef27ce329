"""The `images` column rules shared by the HF and TRL validators.

An image is a path (JSON rows: relative to the image folder) or the `Image()` storage
`{"bytes", "path"}`. In a parquet or Arrow dataset every image must carry its bytes (a bare path makes
the dataset depend on files beside it). Bytes, and files when an image folder is given, must decode.
"""

from __future__ import annotations

import io
import os
from typing import Any

from outputs.validators.base import Violation, json_type

#: Decode at most this size: enough to read the whole stream, without the cost of full-size pixels.
_DRAFT = (64, 64)


def decode_problem(data: bytes | str) -> str | None:
    """None when `data` (image bytes, or a file path) decodes as an image, else what went wrong."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            im.draft("RGB", _DRAFT)
            im.load()
    except Exception as e:  # Pillow raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        return f"{type(e).__name__}: {e}"
    return None


def check_images(i: int, at: str, images: Any, image_root: str | None, in_dataset: bool) -> tuple[int | None,
                                                                                                list[Violation]]:
    """(the number of images, or None when `images` is not a list, and the violations of row `i`)."""
    if not isinstance(images, list):
        return None, [Violation(row=i, rule="bad_image_field",
                                message=f"{at}: `images` is a JSON {json_type(images)}; it must be a list of images "
                                        "(empty for a text-only row)")]
    bad: list[int] = []
    not_embedded: list[int] = []
    missing: list[str] = []
    undecodable: list[str] = []
    for k, im in enumerate(images):
        data: bytes | None = None
        path: str | None = None
        if isinstance(im, str) and im:
            path = im
        elif isinstance(im, dict):
            raw, p = im.get("bytes"), im.get("path")
            if isinstance(raw, (bytes, bytearray)) and raw:
                data = bytes(raw)
            elif isinstance(p, str) and p:
                path = p
        if data is not None:
            problem = decode_problem(data)
            if problem:
                undecodable.append(f"{k} ({problem})")
        elif path is None:
            bad.append(k)
        elif in_dataset:
            not_embedded.append(k)
        elif image_root is not None:
            full = os.path.join(image_root, path)
            if not os.path.isfile(full):
                missing.append(path)
            else:
                problem = decode_problem(full)
                if problem:
                    undecodable.append(f"{k} {path!r} ({problem})")
    out: list[Violation] = []
    if bad:
        out.append(Violation(row=i, rule="bad_image_field",
                             message=f"{at}: image(s) {bad} are neither a path nor {{\"bytes\", \"path\"}} with "
                                     "bytes; fix or drop them"))
    if not_embedded:
        out.append(Violation(row=i, rule="image_not_embedded",
                             message=f"{at}: image(s) {not_embedded} are stored as a path without bytes; embed the "
                                     "image bytes (cast the column to Image() and embed it before writing parquet)"))
    if missing:
        out.append(Violation(row=i, rule="image_missing",
                             message=f"{at}: image(s) {missing} not found under the image folder {image_root}; "
                                     "check the paths or the image folder"))
    if undecodable:
        out.append(Violation(row=i, rule="image_undecodable",
                             message=f"{at}: image(s) {', '.join(undecodable)} cannot be decoded; replace the "
                                     "image data or drop the row"))
    return len(images), out
