"""The generate section's validation (no inline keys, clear messages) and JSON extraction from replies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.llm.config import GenerateSection
from pipeline.llm.jsonx import JSONExtractError, extract_json


def test_defaults_and_a_remote_endpoint() -> None:
    g = GenerateSection()
    assert (g.endpoint, g.model_name, g.prompts, g.concurrency) == ("local", "SmolLM2-135M-Instruct",
                                                                     ["conversation", "detail", "complex"], 4)
    r = GenerateSection(endpoint="https://api.example.com/v1/", model="gpt-x", api_key_env="MY_KEY")
    assert (r.endpoint, r.model_name, r.api_key_env) == ("https://api.example.com/v1", "gpt-x", "MY_KEY")


def test_an_inline_key_is_refused_without_echoing_it() -> None:
    secret = "sk-live-SECRET-123"
    with pytest.raises(ValidationError) as err:
        GenerateSection(endpoint="https://api.example.com/v1", model="m", api_key=secret)
    text = str(err.value)
    assert secret not in text and repr(secret) not in repr(err.value.errors())
    assert "environment variable" in text and "api_key_env" in text


def test_a_key_pasted_into_api_key_env_is_not_echoed() -> None:
    secret = "sk-live-SECRET-456"
    with pytest.raises(ValidationError) as err:
        GenerateSection(api_key_env=secret)
    msgs = [e["msg"] for e in err.value.errors()]
    assert msgs == ["Value error, api_key_env must be the NAME of an environment variable (letters, digits, _), "
                    "e.g. OPENAI_API_KEY; put the key itself in that variable"]


@pytest.mark.parametrize("data,needle", [
    ({"endpoint": "api.example.com"}, "endpoint must be 'local' or a base URL"),
    ({"endpoint": "http://h:1/v1"}, "model is required when endpoint is a URL"),
    ({"prompts": []}, "prompts is empty"),
    ({"prompts": ["detail", "detail"]}, "lists a kind twice"),
    ({"prompts": ["poem"]}, "Input should be 'conversation', 'detail' or 'complex'"),
    ({"language": "xx"}, "unknown language 'xx'"),
    ({"filters": {"min_answer_words": 5, "max_answer_words": 4}}, "max_answer_words (4) is below"),
    ({"concurrency": 0}, "greater than or equal to 1"),
    ({"temprature": 0.3}, "Extra inputs are not permitted"),
])
def test_bad_sections_say_what_to_fix(data: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        GenerateSection(**data)
    assert needle in str(err.value)


def test_extract_json_good_fenced_and_surrounded() -> None:
    assert extract_json('{"a": 1}').value == {"a": 1}
    got = extract_json('Here you go:\n```json\n{"a": [1, 2]}\n```\nEnjoy [really].')
    assert (got.value, got.partial) == ({"a": [1, 2]}, False)
    assert extract_json('Note [1]: {"q": "x"}').value == {"q": "x"}


def test_extract_json_salvages_a_reply_cut_off_by_the_token_limit() -> None:
    got = extract_json('{"conversation": [{"question": "a?", "answer": "b."}, {"question": "c?", "ans')
    assert (got.value, got.partial) == ({"conversation": [{"question": "a?", "answer": "b."}]}, True)
    got = extract_json('{"x": {"y": [1, 2, {"z": "}"}], "w": [3')
    assert (got.value, got.partial) == ({"x": {"y": [1, 2, {"z": "}"}]}}, True)


@pytest.mark.parametrize("text,needle", [
    ("Sure, here is a conversation.", "no JSON object"),
    ('{"description": "a long text that never ends', "cut off before any complete element"),
    ('{"a": 1,, "b": 2}', "does not parse"),
])
def test_extract_json_broken(text: str, needle: str) -> None:
    with pytest.raises(JSONExtractError) as err:
        extract_json(text)
    assert needle in str(err.value)
