"""LLMClient against the misbehaving loopback endpoint: every fault kind, retries, Retry-After, timeouts,
the cache, structured-output fallback, repairs, the concurrency limit and the secrecy of the API key."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest

from pipeline.llm.cache import ResponseCache
from pipeline.llm.client import Completion, LLMClient, LLMReplyError, LLMRequestError, ReplyParseError, Sampling
from pipeline.llm.testing import FakeEndpoint, FaultPlan, wait_until

S = Sampling(temperature=0.0, top_p=1.0, max_tokens=32, seed=1)
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}


def msgs(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"question {i}"}]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with_client(ep: FakeEndpoint, fn: Any, **kw: Any) -> Any:
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("backoff_max_s", 0.05)
    c = LLMClient(ep.base_url, "fake-model", **kw)
    try:
        return await fn(c)
    finally:
        await c.aclose()


@pytest.mark.parametrize("fault,kind", [("rate_limit", "rate_limited"), ("server_error", "server_error"),
                                        ("malformed", "malformed"), ("drop", "connection"),
                                        ("slow", "timeout")])
def test_each_fault_is_retried_then_reported_by_kind(fault: str, kind: str) -> None:
    timeout = 0.5 if fault == "slow" else 10.0  # generous unless the timeout is the point (busy CI machines)
    with FakeEndpoint(faults=FaultPlan(**{fault: 1.0}, retry_after_s=0.01, slow_s=2.0)) as ep:
        with pytest.raises(LLMRequestError) as err:
            run(_with_client(ep, lambda c: c.chat(msgs(0), S), max_retries=2, timeout_s=timeout))
        assert err.value.kind == kind
        assert err.value.attempts == 3
        assert "after 3 attempt(s)" in str(err.value) and ep.base_url in str(err.value)
        assert wait_until(lambda: ep.counts.arrivals == 3, timeout_s=5)
        assert ep.counts.outcomes[fault] == 3


def test_mixed_faults_all_requests_complete_and_each_success_is_counted_once() -> None:
    plan = FaultPlan(rate_limit=0.1, server_error=0.1, malformed=0.1, drop=0.1, slow=0.05, retry_after_s=0.01,
                     slow_s=3.0, seed=3)

    async def go(c: LLMClient) -> list[Completion]:
        return list(await asyncio.gather(*(c.chat(msgs(i), S) for i in range(40))))

    with FakeEndpoint(faults=plan) as ep:
        stats_holder: dict[str, Any] = {}

        async def go_and_keep(c: LLMClient) -> list[Completion]:
            out = await go(c)
            stats_holder.update(c.stats.as_dict())
            return out

        out = run(_with_client(ep, go_and_keep, max_retries=10, timeout_s=1.5, concurrency=8))
        assert len(out) == 40 and all(not c.cached for c in out)
        assert sorted(json.loads(c.content)["echo"] for c in out) == sorted(
            {json.loads(c.content)["echo"] for c in out})  # 40 distinct replies
        assert sum(ep.counts.ok_by_request.values()) == 40
        assert set(ep.counts.ok_by_request.values()) == {1}
        faults = sum(ep.counts.outcomes[f] for f in ("rate_limit", "server_error", "malformed", "drop", "slow"))
        assert faults > 0
        st = stats_holder
        assert st["ok"] == 40 and st["failed"] == 0
        assert st["requests"] == ep.counts.arrivals == 40 + faults
        assert st["retries"] == faults
        assert sum(st["errors"].values()) == faults


def test_retry_after_is_honoured_before_the_next_try() -> None:
    # Arrival 0 of the request is rate limited (decided by the seed), arrival 1 succeeds.
    plan = FaultPlan(rate_limit=0.5, retry_after_s=0.4, seed=0)
    seed = next(s for s in range(100) if _outcomes(FaultPlan(rate_limit=0.5, seed=s), msgs(0)) == ["rate_limit", "ok"])
    plan.seed = seed
    with FakeEndpoint(faults=plan) as ep:
        t0 = time.monotonic()
        c = run(_with_client(ep, lambda c: c.chat(msgs(0), S), backoff_base_s=0.0))
        elapsed = time.monotonic() - t0
    assert json.loads(c.content)["echo"]
    assert ep.counts.outcomes == {"rate_limit": 1, "ok": 1}
    assert elapsed >= 0.4


def _outcomes(plan: FaultPlan, messages: list[dict[str, str]]) -> list[str]:
    from pipeline.llm.testing import body_hash

    body = {"model": "fake-model", "messages": messages, **S.as_dict()}
    return [plan.decide(body_hash(body), n) for n in range(2)]


def test_cache_makes_no_call_twice_and_survives_a_new_client(tmp_path) -> None:
    with FakeEndpoint() as ep:
        cache = ResponseCache(tmp_path)

        async def go(c: LLMClient) -> tuple[Completion, Completion, Completion]:
            a = await c.chat(msgs(1), S)
            b = await c.chat(msgs(1), S)
            d = await c.chat(msgs(1), Sampling(0.0, 1.0, 32, seed=2))
            return a, b, d

        a, b, d = run(_with_client(ep, go, cache=cache))
        assert (a.cached, b.cached, d.cached) == (False, True, False)
        assert a.content == b.content and a.key == b.key != d.key
        assert ep.counts.arrivals == 2
        again = run(_with_client(ep, lambda c: c.chat(msgs(1), S), cache=ResponseCache(tmp_path)))
        assert again.cached and again.content == a.content
        assert (again.prompt_tokens, again.completion_tokens) == (a.prompt_tokens, a.completion_tokens)
        assert ep.counts.arrivals == 2


def test_identical_requests_in_flight_share_one_call() -> None:
    def slow(body: dict[str, Any]) -> str:
        time.sleep(0.2)
        return '{"answer": "x"}'

    with FakeEndpoint(slow) as ep:
        async def go(c: LLMClient) -> list[Completion]:
            return list(await asyncio.gather(*(c.chat(msgs(5), S) for _ in range(3))))

        out = run(_with_client(ep, go))
        assert [c.content for c in out] == ['{"answer": "x"}'] * 3
        assert ep.counts.arrivals == 1


def test_concurrency_limit_holds() -> None:
    lock = threading.Lock()
    live = [0, 0]  # now, peak

    def counting(body: dict[str, Any]) -> str:
        with lock:
            live[0] += 1
            live[1] = max(live[1], live[0])
        time.sleep(0.1)
        with lock:
            live[0] -= 1
        return "{}"

    with FakeEndpoint(counting) as ep:
        async def go(c: LLMClient) -> None:
            await asyncio.gather(*(c.chat(msgs(i), S) for i in range(8)))

        run(_with_client(ep, go, concurrency=2))
    assert live[1] == 2


def test_requests_per_minute_limit_spaces_calls() -> None:
    with FakeEndpoint() as ep:
        async def go(c: LLMClient) -> float:
            await asyncio.gather(*(c.chat(msgs(i), S) for i in range(15)))
            return c.stats.rate_limit_wait_s

        t0 = time.monotonic()
        waited = run(_with_client(ep, go, rpm=600, concurrency=15))  # 10/s, burst of 10: 5 wait 0.1 s each
        assert time.monotonic() - t0 >= 0.45
        assert waited >= 0.45  # the 15th request alone cannot start before 0.5 s
        assert ep.counts.arrivals == 15


def test_structured_output_falls_back_when_the_server_refuses_response_format() -> None:
    with FakeEndpoint(lambda b: '{"answer": "fine"}', supports_response_format=False) as ep:
        async def go(c: LLMClient) -> tuple[Completion, Completion, LLMClient]:
            a = await c.chat(msgs(1), S, SCHEMA, "qa")
            b = await c.chat(msgs(2), S, SCHEMA, "qa")
            return a, b, c

        a, b, c = run(_with_client(ep, go))
        assert (a.structured, b.structured) == (False, False)
        assert c.schema_supported is False and c.stats.structured_fallbacks == 1
        assert ep.counts.outcomes == {"bad_request": 1, "ok": 2}


def test_structured_output_is_sent_when_supported() -> None:
    seen: list[dict[str, Any]] = []

    def record(body: dict[str, Any]) -> str:
        seen.append(body)
        return '{"answer": "fine"}'

    with FakeEndpoint(record) as ep:
        out = run(_with_client(ep, lambda c: c.chat(msgs(1), S, SCHEMA, "qa")))
    assert out.structured
    assert seen[0]["response_format"] == {"type": "json_schema",
                                          "json_schema": {"name": "qa", "schema": SCHEMA, "strict": True}}
    assert (seen[0]["temperature"], seen[0]["top_p"], seen[0]["max_tokens"], seen[0]["seed"]) == (0.0, 1.0, 32, 1)


def test_client_errors_are_not_retried() -> None:
    with FakeEndpoint(supports_response_format=False) as ep:
        with pytest.raises(LLMRequestError) as err:
            run(_with_client(ep, lambda c: c.chat(msgs(1), S, SCHEMA, "qa"), structured_output="json_schema"))
    assert err.value.kind == "client_error" and err.value.attempts == 1
    assert "HTTP 400" in str(err.value)


def _parse_answer(c: Completion) -> str:
    try:
        return json.loads(c.content)["answer"]
    except (ValueError, KeyError):
        raise ReplyParseError("expected {\"answer\": ...}") from None


def test_chat_json_repairs_a_broken_reply_once() -> None:
    def fixable(body: dict[str, Any]) -> str:
        last = body["messages"][-1]["content"]
        return '{"answer": "repaired"}' if last.startswith("That reply cannot be used") else "no json here"

    with FakeEndpoint(fixable) as ep:
        async def go(c: LLMClient) -> Any:
            return await c.chat_json(msgs(1), S, SCHEMA, _parse_answer, "qa", max_repairs=1), c

        parsed, c = run(_with_client(ep, go))
    assert parsed.value == "repaired"
    assert [x.content for x in parsed.completions] == ["no json here", '{"answer": "repaired"}']
    assert c.stats.repairs == 1 and ep.counts.arrivals == 2


def test_chat_json_gives_up_after_the_repairs() -> None:
    with FakeEndpoint(lambda b: "never json") as ep:
        with pytest.raises(LLMReplyError) as err:
            run(_with_client(ep, lambda c: c.chat_json(msgs(1), S, SCHEMA, _parse_answer, "qa", max_repairs=2)))
    assert [r.content for r in err.value.replies] == ["never json"] * 3
    assert "after 3 replies" in str(err.value)
    assert ep.counts.arrivals == 3


def test_api_key_is_sent_but_never_logged_or_cached(tmp_path, caplog, capsys) -> None:
    secret = "sk-test-DO-NOT-LEAK-4b1d"
    caplog.set_level(logging.DEBUG)
    with FakeEndpoint(expected_key=secret, faults=FaultPlan(server_error=0.3, seed=1)) as ep:
        async def go(c: LLMClient) -> str:
            await asyncio.gather(*(c.chat(msgs(i), S) for i in range(6)))
            return repr(c) + json.dumps(c.stats.as_dict())

        text = run(_with_client(ep, go, api_key=secret, cache=ResponseCache(tmp_path), max_retries=8))
        assert ep.counts.auth_ok == ep.counts.arrivals > 6 and ep.counts.auth_bad == 0
    out = capsys.readouterr()
    files = "".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) > 0
    for where in (text, files, caplog.text, out.out, out.err):
        assert secret not in where
