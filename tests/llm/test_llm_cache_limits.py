"""The reply cache (keys, atomic entries, damaged entries), the rate-limit buckets and the backoff."""

from __future__ import annotations

import asyncio
import json
from email.utils import format_datetime
from datetime import datetime, timezone

from pipeline.llm.cache import ResponseCache, messages_hash, request_key
from pipeline.llm.ratelimit import RateLimiter, TokenBucket, estimate_tokens
from pipeline.llm.retry import MAX_RETRY_AFTER_S, Backoff, parse_retry_after

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
SAMPLING = {"temperature": 0.7, "top_p": 0.95, "max_tokens": 64, "seed": 3}


def test_request_key_depends_on_model_messages_and_sampling_only() -> None:
    k = request_key("m", MSGS, SAMPLING)
    assert len(k) == 64
    assert request_key("m", [dict(m) for m in MSGS], dict(reversed(list(SAMPLING.items())))) == k
    assert request_key("other", MSGS, SAMPLING) != k
    assert request_key("m", MSGS[:1], SAMPLING) != k
    assert request_key("m", MSGS, {**SAMPLING, "seed": 4}) != k
    assert request_key("m", MSGS, {**SAMPLING, "response_format": {"type": "json_object"}}) != k
    assert messages_hash(MSGS) == messages_hash([dict(m) for m in MSGS]) != messages_hash(MSGS[1:])


def test_cache_round_trip_is_atomic_and_self_describing(tmp_path) -> None:
    cache = ResponseCache(tmp_path / "c")
    key = request_key("m", MSGS, SAMPLING)
    assert cache.get(key) is None
    cache.put(key, {"content": "{\"a\": 1}", "finish_reason": "stop", "usage": {"prompt_tokens": 5,
                                                                               "completion_tokens": 2}})
    got = cache.get(key)
    assert got == {"v": 1, "key": key, "content": "{\"a\": 1}", "finish_reason": "stop",
                   "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    files = sorted(p.relative_to(tmp_path / "c").as_posix() for p in (tmp_path / "c").rglob("*") if p.is_file())
    assert files == [f"{key[:2]}/{key}.json"]  # no temporary file left behind
    assert len(cache) == 1


def test_damaged_or_foreign_entries_are_misses(tmp_path) -> None:
    cache = ResponseCache(tmp_path)
    key = request_key("m", MSGS, SAMPLING)
    p = cache.path(key)
    p.parent.mkdir(parents=True)
    p.write_text("{\"v\": 1, \"key\": \"", encoding="utf-8")  # cut short
    assert cache.get(key) is None
    p.write_text(json.dumps({"v": 0, "key": key, "content": "x"}), encoding="utf-8")  # older layout
    assert cache.get(key) is None
    p.write_text(json.dumps({"v": 1, "key": "0" * 64, "content": "x"}), encoding="utf-8")  # wrong key
    assert cache.get(key) is None
    cache.put(key, {"content": "ok"})
    assert cache.get(key)["content"] == "ok"


class FakeClock:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(round(s, 6))
        self.now += s


def test_request_bucket_spaces_requests_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(60, clock=clock, sleep=clock.sleep)  # 1 per second, burst of 1

    async def go() -> None:
        for _ in range(4):
            await bucket.acquire()

    asyncio.run(go())
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert clock.now == 103.0
    assert bucket.waited_s == 3.0


def test_token_bucket_refund_and_oversized_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=600, clock=clock, sleep=clock.sleep)  # 10 tokens/s, burst 100
    assert limiter.tokens is not None and limiter.tokens.capacity == 100.0

    async def go() -> None:
        await limiter.acquire(80)          # fits the full bucket
        limiter.settle(reserved=80, used=30)  # 50 come back: level 70
        await limiter.acquire(70)          # no wait
        await limiter.acquire(500)         # larger than the bucket: waits for a full bucket (10 s)

    asyncio.run(go())
    assert clock.sleeps == [10.0]
    assert estimate_tokens("abcdefgh") == 2 and estimate_tokens("") == 1


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    when = datetime(2030, 1, 1, 0, 0, 30, tzinfo=timezone.utc)
    now = datetime(2030, 1, 1, 0, 0, 0, tzinfo=timezone.utc).timestamp()
    assert parse_retry_after({"retry-after": format_datetime(when, usegmt=True)}, now=now) == 30.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    b = Backoff(base_s=1.0, max_s=8.0, seed=7)
    delays = [b.delay(n) for n in range(6)]
    for n, d in enumerate(delays):
        cap = min(8.0, 2.0 ** n)
        assert cap / 2 <= d <= cap
    again = Backoff(base_s=1.0, max_s=8.0, seed=7)
    assert [again.delay(n) for n in range(6)] == delays  # seeded jitter: the same waits every run
    assert len(set(delays)) == 6
    assert b.delay(3, retry_after_s=0.2) == 0.2
    assert b.delay(0, retry_after_s=1e6) == MAX_RETRY_AFTER_S
