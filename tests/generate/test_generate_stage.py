"""The generate stage end to end against the scripted loopback LLM: exact samples, lineage, rejects with
reasons, faults, the cache, structured-output fallback, pass-through, stats and API-key secrecy."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from fake_llm import respond
from pipeline.generate.stage import GenerateConfigError, GenerateStage, collect_stats, request_seed
from pipeline.generate.stats import merge_stats, report, summarize
from pipeline.llm.config import GenerateSection
from pipeline.llm.testing import FakeEndpoint, FaultPlan
from schemas.reject import REASONS, Reject
from schemas.record import AnnotationRecord, Caption
from schemas.sample import Sample

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "generate"


def records() -> list[AnnotationRecord]:
    return [AnnotationRecord.model_validate(r) for r in json.loads((ASSETS / "records.json").read_text())]


def with_directive(rec: AnnotationRecord, directive: str) -> AnnotationRecord:
    return rec.model_copy(update={"captions": [Caption(text=f"{rec.captions[0].text} {directive}")]})


def section(ep: FakeEndpoint, cache: Path | None = None, **kw: Any) -> GenerateSection:
    base = dict(endpoint=ep.base_url, model="fake-model", cache_dir=str(cache) if cache else None,
                backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=5.0)
    return GenerateSection(**{**base, **kw})


def run_stage(ep: FakeEndpoint, items: list[Any], cache: Path | None = None, seed: int = 0,
              **kw: Any) -> tuple[list[Any], dict[str, Any]]:
    stage = GenerateStage(section(ep, cache, **kw), seed=seed)
    try:
        out = stage.process_batch(items)
        return out, stage.stats()
    finally:
        stage.close()


def test_samples_are_exact_with_full_lineage() -> None:
    with FakeEndpoint(respond) as ep:
        out, stats = run_stage(ep, records()[:1], prompts=["conversation", "detail", "complex"])
    conv, detail, cplx = out
    assert isinstance(conv, Sample) and isinstance(detail, Sample) and isinstance(cplx, Sample)
    assert [(t.role, t.text) for t in conv.turns] == [
        ("user", "<image>\nWhat can be seen in this image?"),
        ("assistant", "The image shows 1 person and 2 dogs."),
        ("user", "How many people are there?"),
        ("assistant", "There is 1 person."),
    ]
    assert (conv.id, conv.task, conv.source, conv.images[0].path) == (
        "coco/101/self_instruct_conversation/0", "self_instruct_conversation", "coco", "park.jpg")
    lin = conv.lineage
    assert (lin.template_id, lin.template_version, lin.model) == ("self_instruct/conversation", 1, "fake-model")
    assert lin.sampling == {"temperature": 0.7, "top_p": 0.95, "max_tokens": 512,
                            "seed": request_seed(0, conv.id), "json_schema": True}
    assert lin.ann_ids == ["c1", "c2", "o1", "o2", "o3"]
    assert lin.raw_output == json.dumps({"conversation": [
        {"question": "What can be seen in this image?", "answer": "The image shows 1 person and 2 dogs."},
        {"question": "How many people are there?", "answer": "There is 1 person."}]})
    assert lin.filters == ["degenerate", "language", "hallucination", "counting"]
    assert len(lin.prompt_hash or "") == 64
    # The detail request is one of the template's instructions, chosen by (seed, sample id).
    assert detail.turns[0].text == "<image>\nWrite a detailed account of everything you can see in the image."
    assert detail.turns[1].text.startswith("This picture shows 1 person and 2 dogs. A woman walks two dogs")
    assert [(t.role, t.text) for t in cplx.turns] == [
        ("user", "<image>\nWhy might the person be here?"),
        ("assistant", "The person is likely here because of what the scene shows: a woman walks two dogs "
                      "along a park path.")]
    assert stats["units"] == 3 and stats["accepted"] == 3 and stats["llm"]["requests"] == 3


def test_every_unit_is_a_sample_or_a_reject_with_a_reason() -> None:
    recs = records()
    items = [recs[0], with_directive(recs[1], "#hallucinate"), with_directive(recs[0].model_copy(
        update={"id": "105"}), "#wrongcount"), with_directive(recs[2].model_copy(update={"id": "106"}),
                                                             "#garbage-always"), recs[3]]
    with FakeEndpoint(respond) as ep:
        out, stats = run_stage(ep, items, prompts=["conversation"], max_repairs=1)
    kinds = [(type(x).__name__, getattr(x, "reason", None)) for x in out]
    assert kinds == [("Sample", None), ("Reject", "hallucinated_object"), ("Reject", "wrong_count"),
                     ("Reject", "llm_unparseable"), ("Reject", "no_context")]
    assert all(r.reason in REASONS for r in out if isinstance(r, Reject))
    hall, wrong, unparse, noctx = out[1:]
    assert hall.message == (
        "generate/conversation: record 102 of source coco (instances_demo.json): pair 1: the answer names "
        "giraffe, absent from the record (it has: cake, cup, dining table). The sample was filtered out; tune "
        "generate.filters, or use a stronger model (generate.endpoint and generate.model)")
    assert hall.lineage.raw_output and "giraffe" in hall.lineage.raw_output
    assert (hall.sample_id, hall.task, hall.template_id, hall.stage) == (
        "coco/102/self_instruct_conversation/0", "self_instruct_conversation", "self_instruct/conversation",
        "generate")
    assert wrong.message.startswith("generate/conversation: record 105 of source coco (instances_demo.json): "
                                    "pair 2: asked how many person, the answer says 2 but the record has 1 "
                                    "('There are 2 people.')")
    assert unparse.lineage.raw_output == "Sure! Here is a lovely conversation about the picture, I hope you like it."
    assert "no JSON object" in unparse.message and "(after 2 replies)" in unparse.message
    assert noctx.record == "104" and "neither captions nor objects" in noctx.message
    assert stats["units"] == 5 == stats["accepted"] + stats["rejected"]
    assert stats["rejects"] == {"hallucinated_object": 1, "llm_unparseable": 1, "no_context": 1, "wrong_count": 1}
    assert stats["llm"]["repairs"] == 1
    h = stats["hallucination"]
    # 3 parsed replies x 2 answers; the giraffe reply is the only hallucination.
    assert (h["answers"], h["answers_hallucinated"], h["mentions_hallucinated"], h["categories"]) == (
        6, 1, 1, {"giraffe": 1})
    s = summarize(stats)
    assert s["hallucination"]["chair_s"] == round(1 / 6, 4)
    assert s["hallucination"]["chair_i"] == round(1 / h["mentions"], 4)


def test_repair_and_partial_replies_become_samples() -> None:
    recs = records()
    with FakeEndpoint(respond) as ep:
        out, stats = run_stage(ep, [with_directive(recs[0], "#garbage"), with_directive(recs[1], "#truncate")],
                               prompts=["conversation"])
    repaired, partial = out
    assert isinstance(repaired, Sample) and len(repaired.turns) == 4
    assert isinstance(partial, Sample)
    assert [t.text for t in partial.turns] == ["<image>\nWhat can be seen in this image?",
                                              "The image shows 1 cake, 1 cup and 1 dining table."]
    assert partial.lineage.filters[-1] == "parse:partial"
    assert stats["partial_replies"] == 1 and stats["llm"]["repairs"] == 1 and stats["llm"]["requests"] == 3


def test_box_coordinates_in_answers_become_box_markers() -> None:
    rec = with_directive(records()[0], "#box")
    with FakeEndpoint(respond) as ep:
        (sample,), _ = run_stage(ep, [rec], prompts=["conversation"])
    assert sample.turns[1].text == "The image shows 1 person and 2 dogs. It is at <box:0>."
    b = sample.boxes[0]
    assert (b.x1, b.y1, b.x2, b.y2, b.width, b.height) == (256.0, 96.0, 384.0, 432.0, 640, 480)


def test_faulty_endpoint_run_completes_and_counts_add_up() -> None:
    plan = FaultPlan(rate_limit=0.15, server_error=0.15, malformed=0.1, drop=0.1, slow=0.05, retry_after_s=0.01,
                     slow_s=3.0, seed=11)
    recs = records()
    items = recs[:3] + [r.model_copy(update={"id": f"{r.id}-{i}"}) for i in range(3) for r in recs[:3]]
    with FakeEndpoint(respond, plan) as ep:
        out, stats = run_stage(ep, items, timeout_s=1.5, max_retries=2, concurrency=6)
        faults = {k: v for k, v in ep.counts.outcomes.items() if k != "ok"}
    assert set(faults) == {"rate_limit", "server_error", "malformed", "drop", "slow"}
    units = len(items) * 3
    assert stats["units"] == units == len(out) == stats["accepted"] + stats["rejected"]
    rejects = [x for x in out if isinstance(x, Reject)]
    assert stats["rejected"] == len(rejects) > 0
    assert {r.reason for r in rejects} == {"llm_request_failed"}
    for r in rejects:  # each failure names its cause
        assert any(f"[{k}]" in r.message for k in ("rate_limited", "server_error", "malformed", "connection",
                                                   "timeout"))
    assert stats["llm"]["failed"] == len(rejects)
    assert stats["llm"]["requests"] == ep.counts.arrivals
    assert stats["llm"]["ok"] == sum(ep.counts.ok_by_request.values()) == stats["accepted"]


def test_a_cached_rerun_makes_no_call_and_gives_the_same_output(tmp_path: Path) -> None:
    with FakeEndpoint(respond) as ep:
        first, s1 = run_stage(ep, records(), cache=tmp_path)
        calls = ep.counts.arrivals
        second, s2 = run_stage(ep, records(), cache=tmp_path)
        assert ep.counts.arrivals == calls == 9
    assert [x.model_dump() for x in first] == [x.model_dump() for x in second]
    assert (s2["llm"]["requests"], s2["llm"]["cache_hits"]) == (0, 9)
    assert s2["llm"]["cached_completion_tokens"] == s1["llm"]["completion_tokens"] > 0
    assert summarize(s2)["cache_hit_rate"] == 1.0


def test_the_seed_changes_requests_but_not_the_structure() -> None:
    with FakeEndpoint(respond) as ep:
        a, _ = run_stage(ep, records()[:1], seed=1, prompts=["complex"])
        b, _ = run_stage(ep, records()[:1], seed=2, prompts=["complex"])
    assert a[0].lineage.sampling["seed"] != b[0].lineage.sampling["seed"]
    assert a[0].id == b[0].id


def test_structured_output_fallback_is_recorded_in_lineage() -> None:
    with FakeEndpoint(respond, supports_response_format=False) as ep:
        out, stats = run_stage(ep, records()[:2], prompts=["conversation", "complex"])
    assert all(isinstance(x, Sample) for x in out)
    assert {x.lineage.sampling["json_schema"] for x in out} == {False}
    assert stats["llm"]["structured_fallbacks"] >= 1


def test_samples_and_rejects_pass_through_and_records_can_be_kept() -> None:
    recs = records()
    with FakeEndpoint(respond) as ep:
        first, _ = run_stage(ep, recs[:1], prompts=["complex"])
        passing = [first[0], Reject(reason="empty_caption", message="m", stage="source", source="coco")]
        stage = GenerateStage(section(ep, prompts=["complex"]), keep_records=True)
        try:
            out = stage.process_batch([passing[0], recs[1], passing[1]])
        finally:
            stage.close()
    assert out[0] is passing[0] and out[3] is passing[1]
    assert isinstance(out[1], Sample) and out[1].id == "coco/102/self_instruct_complex/0"
    assert out[2] is recs[1]


def test_prompts_per_record_is_a_seeded_choice() -> None:
    with FakeEndpoint(respond) as ep:
        out, stats = run_stage(ep, records()[:3], prompts_per_record=1)
        again, _ = run_stage(ep, records()[:3], prompts_per_record=1)
    assert len(out) == 3 and stats["units"] == 3
    assert [x.task for x in out] == [x.task for x in again]


def test_stage_pickles_without_its_runtime_and_stats_merge(tmp_path: Path) -> None:
    with FakeEndpoint(respond) as ep:
        stage = GenerateStage(section(ep, prompts=["complex"]), stats_dir=str(tmp_path))
        stage.process_batch(records()[:1])
        clone = pickle.loads(pickle.dumps(stage))  # what the runner ships to each actor
        assert clone._rt is None and clone.config == stage.config and clone.stats()["units"] == 0
        out = clone.process_batch(records()[1:3])
        assert isinstance(out[0], Sample)
        clone.close()
        stage.close()
    assert len(list(tmp_path.glob("generate-*.json"))) == 2  # one file per worker
    merged = collect_stats(tmp_path)
    assert (merged["units"], merged["accepted"], merged["llm"]["requests"]) == (3, 3, 3)
    assert merge_stats([{"a": 1, "b": {"c": 2}}, {"a": 2, "b": {"c": 3, "d": 1}}]) == {"a": 3, "b": {"c": 5, "d": 1}}


def test_cost_is_reported_when_prices_are_given() -> None:
    counts = {"llm": {"prompt_tokens": 2000, "completion_tokens": 500, "ok": 2, "cache_hits": 2}}
    s = summarize(counts, cost_per_1k_prompt=0.5, cost_per_1k_completion=2.0)
    assert s["cost"] == 2.0 and s["cache_hit_rate"] == 0.5
    r = report([counts, counts], 0.5, 2.0)
    assert r["cost"] == 4.0 and r["llm"]["prompt_tokens"] == 4000
    assert "cost" not in summarize(counts)


def test_missing_api_key_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLFORGE_TEST_KEY", raising=False)
    stage = GenerateStage(GenerateSection(endpoint="http://127.0.0.1:9/v1", model="m", api_key_env="VLFORGE_TEST_KEY"))
    with pytest.raises(GenerateConfigError, match="the environment variable VLFORGE_TEST_KEY is not set"):
        stage.setup()


def test_api_key_never_reaches_outputs_lineage_cache_stats_or_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-proj-NEVER-SHOW-9f3a1c"
    monkeypatch.setenv("VLFORGE_TEST_KEY", secret)
    caplog.set_level(logging.DEBUG)
    recs = records()
    items = [recs[0], with_directive(recs[1], "#garbage-always"), recs[3]]
    with FakeEndpoint(respond, FaultPlan(server_error=0.2, seed=5), expected_key=secret) as ep:
        stage = GenerateStage(section(ep, tmp_path / "cache", api_key_env="VLFORGE_TEST_KEY"),
                              stats_dir=str(tmp_path / "stats"))
        out = stage.process_batch(items)
        text = "\n".join(x.model_dump_json() for x in out) + json.dumps(stage.stats()) + repr(stage)
        text += pickle.dumps(stage).decode("latin-1")
        stage.close()
        assert ep.counts.auth_ok == ep.counts.arrivals > 0 and ep.counts.auth_bad == 0
    files = "".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file())
    assert "llm_unparseable" in text and len(files) > 1000
    captured = capsys.readouterr()
    for where in (text, files, caplog.text, captured.out, captured.err):
        assert secret not in where
