"""The TRL validator: each bad-row fixture is caught at its row, and its verdicts agree with what TRL's own
`prepare_multimodal_messages` does with the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from outputs.validators import VALIDATORS, Violation, validate_file, validate_trl
from outputs.validators.trl import check_trl_file
from pipeline.cli import main

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "outputs"
IMAGES = str(ASSETS)
TRL_BAD = [(1, "row_not_object"), (2, "missing_column"), (3, "missing_messages"), (4, "turn_malformed"),
           (5, "content_malformed"), (6, "image_block_not_bare"), (7, "image_block_count"),
           (8, "image_token_in_text"), (9, "unknown_role"), (10, "system_not_first"), (11, "roles_not_alternating"),
           (12, "bad_image_field"), (13, "image_missing"), (14, "image_undecodable"),
           # row 15 is valid: string content, TRL puts the image before the first user message
           (16, "image_block_not_bare"), (16, "image_block_count")]


def pairs(violations: list[Violation]) -> list[tuple[int | None, str]]:
    return [(v.row, v.rule) for v in violations]


def fixture_rows() -> list:
    return [json.loads(line) for line in (ASSETS / "trl_bad.jsonl").read_text(encoding="utf-8").splitlines()]


def test_registered() -> None:
    assert VALIDATORS["trl"] is check_trl_file


def test_bad_rows_each_caught_at_their_row() -> None:
    assert pairs(validate_file(ASSETS / "trl_bad.jsonl", "trl", IMAGES)) == TRL_BAD


def test_image_files_are_checked_only_with_an_image_folder() -> None:
    without = [p for p in TRL_BAD if p[1] not in ("image_missing", "image_undecodable")]
    assert pairs(validate_trl(fixture_rows())) == without


def test_null_image_key_message_names_the_fix() -> None:
    found = [v for v in validate_file(ASSETS / "trl_bad.jsonl", "trl") if v.row == 16]
    assert found[0].message == ("row 16 (id 'null-image-key'): message(s) [0] have image blocks with more than "
                                '{"type": "image"} (an "image" key, even null, makes TRL skip the block when it '
                                'places the images); write exactly {"type": "image"}')
    assert found[1].message == ("row 16 (id 'null-image-key') has 0 image block(s) for 1 image(s); TRL raises on "
                                'this: write one {"type": "image"} block per image')


def test_verdicts_agree_with_trl_itself() -> None:
    """TRL accepts the rows we pass and raises on the rows we flag for role or image-count problems."""
    from trl.data_utils import prepare_multimodal_messages

    rows = fixture_rows()
    for i in (0, 15):
        prepare_multimodal_messages(rows[i]["messages"], rows[i]["images"])
    for i in (7, 16):
        with pytest.raises(ValueError, match="does not match number of image placeholders"):
            prepare_multimodal_messages(rows[i]["messages"], rows[i]["images"])
    with pytest.raises(ValueError, match="Invalid role in message: observer"):
        prepare_multimodal_messages(rows[9]["messages"], rows[9]["images"])


def test_a_struct_column_with_an_image_field_is_caught_in_parquet(tmp_path: Path) -> None:
    """Once one block carries "image", Arrow gives every block of the column an "image" field (null): TRL then
    counts no slot at all."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image = {"bytes": (ASSETS / "img" / "a.png").read_bytes(), "path": "a.png"}
    question = [{"type": "image", "image": None}, {"type": "text", "text": "Hi?"}]
    rows = [{"messages": [{"role": "user", "content": question},
                          {"role": "assistant", "content": [{"type": "text", "text": "Red."}]}],
             "images": [image]}]
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert pairs(validate_file(path, "trl")) == [(0, "image_block_not_bare"), (0, "image_block_count")]


def test_cli_passes_a_clean_file_and_lists_a_bad_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.jsonl"
    clean.write_text((ASSETS / "trl_bad.jsonl").read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    assert main(["validate", str(clean), "--format", "trl", "--images", IMAGES]) == 0
    assert capsys.readouterr().out == f"{clean}: 0 violation(s) of the trl loader rules\n"
    assert main(["validate", str(ASSETS / "trl_bad.jsonl"), "--format", "trl", "--images", IMAGES]) == 1
    assert capsys.readouterr().out.splitlines()[-1].endswith(f": {len(TRL_BAD)} violation(s) of the trl loader rules")
