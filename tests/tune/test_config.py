"""The tune section: defaults, and errors that say what was wrong and list the choices."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.tune.config import IAAStage, LoraStage, ProjectorStage, TuneSection


def _error(data: dict) -> str:
    with pytest.raises(ValidationError) as e:
        TuneSection.model_validate(data)
    return str(e.value)


def test_defaults_follow_the_paper_recipe() -> None:
    s = TuneSection()
    assert [type(x) for x in s.stages] == [ProjectorStage, IAAStage]
    assert (s.stages[0].lr, s.stages[0].steps, s.stages[1].lr, s.stages[1].steps) == (1e-3, 20, 2e-5, 40)
    assert s.stages[1].insert_at is None and s.stages[1].warmup == 0.03 and s.stages[1].schedule == "cosine"
    assert (s.model.llm, s.model.vision, s.precision, s.workers, s.eval.heldout) == ("embedded", "embedded",
                                                                                     "fp32", 1, 0.1)
    assert not s.distributed


def test_stage_options_parse_per_method() -> None:
    s = TuneSection.model_validate({"stages": [{"method": "lora", "lr": 1e-4, "steps": 5, "rank": 4, "dora": True,
                                                "targets": ["q_proj"]}], "workers": 2})
    st = s.stages[0]
    assert isinstance(st, LoraStage) and (st.rank, st.alpha, st.dora, st.targets) == (4, 16.0, True, ["q_proj"])
    assert s.distributed


def test_unknown_method_lists_the_choices() -> None:
    msg = _error({"stages": [{"method": "qlora", "lr": 1e-4, "steps": 1}]})
    assert "stages[0]: method 'qlora' is not supported. Choose one: projector, lora, last_layers, full, iaa" in msg


def test_missing_method_and_bad_precision_and_schedule() -> None:
    assert "stages[0] has no `method`. Choose one: projector" in _error({"stages": [{"lr": 1, "steps": 1}]})
    assert "precision 'fp16' is not supported. Choose one: fp32, bf16" in _error({"precision": "fp16"})
    msg = _error({"stages": [{"method": "full", "lr": 1e-5, "steps": 1, "schedule": "step"}]})
    assert "schedule 'step' is not supported. Choose one: cosine, linear, constant" in msg


def test_option_of_another_method_is_an_unknown_key() -> None:
    msg = _error({"stages": [{"method": "projector", "lr": 1e-3, "steps": 1, "rank": 8}]})
    assert "stages.0.projector.rank" in msg and "Extra inputs are not permitted" in msg


def test_schedule_changes_the_llm_one_way_only() -> None:
    msg = _error({"stages": [{"method": "lora", "lr": 1e-4, "steps": 1}, {"method": "iaa", "lr": 1e-5, "steps": 1}]})
    assert "stages combine lora and iaa" in msg and "Choose one of: lora, last_layers, full, iaa" in msg
    # any number of projector stages around one LLM method is fine
    TuneSection.model_validate({"stages": [{"method": "projector", "lr": 1e-3, "steps": 1},
                                           {"method": "iaa", "lr": 1e-5, "steps": 1},
                                           {"method": "iaa", "lr": 1e-6, "steps": 1}]})


def test_vlm_excludes_llm_and_vision_and_iaa() -> None:
    assert "not both. Choose one." in _error({"model": {"vlm": "x", "llm": "y"}})
    msg = _error({"model": {"vlm": "x"}, "stages": [{"method": "iaa", "lr": 1e-5, "steps": 1}]})
    assert "projector or lora only; got iaa. Choose one: projector, lora" in msg


def test_iaa_insert_at_is_validated() -> None:
    assert "insert_at is empty" in _error({"stages": [{"method": "iaa", "lr": 1, "steps": 1, "insert_at": []}]})
    assert "distinct layer indices" in _error({"stages": [{"method": "iaa", "lr": 1, "steps": 1,
                                                            "insert_at": [3, 3]}]})
    s = TuneSection.model_validate({"stages": [{"method": "iaa", "lr": 1, "steps": 1, "insert_at": [5, 0]}]})
    assert s.stages[0].insert_at == [0, 5]


def test_numeric_ranges() -> None:
    msg = _error({"batch_size": 0, "eval": {"heldout": 1.0}, "stages": [{"method": "full", "lr": 0, "steps": 0}]})
    for key in ("batch_size", "eval.heldout", "stages.0.full.lr", "stages.0.full.steps"):
        assert key in msg
