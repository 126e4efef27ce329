"""One async client for any OpenAI-compatible chat endpoint (vLLM, llama.cpp, OpenAI, ...).

Every request goes: cache lookup -> wait out any server-requested cool-down -> rate limits -> concurrency
slot -> HTTP call with a per-request timeout -> on failure, retry with backoff (honouring Retry-After) ->
the reply is written to the cache before it is handed back, so a run killed afterwards never pays for it
again. `chat_json` adds structured output: the JSON schema goes in `response_format` where the server
accepts it (dropped for the rest of the run if it refuses), the reply is parsed, and a bounded number of
repair requests show the model its broken reply and ask again.

The API key is held only by the underlying `openai` client; it is not stored here, not part of any
cache key or entry, and never formatted into a message.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pipeline.llm.cache import ResponseCache, request_key
from pipeline.llm.ratelimit import RateLimiter, estimate_tokens
from pipeline.llm.retry import Backoff, classify

T = TypeVar("T")

#: Sent when the endpoint needs no key (the embedded server); the `openai` package insists on one.
NO_KEY = "no-key-required"


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of a request; part of the cache key and of the sample's lineage."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        if self.seed is not None:
            d["seed"] = self.seed
        return d


@dataclass(frozen=True)
class Completion:
    """One reply. `cached` replies cost nothing; the token counts are what the reply cost when made."""

    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    key: str
    #: Whether the request carried the JSON schema in `response_format`.
    structured: bool


class LLMRequestError(Exception):
    """A request failed for good (retries exhausted, or an error not worth retrying)."""

    def __init__(self, kind: str, message: str, attempts: int) -> None:
        self.kind = kind
        self.attempts = attempts
        super().__init__(message)


class ReplyParseError(ValueError):
    """A reply does not hold what the prompt asked for; the message says what is wrong."""


class LLMReplyError(Exception):
    """Every reply (the first and each repair) failed to parse. `replies` holds them, first to last."""

    def __init__(self, message: str, replies: list[Completion]) -> None:
        self.replies = replies
        super().__init__(message)


@dataclass
class Parsed(Generic[T]):
    """What `chat_json` returns: the parsed value and every completion it took (repairs included)."""

    value: T
    completions: list[Completion]


@dataclass
class ClientStats:
    """Counters of one client. Plain numbers, so workers' figures can be summed."""

    requests: int = 0
    ok: int = 0
    cache_hits: int = 0
    retries: int = 0
    failed: int = 0
    repairs: int = 0
    structured_fallbacks: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    #: Seconds spent waiting for rate limits, and in backoff / Retry-After before retries.
    rate_limit_wait_s: float = 0.0
    retry_wait_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "ok": self.ok, "cache_hits": self.cache_hits, "retries": self.retries,
            "failed": self.failed, "repairs": self.repairs, "structured_fallbacks": self.structured_fallbacks,
            "errors": {k: self.errors[k] for k in sorted(self.errors)},
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "cached_completion_tokens": self.cached_completion_tokens,
            "rate_limit_wait_s": round(self.rate_limit_wait_s, 3), "retry_wait_s": round(self.retry_wait_s, 3),
        }


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of an OpenAI content-parts list
    (images sent as `image_url` parts, by the describe stage's vision backend, count no text)."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def safe_url(url: str) -> str:
    """`url` without user info or query string (where some services put credentials), for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def response_format(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The OpenAI `response_format` that asks for JSON matching `schema`."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


class LLMClient:
    """Async chat client with limits, retries, structured output and a reply cache. One per event loop."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, concurrency: int = 4,
                 rpm: float | None = None, tpm: float | None = None, timeout_s: float = 120.0,
                 max_retries: int = 6, backoff_base_s: float = 0.5, backoff_max_s: float = 30.0,
                 cache: ResponseCache | None = None, structured_output: str = "auto", seed: int = 0) -> None:
        try:
            import openai
        except ImportError:
            raise ImportError("the generate stage talks to LLM endpoints through the `openai` package; "
                              "install it with `pip install openai`") from None

        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.cache = cache
        self.structured_output = structured_output
        #: None until a request shows whether the server takes `response_format` (auto mode).
        self.schema_supported: bool | None = None if structured_output == "auto" else structured_output != "off"
        self.stats = ClientStats()
        self._openai = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or NO_KEY, max_retries=0,
                                          timeout=timeout_s)
        self._sem = asyncio.Semaphore(concurrency)
        self._limits = RateLimiter(rpm, tpm)
        self._backoff = Backoff(backoff_base_s, backoff_max_s, seed)
        self._cooldown_until = 0.0
        self._inflight: dict[str, asyncio.Future[Completion]] = {}

    def __repr__(self) -> str:
        return f"LLMClient(base_url={safe_url(self.base_url)!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self._openai.close()

    # ---- one request --------------------------------------------------------------------------------

    def request_body(self, messages: list[dict[str, str]], sampling: Sampling,
                     fmt: dict[str, Any] | None) -> dict[str, Any]:
        """The exact keyword arguments sent to `chat.completions.create` (also used by the benchmark)."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, **sampling.as_dict()}
        if fmt is not None:
            body["response_format"] = fmt
        return body

    async def chat(self, messages: list[dict[str, str]], sampling: Sampling,
                   schema: dict[str, Any] | None = None, schema_name: str = "reply") -> Completion:
        """One chat completion (cached). Raises LLMRequestError when it fails for good."""
        use_schema = schema is not None and self.schema_supported is not False
        fmt = response_format(schema, schema_name) if use_schema and schema is not None else None
        try:
            return await self._chat_once(messages, sampling, fmt)
        except _SchemaRefused:
            # The server rejected `response_format`: go on without it (JSON is then extracted from text).
            self.schema_supported = False
            self.stats.structured_fallbacks += 1
            return await self._chat_once(messages, sampling, None)

    async def _chat_once(self, messages: list[dict[str, str]], sampling: Sampling,
                         fmt: dict[str, Any] | None) -> Completion:
        sampling_key = sampling.as_dict()
        if fmt is not None:
            sampling_key["response_format"] = fmt
        key = request_key(self.model, messages, sampling_key)
        if self.cache is not None:
            entry = self.cache.get(key)
            if entry is not None:
                return self._from_cache(entry, key, fmt is not None)
        pending = self._inflight.get(key)
        if pending is not None:  # the same request is already on its way: share its reply
            return await asyncio.shield(pending)
        fut: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await self._call_with_retries(messages, sampling, fmt, key)
            fut.set_result(result)
            return result
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: a shared failure is re-raised to each waiter, not logged
            raise
        finally:
            del self._inflight[key]

    def _from_cache(self, entry: dict[str, Any], key: str, structured: bool) -> Completion:
        usage = entry.get("usage") or {}
        c = Completion(content=entry["content"], finish_reason=entry.get("finish_reason"),
                       prompt_tokens=int(usage.get("prompt_tokens", 0)),
                       completion_tokens=int(usage.get("completion_tokens", 0)), cached=True, key=key,
                       structured=structured)
        self.stats.cache_hits += 1
        self.stats.cached_prompt_tokens += c.prompt_tokens
        self.stats.cached_completion_tokens += c.completion_tokens
        return c

    async def _call_with_retries(self, messages: list[dict[str, str]], sampling: Sampling,
                                 fmt: dict[str, Any] | None, key: str) -> Completion:
        reserve = estimate_tokens("".join(message_text(m["content"]) for m in messages)) + sampling.max_tokens
        body = self.request_body(messages, sampling, fmt)
        attempt = 0
        while True:
            wait = self._cooldown_until - time.monotonic()
            if wait > 0:
                self.stats.retry_wait_s += wait
                await asyncio.sleep(wait)
            self.stats.rate_limit_wait_s += await self._limits.acquire(reserve)
            used = reserve
            try:
                async with self._sem:
                    self.stats.requests += 1
                    # The HTTP timeouts bound each read; this bounds the whole request.
                    completion = await asyncio.wait_for(self._post(body, key, fmt is not None), self.timeout_s)
                used = completion.prompt_tokens + completion.completion_tokens
                self.stats.ok += 1
                self.stats.prompt_tokens += completion.prompt_tokens
                self.stats.completion_tokens += completion.completion_tokens
                if self.cache is not None:
                    self.cache.put(key, {
                        "content": completion.content, "finish_reason": completion.finish_reason,
                        "usage": {"prompt_tokens": completion.prompt_tokens,
                                  "completion_tokens": completion.completion_tokens},
                        "request": {"model": self.model, "messages": messages, "sampling": sampling.as_dict(),
                                    "structured": fmt is not None},
                    })
                if fmt is not None and self.schema_supported is None:
                    self.schema_supported = True
                return completion
            except Exception as exc:  # noqa: BLE001 - every failure is classified below
                failure = classify(exc)
                if (fmt is not None and failure.status == 400 and self.structured_output == "auto"
                        and not self.schema_supported):
                    raise _SchemaRefused() from None
                self.stats.errors[failure.kind] += 1
                if not failure.retryable or attempt >= self.max_retries:
                    self.stats.failed += 1
                    tries = f"after {attempt + 1} attempt(s)"
                    raise LLMRequestError(failure.kind, f"{failure.message} ({tries}) at {safe_url(self.base_url)}",
                                          attempt + 1) from None
                delay = self._backoff.delay(attempt, failure.retry_after_s)
                if failure.retry_after_s is not None:
                    # The server asked everyone to wait: hold back the other requests too.
                    self._cooldown_until = max(self._cooldown_until, time.monotonic() + delay)
                else:
                    self.stats.retry_wait_s += delay
                    await asyncio.sleep(delay)
                self.stats.retries += 1
                attempt += 1
            finally:
                self._limits.settle(reserve, used)

    async def _post(self, body: dict[str, Any], key: str, structured: bool) -> Completion:
        resp = await self._openai.chat.completions.create(**body)
        if not getattr(resp, "choices", None):
            raise ValueError("the reply has no choices")
        choice = resp.choices[0]
        content = choice.message.content if choice.message is not None else None
        if content is None:
            raise ValueError("the reply's message has no content")
        usage = getattr(resp, "usage", None)
        if usage is not None and usage.prompt_tokens is not None:
            pt, ct = int(usage.prompt_tokens), int(usage.completion_tokens or 0)
        else:  # a server that reports no usage: estimate, so the accounting is not zero
            pt = estimate_tokens("".join(message_text(m["content"]) for m in body["messages"]))
            ct = estimate_tokens(content)
        return Completion(content=content, finish_reason=choice.finish_reason, prompt_tokens=pt,
                          completion_tokens=ct, cached=False, key=key, structured=structured)

    # ---- structured output --------------------------------------------------------------------------

    async def chat_json(self, messages: list[dict[str, str]], sampling: Sampling, schema: dict[str, Any],
                        parse: Callable[[Completion], T], schema_name: str = "reply",
                        max_repairs: int = 1) -> Parsed[T]:
        """Ask for JSON matching `schema`; `parse` turns a completion into a value or raises ReplyParseError.

        A failed parse sends a repair request (the conversation so far, the broken reply, and what was
        wrong), at most `max_repairs` times. Raises LLMReplyError when every reply failed to parse, and
        LLMRequestError when a request failed."""
        completions: list[Completion] = []
        convo = list(messages)
        for repair in range(max_repairs + 1):
            c = await self.chat(convo, sampling, schema, schema_name)
            completions.append(c)
            try:
                return Parsed(parse(c), completions)
            except ReplyParseError as e:
                problem = str(e)
            if repair == max_repairs:
                break
            self.stats.repairs += 1
            convo = convo + [
                {"role": "assistant", "content": c.content},
                {"role": "user", "content": (f"That reply cannot be used: {problem}. Reply again with only one "
                                             f"JSON object, no other text, with exactly these keys: "
                                             f"{_schema_keys(schema)}.")},
            ]
        raise LLMReplyError(f"{problem} (after {len(completions)} repl{'y' if len(completions) == 1 else 'ies'})",
                            completions)


class _SchemaRefused(Exception):
    """The server answered 400 to a request that carried `response_format`."""


def _schema_keys(schema: dict[str, Any]) -> str:
    """A short description of a JSON schema's shape for repair prompts: `{"question": str, ...}`."""

    def shape(s: dict[str, Any]) -> str:
        t = s.get("type")
        if t == "object":
            props = s.get("properties", {})
            return "{" + ", ".join(f'"{k}": {shape(v)}' for k, v in props.items()) + "}"
        if t == "array":
            return f"[{shape(s.get('items', {}))}, ...]"
        return {"string": "string", "integer": "integer", "number": "number", "boolean": "true/false"}.get(
            str(t), "value")

    return shape(schema)
