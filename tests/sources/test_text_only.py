"""Text-only sources (alpaca, sharegpt, dolly, openai_messages, hf_dataset): exact samples, every repair and
reject with its reason, whole-file errors, HF datasets folders made in the test, recipe and registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.validate import check_sample
from schemas.recipe import RecipeError, parse_recipe
from schemas.reject import REASONS, Reject
from schemas.sample import Lineage, Sample, Turn
from sources.alpaca import AlpacaSource
from sources.base import Source, SourceError
from sources.dolly import DollySource
from sources.hf_dataset import HFDatasetSource
from sources.openai_messages import OpenAIMessagesSource
from sources.registry import REGISTRY
from sources.sharegpt import ShareGPTSource
from sources.text_base import TEXT_TASK

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "sources" / "text"
ALPACA = str(ASSETS / "alpaca.json")
SHAREGPT = str(ASSETS / "sharegpt.json")
DOLLY = str(ASSETS / "dolly.jsonl")
OPENAI = str(ASSETS / "openai.jsonl")


def _read(cls: type[Source], path: str, **kw: Any) -> list[Sample | Reject]:
    kind = kw.pop("kind", cls.kind)
    return list(cls(cls.Options(kind=kind, path=path, **kw), ".").read())


def _sample(source: str, rid: str, file: str, *turns: tuple[str, str], kind: str | None = None,
            repairs: tuple[str, ...] = ()) -> Sample:
    return Sample(id=f"{source}/{rid}/text/0", turns=[Turn(role=r, text=t) for r, t in turns], task=TEXT_TASK,
                  source=source, lineage=Lineage(source=source, source_kind=kind or source, file=file, ann_ids=[rid],
                                                 filters=[f"repaired:{r}" for r in repairs]))


def _split(items: list[Sample | Reject]) -> tuple[list[Sample], list[tuple[str, str | None, str]]]:
    samples = [x for x in items if isinstance(x, Sample)]
    rejects = [x for x in items if isinstance(x, Reject)]
    assert len(samples) + len(rejects) == len(items)
    for r in rejects:
        assert r.reason in REASONS and r.stage == "source" and r.file is not None
    for s in samples:  # every sample passes the validate stage: alternation, no placeholder
        assert check_sample(s, 4000, 64, 8) is None, s.id
        assert s.images == [] and s.text_only
    return samples, [(r.reason, r.record, r.message) for r in rejects]


def test_alpaca_rows() -> None:
    samples, rejects = _split(_read(AlpacaSource, ALPACA))
    a = ALPACA
    assert samples == [
        _sample("alpaca", "0", a, ("user", "Name the largest planet in the Solar System."), ("assistant", "Jupiter.")),
        _sample("alpaca", "1", a, ("user", "Translate the sentence into French.\n\nGood morning, friends."),
                ("assistant", "Bonjour, les amis.")),
        _sample("alpaca", "2", a, ("user", "What does the &lt;image&gt; tag mark in LLaVA training data?"),
                ("assistant", "It marks where the picture goes in the prompt.")),
        _sample("alpaca", "3", a, ("system", "You are a patient maths tutor."), ("user", "What is the square of 11?"),
                ("assistant", "121."), ("user", "And the square of 12?"), ("assistant", "144.")),
        _sample("alpaca", "4", a, ("user", "What is 6 times 7?"), ("assistant", "42")),
        _sample("alpaca", "greeting", a, ("user", "Say goodbye."), ("assistant", "Goodbye.")),
    ]
    p = f"of {a}:"
    assert rejects == [
        ("empty_question", "5", f"alpaca: row 5 {p} 'instruction' is empty"),
        ("missing_key", "6",
         f"alpaca: row 6 {p} the row has no 'output' value (it has 'instruction', 'input'); add it"),
        ("empty_answer", "7", f"alpaca: row 7 {p} 'output' is empty"),
        ("bad_value", "8", f"alpaca: row 8 {p} 'input' holds a list, expected text"),
        ("bad_value", "9", f"alpaca: row 9 {p} the row is a JSON str, expected an object "
                           "(rows {instruction, input, output})"),
        ("bad_value", "10", f"alpaca: row 10 {p} history[0] is ['only one half'], expected an [instruction, "
                            "response] pair of two strings"),
        ("bad_value", "1", f"alpaca: row 11 (id '1') {p} id '1' was already used by row 1; ids must be unique"),
    ]


def test_limit_counts_samples_and_name_sets_source() -> None:
    items = _read(AlpacaSource, ALPACA, limit=2, name="instruct")
    assert [x.id for x in items if isinstance(x, Sample)] == ["instruct/0/text/0", "instruct/1/text/0"]
    assert len(items) == 2
    assert items[0].lineage == Lineage(source="instruct", source_kind="alpaca", file=ALPACA, ann_ids=["0"])
    # Rejected rows do not count towards the limit: the sixth sample comes after seven rejects.
    assert len([x for x in _read(AlpacaSource, ALPACA, limit=6) if isinstance(x, Sample)]) == 6


def test_sharegpt_repairs_and_rejects() -> None:
    samples, rejects = _split(_read(ShareGPTSource, SHAREGPT))
    g = SHAREGPT
    assert samples == [
        _sample("sharegpt", "plain", g, ("user", "What is the boiling point of water at sea level?"),
                ("assistant", "100 degrees Celsius."), ("user", "And in Fahrenheit?"),
                ("assistant", "212 degrees Fahrenheit.")),
        _sample("sharegpt", "system", g, ("system", "Answer in one word."), ("user", "What colour is grass?"),
                ("assistant", "Green.")),
        _sample("sharegpt", "leading", g, ("user", "What is 2 + 2?"), ("assistant", "4."),
                repairs=("dropped_leading_assistant",)),
        _sample("sharegpt", "merge", g, ("user", "I have a question.\n\nWhat is the capital of Italy?"),
                ("assistant", "Rome.\n\nIt has been the capital since 1871."),
                repairs=("merged_consecutive_user", "merged_consecutive_assistant")),
        _sample("sharegpt", "trailing", g, ("user", "Name a prime number."), ("assistant", "7."),
                repairs=("dropped_trailing_user",)),
        _sample("sharegpt", "trailing_empty", g, ("user", "Spell cat backwards."), ("assistant", "tac"),
                repairs=("dropped_trailing_empty_turn", "dropped_trailing_user")),
        _sample("sharegpt", "systems", g, ("system", "You are helpful.\n\nBe brief."), ("user", "Opposite of hot?"),
                ("assistant", "Cold."), ("user", "Opposite of up?"), ("assistant", "Down."),
                ("user", "Opposite of left?"), ("assistant", "Right."),
                repairs=("dropped_empty_system", "merged_consecutive_system")),
        _sample("sharegpt", "row_system", g, ("system", "Reply politely."), ("user", "Thanks for the help."),
                ("assistant", "You are welcome.")),
        _sample("sharegpt", "18", g, ("user", "Why does my &lt;image&gt; tag show up as text?"),
                ("assistant", "Because &lt;image&gt; here is a literal string.")),
    ]

    def at(row: int, rid: str) -> str:
        return f"sharegpt: row {row} (id {rid!r}) of {g}:"

    assert rejects == [
        ("unknown_role", "unknown_role", f"{at(8, 'unknown_role')} turn 1 has role 'Model', which is none of "
         "assistant, bard, bing, chatgpt, gpt, human, system, user; map it with `role_map: {Model: user}` (or "
         "assistant, system) in the recipe, or fix the row"),
        ("system_not_first", "system_late", f"{at(9, 'system_late')} turn 2 is a system message after the "
         "conversation began; only system messages before the first user or assistant turn are kept. Move it to the "
         "start or remove it"),
        ("empty_turn", "empty_middle", f"{at(10, 'empty_middle')} turn 1 (assistant) is empty in the middle of the "
         "conversation; only empty turns at the end are dropped. Fill it in or remove the row"),
        ("empty_conversation", "only_gpt", f"{at(11, 'only_gpt')} no user turn answered by the assistant is left "
         "after the repairs dropped_leading_assistant; the row has nothing to train on"),
        ("empty_conversation", "no_turns", f"{at(12, 'no_turns')} the conversation has no turns"),
        ("empty_conversation", "only_human", f"{at(13, 'only_human')} no user turn answered by the assistant is left "
         "after the repairs dropped_trailing_user; the row has nothing to train on"),
        ("missing_key", "no_conversations", f"{at(14, 'no_conversations')} the row has no 'conversations' value "
         "(it has 'id', 'messages'); add it"),
        ("missing_key", "no_value", f"{at(15, 'no_value')} turn 0 has no 'value' key; add it"),
        ("bad_value", "value_object", f"{at(16, 'value_object')} turn 0 has a dict 'value', expected text"),
        ("bad_value", "plain", f"{at(17, 'plain')} id 'plain' was already used by row 0; ids must be unique"),
    ]


def test_sharegpt_role_map_adds_roles() -> None:
    items = _read(ShareGPTSource, SHAREGPT, role_map={"model": "assistant"})
    got = [x for x in items if isinstance(x, Sample) and x.id == "sharegpt/unknown_role/text/0"]
    assert got == [_sample("sharegpt", "unknown_role", SHAREGPT, ("user", "Hi there."), ("assistant", "Hello."))]
    assert "unknown_role" not in [x.reason for x in items if isinstance(x, Reject)]


def test_dolly_rows() -> None:
    samples, rejects = _split(_read(DollySource, DOLLY))
    d = DOLLY
    assert samples == [
        _sample("dolly", "0", d, ("user", "The Eiffel Tower was built for the 1889 World's Fair in Paris and was "
                                          "completed in March 1889.\n\nWhen was the tower completed?"),
                ("assistant", "It was completed in March 1889.")),
        _sample("dolly", "1", d, ("user", "Give me three primary colours of paint."),
                ("assistant", "Red, yellow and blue.")),
        _sample("dolly", "6", d, ("user", "Is &lt;image&gt; an HTML tag?"), ("assistant", "No, HTML has <img>.")),
    ]
    # The blank line 3 is skipped; row numbers count data lines, line numbers count every line.
    assert rejects == [
        ("bad_value", "2", f"dolly: row 2 (line 4) of {d}: line 4 is not valid JSON (Expecting ',' delimiter, "
                           "column 85); fix or remove the line"),
        ("empty_answer", "3", f"dolly: row 3 (line 5) of {d}: 'response' is empty"),
        ("missing_key", "4", f"dolly: row 4 (line 6) of {d}: the row has no 'instruction' value (it has 'context', "
                             "'response', 'category'); add it"),
        ("bad_value", "5", f"dolly: row 5 (line 7) of {d}: the row is a JSON list, expected an object "
                           "(rows {instruction, context, response, category})"),
    ]


def test_openai_messages_rows() -> None:
    samples, rejects = _split(_read(OpenAIMessagesSource, OPENAI))
    o, k = OPENAI, "openai_messages"
    assert samples == [
        _sample(k, "0", o, ("system", "You are a concise assistant."),
                ("user", "What is the chemical symbol for gold?"), ("assistant", "Au.")),
        _sample(k, "1", o, ("user", "Add these numbers:\n15 and 27"), ("assistant", "42")),
        _sample(k, "2", o, ("system", "Answer with a number."), ("user", "How many legs does a spider have?"),
                ("assistant", "8")),
        _sample(k, "7", o, ("user", "What is the opposite of day?"), ("assistant", "Night."),
                repairs=("dropped_leading_assistant", "dropped_trailing_user")),
    ]

    def at(row: int) -> str:
        return f"openai_messages: row {row} (line {row + 1}) of {o}:"

    assert rejects == [
        ("bad_value", "3", f"{at(3)} message 0 content part 0 has type 'image_url'; a text-only source reads text "
                           "parts only (read rows with images through an image source)"),
        ("unknown_role", "4", f"{at(4)} message 1 has role 'tool', which is none of assistant, developer, system, "
                              "user; map it with `role_map: {tool: user}` (or assistant, system) in the recipe, or "
                              "fix the row"),
        ("missing_key", "5", f"{at(5)} message 0 has no 'content' key; add it"),
        ("bad_value", "6", f"{at(6)} message 0 has a dict 'content', expected a string or a list of text parts"),
        ("missing_key", "8", f"{at(8)} the row has no 'messages' value (it has 'prompt', 'completion'); add it"),
        ("bad_value", "9", f"{at(9)} 'messages' holds a str, expected a list of {{role, content}} messages"),
    ]


def test_alpaca_reads_json_lines_too(tmp_path: Path) -> None:
    path = tmp_path / "alpaca.jsonl"
    path.write_text('{"instruction": "Say yes.", "output": "Yes."}\n', encoding="utf-8")
    assert _read(AlpacaSource, str(path)) == [
        _sample("alpaca", "0", str(path), ("user", "Say yes."), ("assistant", "Yes."))]


@pytest.mark.parametrize(("cls", "content", "message"), [
    (AlpacaSource, None, "alpaca: file not found: {p}; check `path` in the recipe (a JSON list or JSON Lines of "
                         "rows {{instruction, input, output}})"),
    (AlpacaSource, " \n", "alpaca: {p} is empty; expected a JSON list or JSON Lines of rows {{instruction, input, "
                          "output}}"),
    (DollySource, "instruction,response\n", "dolly: {p} starts with 'i', neither '[' (a JSON list of rows) nor '{{' "
                                            "(JSON Lines, one object per line); expected a JSON list or JSON Lines of "
                                            "rows {{instruction, context, response, category}}"),
    (ShareGPTSource, '{\n  "conversations": []\n}\n',
     "sharegpt: line 1 of {p} is not valid JSON (Expecting property name enclosed in double quotes, column 2); a "
     "pretty-printed JSON object is neither a list of rows nor JSON Lines; expected a JSON list or JSON Lines of rows "
     "{{id, conversations: [{{from, value}}]}}"),
    (AlpacaSource, '[{"instruction": "x",, "output": "y"}]',
     "alpaca: {p} is not valid JSON (line 1, column 22: Expecting property name enclosed in double quotes); expected "
     "a JSON list or JSON Lines of rows {{instruction, input, output}}"),
    (AlpacaSource, '[{"id": 1, "conversations": [{"from": "human", "value": "hi"}]}]',
     "alpaca: row 0 of {p} has the keys of the sharegpt layout ('id', 'conversations'), not of alpaca (rows "
     "{{instruction, input, output}}); read this file with `kind: sharegpt`"),
    (AlpacaSource, '{"instruction": "Q", "context": "", "response": "A", "category": "open_qa"}\n',
     "alpaca: row 0 (line 1) of {p} has the keys of the dolly layout ('instruction', 'context', 'response', "
     "'category'), not of alpaca (rows {{instruction, input, output}}); read this file with `kind: dolly`"),
    (OpenAIMessagesSource, '{"prompt": "Q", "completion": "A"}\n',
     "openai_messages: row 0 (line 1) of {p} has none of the keys 'messages' (it has 'prompt', 'completion'); "
     'expected rows {{"messages": [{{role, content}}]}}. Check `path` and `kind`'),
])
def test_whole_file_problems(tmp_path: Path, cls: type[Source], content: str | None, message: str) -> None:
    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SourceError) as e:
        _read(cls, str(path))
    assert str(e.value) == message.format(p=path)


def test_jsonl_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n')
    with pytest.raises(SourceError) as e:
        _read(AlpacaSource, str(path))
    assert str(e.value) == f"alpaca: line 2 of {path} is not UTF-8 text; save the file as UTF-8"


# ---- hf_dataset ------------------------------------------------------------------------------------------------

datasets = pytest.importorskip("datasets")

ALPACA_ROWS = [
    {"instruction": "Name a colour.", "input": "", "output": "Blue."},
    {"instruction": "Double the number.", "input": "21", "output": "42"},
    {"instruction": "", "input": "", "output": "Nothing asked."},
]
SHAREGPT_ROWS = [
    {"id": "a", "conversations": [{"from": "human", "value": "Hi."}, {"from": "gpt", "value": "Hello."}]},
    {"id": "b", "conversations": [{"from": "gpt", "value": "Welcome."}, {"from": "human", "value": "Capital of "
                                  "Spain?"}, {"from": "gpt", "value": "Madrid."}]},
]
OPENAI_ROWS = [
    {"messages": [{"role": "user", "content": "One plus one?"}, {"role": "assistant", "content": "Two."}]},
    {"messages": [{"role": "user", "content": "Two plus two?"}, {"role": "assistant", "content": "Four."}]},
    {"messages": [{"role": "user", "content": "Three plus three?"}, {"role": "assistant", "content": "Six."}]},
]


def _hf(path: Path, **kw: Any) -> list[Sample | Reject]:
    return _read(HFDatasetSource, str(path), **kw)


def test_hf_save_to_disk_alpaca_auto_detected(tmp_path: Path) -> None:
    folder = tmp_path / "alpaca_disk"
    datasets.Dataset.from_list(ALPACA_ROWS).save_to_disk(str(folder))
    samples, rejects = _split(_hf(folder))
    f, k = str(folder), "hf_dataset"
    assert samples == [
        _sample(k, "0", f, ("user", "Name a colour."), ("assistant", "Blue.")),
        _sample(k, "1", f, ("user", "Double the number.\n\n21"), ("assistant", "42")),
    ]
    assert rejects == [("empty_question", "2", f"hf_dataset: row 2 of {f}: 'instruction' is empty")]


def test_hf_dataset_dict_splits_and_ids(tmp_path: Path) -> None:
    folder = tmp_path / "chat_dict"
    train = datasets.Dataset.from_list(SHAREGPT_ROWS)
    test = datasets.Dataset.from_list([{"id": "c", "conversations": [{"from": "human", "value": "Bye."},
                                                                     {"from": "gpt", "value": "Goodbye."}]}])
    datasets.DatasetDict(train=train, test=test).save_to_disk(str(folder))
    f, k = str(folder), "hf_dataset"
    everything = _hf(folder, name="chats")
    assert everything == [
        _sample("chats", "a", f, ("user", "Hi."), ("assistant", "Hello."), kind=k),
        _sample("chats", "b", f, ("user", "Capital of Spain?"), ("assistant", "Madrid."), kind=k,
                repairs=("dropped_leading_assistant",)),
        _sample("chats", "c", f, ("user", "Bye."), ("assistant", "Goodbye."), kind=k),
    ]
    assert [x.id for x in _hf(folder, splits=["test"])] == ["hf_dataset/c/text/0"]
    with pytest.raises(SourceError) as e:
        _hf(folder, splits=["validation"])
    assert str(e.value) == (f"hf_dataset: {f} has no split(s) 'validation'; its splits are 'train', 'test'. "
                            "Fix `splits`")


def test_hf_dataset_dict_without_ids_uses_split_and_index(tmp_path: Path) -> None:
    folder = tmp_path / "alpaca_dict"
    datasets.DatasetDict(train=datasets.Dataset.from_list(ALPACA_ROWS[:1]),
                         test=datasets.Dataset.from_list(ALPACA_ROWS[1:])).save_to_disk(str(folder))
    items = _hf(folder)
    assert [(type(x).__name__, x.id if isinstance(x, Sample) else x.record) for x in items] == [
        ("Sample", "hf_dataset/train/0/text/0"), ("Sample", "hf_dataset/test/0/text/0"), ("Reject", "test/1")]
    assert items[2].message == f"hf_dataset: row 1 of split 'test' of {folder}: 'instruction' is empty"


def test_hf_parquet_folder_in_file_order_with_limit(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    datasets.Dataset.from_list(OPENAI_ROWS[2:]).to_parquet(str(folder / "data" / "part-1.parquet"))
    datasets.Dataset.from_list(OPENAI_ROWS[:2]).to_parquet(str(folder / "data" / "part-0.parquet"))
    (folder / "notes.txt").write_text("not data", encoding="utf-8")
    cache = str(tmp_path / "cache")
    f, k = str(folder), "hf_dataset"
    assert _hf(folder, cache_dir=cache) == [
        _sample(k, "0", f, ("user", "One plus one?"), ("assistant", "Two.")),
        _sample(k, "1", f, ("user", "Two plus two?"), ("assistant", "Four.")),
        _sample(k, "2", f, ("user", "Three plus three?"), ("assistant", "Six.")),
    ]
    assert [x.id for x in _hf(folder, cache_dir=cache, limit=2)] == ["hf_dataset/0/text/0", "hf_dataset/1/text/0"]
    assert [x.id for x in _hf(folder, cache_dir=cache, files="data/part-1.parquet")] == ["hf_dataset/0/text/0"]
    one = folder / "data" / "part-1.parquet"
    assert _hf(one, cache_dir=cache, format="openai_messages") == [
        _sample(k, "0", str(one), ("user", "Three plus three?"), ("assistant", "Six."))]


def test_hf_dolly_format_named(tmp_path: Path) -> None:
    folder = tmp_path / "dolly_disk"
    datasets.Dataset.from_list([{"instruction": "Which city?", "context": "Paris is the capital of France.",
                                 "response": "Paris.", "category": "closed_qa"}]).save_to_disk(str(folder))
    f = str(folder)
    expected = [_sample("hf_dataset", "0", f, ("user", "Paris is the capital of France.\n\nWhich city?"),
                        ("assistant", "Paris."))]
    assert _hf(folder) == expected
    assert _hf(folder, format="dolly") == expected


@pytest.mark.parametrize(("rows", "kw", "message"), [
    ([{"prompt": "Q", "completion": "A"}], {},
     "hf_dataset: cannot tell the row layout of {f} from the columns ('prompt', 'completion'); set `format` to one "
     "of alpaca, sharegpt, dolly, openai_messages (columns that mark each: alpaca: instruction + output; sharegpt: "
     "conversations; dolly: instruction + response; openai_messages: messages)"),
    ([{"instruction": "Q", "output": "A", "response": "A"}], {},
     "hf_dataset: the columns of {f} ('instruction', 'output', 'response') fit several row layouts (alpaca, dolly); "
     "set `format` to the right one"),
    (ALPACA_ROWS, {"format": "sharegpt"},
     "hf_dataset: the columns of {f} has the keys of the alpaca layout ('instruction', 'input', 'output'), not of "
     "sharegpt (rows {{id, conversations: [{{from, value}}]}}); set `format: alpaca`"),
    (ALPACA_ROWS, {"splits": ["train"]},
     "hf_dataset: `splits` selects splits of a DatasetDict, but {f} holds a single Dataset; remove `splits`"),
])
def test_hf_whole_dataset_problems(tmp_path: Path, rows: list[dict[str, Any]], kw: dict[str, Any],
                                   message: str) -> None:
    folder = tmp_path / "ds"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    with pytest.raises(SourceError) as e:
        _hf(folder, **kw)
    assert str(e.value) == message.format(f=folder)


def test_hf_folder_with_no_dataset(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("empty", encoding="utf-8")
    with pytest.raises(SourceError) as e:
        _hf(tmp_path)
    assert str(e.value) == (f"hf_dataset: {tmp_path} holds no save_to_disk dataset (state.json, or dataset_dict.json) "
                            "and no files matching `files: **/*.parquet`; check `path` and `files`")
    with pytest.raises(SourceError, match="is a file but not a .parquet file"):
        _hf(tmp_path / "readme.txt")


# ---- registry and recipe ---------------------------------------------------------------------------------------

def test_registry_has_the_text_sources() -> None:
    assert {k: REGISTRY[k] for k in ("alpaca", "sharegpt", "dolly", "openai_messages", "hf_dataset")} == {
        "alpaca": AlpacaSource, "sharegpt": ShareGPTSource, "dolly": DollySource,
        "openai_messages": OpenAIMessagesSource, "hf_dataset": HFDatasetSource}
    for kind in ("alpaca", "sharegpt", "dolly", "openai_messages", "hf_dataset"):
        assert REGISTRY[kind].kind == kind


def test_recipe_with_text_sources(tmp_path: Path) -> None:
    (tmp_path / "chat.json").write_text(json.dumps(SHAREGPT_ROWS), encoding="utf-8")
    recipe = parse_recipe({"sources": [{"kind": "sharegpt", "path": "chat.json", "text_only": True,
                                        "role_map": {"Model": "assistant"}},
                                       {"kind": "alpaca", "path": ALPACA, "name": "alp", "limit": 3}]},
                          base_dir=tmp_path)
    chat, alp = recipe.sources
    assert chat.path == str(tmp_path / "chat.json") and chat.role_map == {"Model": "assistant"}
    assert alp.source_name == "alp" and alp.limit == 3
    src = REGISTRY[chat.kind](chat, recipe.images)
    assert [x.id for x in src.read()] == ["sharegpt/a/text/0", "sharegpt/b/text/0"]

    with pytest.raises(RecipeError) as e:
        parse_recipe({"sources": [{"kind": "dolly", "path": "missing.jsonl", "text_only": False},
                                  {"kind": "sharegpt", "path": ALPACA, "role_map": {"bot": "robot"}},
                                  {"kind": "hf_dataset", "path": str(tmp_path), "format": "csv"}]},
                     base_dir=tmp_path)
    assert e.value.errors == [
        "sources[0].text_only: Input should be True",
        "sources[1].role_map.bot: Input should be 'system', 'user' or 'assistant'",
        "sources[2].format: Input should be 'auto', 'alpaca', 'sharegpt', 'dolly' or 'openai_messages'",
    ]
