"""Which request failures are worth retrying, and how long to wait before the next try.

Retried: 429 (rate limited; its `Retry-After` is honoured), 408/409 and 5xx, timeouts, dropped
connections and replies whose body is not a chat completion. Not retried: other 4xx (a bad request or
bad credentials does not get better by asking again).
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

#: Failure kinds, as counted in stats and named in reject messages.
FAILURE_KINDS = ("rate_limited", "server_error", "timeout", "connection", "malformed", "client_error",
                 "unexpected")
#: A `Retry-After` longer than this is cut to it, so one answer cannot stall a run for hours.
MAX_RETRY_AFTER_S = 600.0


@dataclass(frozen=True)
class Failure:
    """One failed attempt: its kind, whether to retry, the server's requested wait, a readable message."""

    kind: str
    retryable: bool
    retry_after_s: float | None
    message: str
    status: int | None = None


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date); None if absent."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
    except (TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify(exc: BaseException) -> Failure:
    """Map an exception raised by the `openai` client (or while reading its reply) to a Failure."""
    import openai

    if isinstance(exc, (openai.APITimeoutError, TimeoutError)):
        return Failure("timeout", True, None, "the request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Failure("connection", True, None, f"the connection failed or was dropped ({_short(exc)})")
    if isinstance(exc, openai.APIResponseValidationError):
        return Failure("malformed", True, None, f"the reply is not a chat completion ({_short(exc)})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        headers = getattr(exc.response, "headers", None)
        if status == 429:
            return Failure("rate_limited", True, parse_retry_after(headers), "HTTP 429 rate limited", status)
        if status >= 500 or status in (408, 409):
            return Failure("server_error", True, parse_retry_after(headers), f"HTTP {status} from the server",
                           status)
        hint = {401: "; check the API key in the environment variable named by generate.api_key_env",
                403: "; the key lacks access to this model",
                404: "; check generate.endpoint (it usually ends in /v1) and generate.model"}.get(status, "")
        return Failure("client_error", False, None, f"HTTP {status}: {_short(exc)}{hint}", status)
    if isinstance(exc, (ValueError, KeyError, TypeError, AttributeError)):
        # A 200 whose body is not JSON, or JSON without `choices`.
        return Failure("malformed", True, None, f"the reply could not be read ({type(exc).__name__}: {_short(exc)})")
    return Failure("unexpected", False, None, f"unexpected {type(exc).__name__}: {_short(exc)}")


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Backoff:
    """Exponential backoff with jitter: try n waits a random time in [d/2, d], d = min(cap, base * 2**n).

    A `Retry-After` from the server replaces the computed wait (never shortened). The jitter comes from
    a seeded generator, so tests see the same waits every time."""

    def __init__(self, base_s: float, max_s: float, seed: int = 0) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._rng = random.Random(seed)

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, MAX_RETRY_AFTER_S)
        d = min(self.max_s, self.base_s * (2 ** attempt))
        return d * (0.5 + 0.5 * self._rng.random())
