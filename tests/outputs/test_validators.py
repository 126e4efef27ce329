"""Loader-rule validators: each bad-row fixture is caught with its row index, and our writers' files pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from writer_samples import all_samples

from outputs.llamafactory import LlamaFactoryWriter
from outputs.llava import LlavaWriter
from outputs.validators import RULES, VALIDATORS, Violation, validate_file, validate_llamafactory, validate_llava
from schemas.recipe import OutputFormat

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "outputs"
IMAGES = str(ASSETS)

LLAVA_BAD = [(1, "row_not_object"), (2, "missing_id"), (3, "missing_conversations"), (4, "turn_malformed"),
             (5, "bad_image_field"), (6, "image_token_count"), (7, "image_token_count"), (8, "image_token_count"),
             (9, "unknown_role"), (10, "first_turn_not_human"), (11, "roles_not_alternating"), (12, "empty_value"),
             (13, "image_missing")]
LF_BAD = [(1, "row_not_object"), (2, "missing_messages"), (3, "turn_malformed"), (4, "bad_image_field"),
          (5, "image_token_count"), (6, "bad_system_field"), (7, "system_not_first"), (8, "unknown_role"),
          (9, "first_turn_not_user"), (10, "roles_not_alternating"), (11, "last_turn_not_assistant"),
          (12, "empty_value"), (13, "image_missing")]


def pairs(violations: list[Violation]) -> list[tuple[int | None, str]]:
    return [(v.row, v.rule) for v in violations]


def test_llava_bad_rows_each_caught_at_their_row() -> None:
    assert pairs(validate_file(ASSETS / "llava_bad.json", "llava", IMAGES)) == LLAVA_BAD


def test_llava_image_files_are_checked_only_with_an_image_folder() -> None:
    assert pairs(validate_file(ASSETS / "llava_bad.json", "llava")) == LLAVA_BAD[:-1]


def test_llava_messages_name_the_row_id_and_the_fix() -> None:
    v = validate_file(ASSETS / "llava_bad.json", "llava", IMAGES)[6]
    assert v.message == ("row 7 (id 'two-images-one-token') has 1 <image> placeholder(s) for 2 image(s); "
                         "write exactly one <image> per image (none for a text-only row)")


def test_llamafactory_bad_rows_each_caught_at_their_row() -> None:
    # Rows 0, 14 (a leading system message) and 15 (the system column) are valid.
    assert pairs(validate_file(ASSETS / "llamafactory_bad" / "bad.json", "llamafactory", IMAGES)) == LF_BAD


def test_llamafactory_pure_rows_use_our_layout() -> None:
    rows = json.loads((ASSETS / "llamafactory_bad" / "bad.json").read_text(encoding="utf-8"))
    assert pairs(validate_llamafactory(rows)) == LF_BAD[:-1]


GOOD_ROW = {"messages": [{"role": "user", "content": "<image>Hi?"}, {"role": "assistant", "content": "Red."}],
            "images": ["img/a.png"]}
ENTRY = {"file_name": "d.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
         "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}


def lf_folder(tmp_path: Path, rows: list, info: object | None) -> Path:
    data = tmp_path / "d.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    if isinstance(info, str):
        (tmp_path / "dataset_info.json").write_text(info, encoding="utf-8")
    elif info is not None:
        (tmp_path / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return data


def test_llamafactory_good_folder_passes(tmp_path: Path) -> None:
    shutil.copytree(ASSETS / "img", tmp_path / "img")
    assert validate_file(lf_folder(tmp_path, [GOOD_ROW], {"d": ENTRY}), "llamafactory", str(tmp_path)) == []


@pytest.mark.parametrize(("info", "rule"), [
    (None, "dataset_info_missing"),
    ('{"d": {', "dataset_info_malformed"),
    ([ENTRY], "dataset_info_malformed"),
    ({"d": {**ENTRY, "file_name": "other.json"}}, "dataset_info_no_entry"),
])
def test_llamafactory_dataset_info_file_problems(tmp_path: Path, info: object, rule: str) -> None:
    assert pairs(validate_file(lf_folder(tmp_path, [GOOD_ROW], info), "llamafactory")) == [(None, rule)]


def test_llamafactory_malformed_dataset_info_names_line_and_column(tmp_path: Path) -> None:
    (v,) = validate_file(lf_folder(tmp_path, [GOOD_ROW], '{"d": {'), "llamafactory")
    assert "dataset_info.json is not valid JSON (line 1, column 8" in v.message


@pytest.mark.parametrize(("entry", "rows", "expected"), [
    ({**ENTRY, "formatting": "alpaca"}, [GOOD_ROW], '"formatting" is \'alpaca\''),
    ({**ENTRY, "columns": {"images": "images"}}, [GOOD_ROW], '"columns" has no string "messages"'),
    ({**ENTRY, "tags": {"content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}, [GOOD_ROW],
     '"tags" has no string "role_tag"'),
    ({**ENTRY, "columns": {"messages": "messages"}}, [GOOD_ROW], 'rows have "images" but "columns" does not name'),
    (ENTRY, [{**GOOD_ROW, "system": "Be brief."}], 'rows have "system" but "columns" does not name'),
    ({**ENTRY, "columns": {**ENTRY["columns"], "system": "system"}}, [GOOD_ROW],
     "names the system column 'system' but no row has it"),
])
def test_llamafactory_entry_inconsistent_with_rows(tmp_path: Path, entry: dict, rows: list, expected: str) -> None:
    found = [v for v in validate_file(lf_folder(tmp_path, rows, {"d": entry}), "llamafactory")
             if v.rule == "dataset_info_inconsistent"]
    assert len(found) == 1 and expected in found[0].message


def test_llamafactory_rows_are_read_through_the_entrys_columns_and_tags(tmp_path: Path) -> None:
    # LLaMA-Factory's defaults when the entry has no columns/tags: `conversations`, from/value, human/gpt.
    row = {"conversations": [{"from": "human", "value": "<image>Hi?"}, {"from": "gpt", "value": "Red."}],
           "images": ["img/a.png"]}
    entry = {"file_name": "d.json", "formatting": "sharegpt", "columns": {"messages": "conversations",
                                                                          "images": "images"}}
    assert validate_file(lf_folder(tmp_path, [row], {"d": entry}), "llamafactory") == []
    bad = {"conversations": [{"from": "user", "value": "Hi?"}, {"from": "gpt", "value": "Red."}]}
    assert pairs(validate_file(lf_folder(tmp_path, [bad], {"d": entry}), "llamafactory")) == [
        (None, "dataset_info_inconsistent"), (0, "unknown_role")]


@pytest.mark.parametrize("fmt", sorted(VALIDATORS))
def test_malformed_json_is_one_violation_naming_line_and_column(fmt: str) -> None:
    (v,) = validate_file(ASSETS / "malformed.json", fmt)
    assert (v.row, v.rule) == (None, "malformed_json")
    assert "(line 3, column 35: Expecting value)" in v.message


@pytest.mark.parametrize("fmt", sorted(VALIDATORS))
def test_unreadable_files_never_raise(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "latin1.json").write_bytes(b'[{"id": "caf\xe9"}]')
    (tmp_path / "bad.jsonl").write_text('{"id": "a"}\n{"id": \n', encoding="utf-8")
    assert pairs(validate_file(tmp_path / "latin1.json", fmt)) == [(None, "malformed_json")]
    (v,) = validate_file(tmp_path / "bad.jsonl", fmt)
    assert v.rule == "malformed_json" and "(line 2, column 8" in v.message
    assert pairs(validate_file(tmp_path / "absent.json", fmt)) == [(None, "file_missing")]
    assert ("not_a_list" in [v.rule for v in validate_file(ASSETS / "not_a_list.json", fmt)])


def test_jsonl_rows_are_validated_with_their_index(tmp_path: Path) -> None:
    good = '{"id": "a", "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Yo."}]}'
    (tmp_path / "d.jsonl").write_text(good + "\n\n" + '{"id": "b", "conversations": []}\n', encoding="utf-8")
    assert pairs(validate_file(tmp_path / "d.jsonl", "llava")) == [(1, "missing_conversations")]


def test_top_level_not_a_list() -> None:
    assert pairs(validate_llava({"data": []})) == [(None, "not_a_list")]


def test_violation_rule_codes_are_known() -> None:
    with pytest.raises(ValueError, match="unknown rule code 'made_up'"):
        Violation(row=0, rule="made_up", message="x")
    assert {r for _, r in LLAVA_BAD + LF_BAD} <= set(RULES)


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no validator for format 'alpaca'; choose one of: llava, llamafactory"):
        validate_file(ASSETS / "llava_bad.json", "alpaca")


@pytest.mark.parametrize("box_format", ["llava", "norm1000", "absolute", "norm1"])
def test_our_writers_outputs_pass_every_validator(tmp_path: Path, box_format: str) -> None:
    samples = all_samples()
    for cls in (LlavaWriter, LlamaFactoryWriter):
        w = cls(OutputFormat(kind=cls.kind, box_format=box_format, name=cls.kind), "demo")
        (data, *_) = w.write([w.encode(s) for s in samples], tmp_path / cls.kind, IMAGES)
        assert validate_file(data, cls.kind, IMAGES) == []


def test_llava_fast_path_never_passes_a_row_the_full_check_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    import json as _json

    from outputs.validators import llava as v

    rows = _json.loads((ASSETS / "llava_bad.json").read_text())
    rows += [{"id": "a", "image": "x.jpg", "conversations": [{"from": "human", "value": "<image>\nQ?"},
                                                             {"from": "gpt", "value": "A."}]},
             {"id": "t", "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]},
             {"id": "b", "image": "x.jpg", "conversations": [{"from": "human", "value": "Q?"},
                                                             {"from": "gpt", "value": "<image> A."}]}]
    fast = [v._plainly_valid(r) for r in rows]
    monkeypatch.setattr(v, "_plainly_valid", lambda row: False)
    full = [v.check_row(i, r) for i, r in enumerate(rows)]
    assert any(fast) and not all(fast)
    for ok, violations, row in zip(fast, full, rows):
        if ok:
            assert violations == [], row
