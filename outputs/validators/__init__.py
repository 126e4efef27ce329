"""Validators of the trainers' loader rules: one file per format, registered by name in `VALIDATORS`.

Each entry takes (data file path, its loaded rows, image folder or None) and returns every Violation;
the pure row checks are `validate_llava`, `validate_llamafactory`, `validate_hf`, `validate_trl` and
`validate_openai_chat`. `validate_file` reads any file (ours or anyone's) and never raises on bad content;
for `hf` and `trl` it also reads parquet files, folders of them and `save_to_disk` folders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from outputs.validators.base import RULES, Violation
from outputs.validators.dataset_load import DATASET_SUFFIXES, DatasetRows, load_dataset_rows
from outputs.validators.hf import check_hf_file, validate_hf
from outputs.validators.llamafactory import check_llamafactory_file, validate_llamafactory
from outputs.validators.llava import check_llava_file, validate_llava
from outputs.validators.load import load_rows
from outputs.validators.openai_chat import check_openai_chat_file, validate_openai_chat
from outputs.validators.trl import check_trl_file, validate_trl

VALIDATORS: dict[str, Callable[[Path, Any, str | None], list[Violation]]] = {
    "llava": check_llava_file,
    "llamafactory": check_llamafactory_file,
    "hf": check_hf_file,
    "trl": check_trl_file,
    "openai_chat": check_openai_chat_file,
}
def _row_checks() -> dict[str, Callable[[int, Any], list[Violation]]]:
    from outputs.validators import hf, llamafactory, llava, openai_chat, trl

    return {
        "llava": lambda i, r: llava.check_row(i, r),
        "llamafactory": lambda i, r: llamafactory.check_row(i, r, llamafactory.OURS),
        "hf": lambda i, r: hf.check_row(i, r),
        "trl": lambda i, r: trl.check_row(i, r),
        "openai_chat": lambda i, r: openai_chat.check_row(i, r),
    }


#: Per format, the check of one record as `to_record` builds it (images are not opened: the sources
#: checked the files). The export stage runs it on every row before anything is written.
ROW_CHECKS: dict[str, Callable[[int, Any], list[Violation]]] = _row_checks()

#: Formats whose files may be datasets (parquet, Arrow, save_to_disk folders) as well as JSON.
DATASET_FORMATS = ("hf", "trl")


def validate_file(path: str | os.PathLike[str], format: str, image_root: str | None = None) -> list[Violation]:
    """Load `path` and check it against `format`'s loader rules (image files too when `image_root` is given).

    Malformed JSON is one violation naming the line and column. An unknown format is a ValueError.
    For the DATASET_FORMATS, `path` may also be a .parquet or .arrow file or a folder (see
    outputs/validators/dataset_load.py); a violation in a dataset of several files names the file too.
    """
    try:
        check = VALIDATORS[format]
    except KeyError:
        raise ValueError(f"no validator for format {format!r}; choose one of: {', '.join(VALIDATORS)}") from None
    p = Path(path)
    if format in DATASET_FORMATS and (p.is_dir() or p.suffix in DATASET_SUFFIXES):
        dataset, out = load_dataset_rows(p)
        if dataset is None:
            return out
        return out + check(p, dataset, image_root) + dataset.errors
    rows, out = load_rows(p)
    if rows is None:
        return out
    return out + check(p, rows, image_root)


__all__ = ["DATASET_FORMATS", "RULES", "VALIDATORS", "DatasetRows", "Violation", "validate_file", "validate_hf",
           "validate_llamafactory", "validate_llava", "validate_openai_chat", "validate_trl"]
