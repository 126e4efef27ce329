"""Validators of the trainers' loader rules: one file per format, registered by name in `VALIDATORS`.

Each entry takes (data file path, its loaded rows, image folder or None) and returns every Violation;
the pure row checks are `validate_llava` and `validate_llamafactory`. `validate_file` reads any file
(ours or anyone's) and never raises on bad content.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from outputs.validators.base import RULES, Violation
from outputs.validators.llamafactory import check_llamafactory_file, validate_llamafactory
from outputs.validators.llava import check_llava_file, validate_llava
from outputs.validators.load import load_rows

VALIDATORS: dict[str, Callable[[Path, Any, str | None], list[Violation]]] = {
    "llava": check_llava_file,
    "llamafactory": check_llamafactory_file,
}


def validate_file(path: str | os.PathLike[str], format: str, image_root: str | None = None) -> list[Violation]:
    """Load `path` and check it against `format`'s loader rules (image files too when `image_root` is given).

    Malformed JSON is one violation naming the line and column. An unknown format is a ValueError.
    """
    try:
        check = VALIDATORS[format]
    except KeyError:
        raise ValueError(f"no validator for format {format!r}; choose one of: {', '.join(VALIDATORS)}") from None
    p = Path(path)
    rows, out = load_rows(p)
    if rows is None:
        return out
    return out + check(p, rows, image_root)


__all__ = ["RULES", "VALIDATORS", "Violation", "validate_file", "validate_llamafactory", "validate_llava"]
