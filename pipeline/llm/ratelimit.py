"""Requests-per-minute and tokens-per-minute limits as async token buckets.

A bucket holds at most `burst_s` seconds' worth of its per-minute budget and refills continuously, so
traffic is smooth rather than a burst of a whole minute's requests at the start. Token use is reserved
before a request (prompt estimate + max_tokens) and the unused part is returned once the reply's usage
is known. Clock and sleep are injectable so tests need not wait.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable


class TokenBucket:
    """An async token bucket refilled at `per_minute / 60` units per second."""

    def __init__(self, per_minute: float, burst_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute}")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self._level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = asyncio.Lock()
        #: Total seconds spent waiting for the bucket (reported in stats).
        self.waited_s = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._last) * self.rate)
        self._last = now

    async def acquire(self, amount: float = 1.0) -> float:
        """Wait until `amount` units are available and take them; returns the seconds this call waited.
        Requests larger than the bucket wait for a full bucket and take all of it (so they cannot block
        forever)."""
        amount = min(amount, self.capacity)
        start = self._clock()
        async with self._lock:  # first come, first served
            while True:
                self._refill()
                if self._level >= amount:
                    self._level -= amount
                    waited = self._clock() - start
                    self.waited_s += waited
                    return waited
                await self._sleep((amount - self._level) / self.rate)

    def release(self, amount: float) -> None:
        """Give back units reserved but not used."""
        if amount > 0:
            self._refill()
            self._level = min(self.capacity, self._level + amount)


class RateLimiter:
    """Both limits together; either may be None (unlimited)."""

    def __init__(self, rpm: float | None, tpm: float | None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.requests = TokenBucket(rpm, clock=clock, sleep=sleep) if rpm else None
        # Tokens come in bigger lumps than requests: allow 10 s of budget at once.
        self.tokens = TokenBucket(tpm, burst_s=10.0, clock=clock, sleep=sleep) if tpm else None

    async def acquire(self, tokens: int) -> float:
        """Take one request and `tokens` tokens; returns the seconds spent waiting."""
        waited = 0.0
        if self.requests is not None:
            waited += await self.requests.acquire(1.0)
        if self.tokens is not None:
            waited += await self.tokens.acquire(float(tokens))
        return waited

    def settle(self, reserved: int, used: int) -> None:
        """Return the part of a token reservation the request did not use."""
        if self.tokens is not None and used < reserved:
            self.tokens.release(float(reserved - used))

    @property
    def waited_s(self) -> float:
        return sum(b.waited_s for b in (self.requests, self.tokens) if b is not None)


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token), used only to reserve rate-limit budget."""
    return max(1, (len(text) + 3) // 4)
