"""A misbehaving OpenAI-compatible endpoint on loopback, for fault tests and recipe dry runs.

`FakeEndpoint` serves `POST /v1/chat/completions` on 127.0.0.1. A `responder(body) -> str` writes each
reply's content. Faults are injected at configurable rates: 429 with `Retry-After`, 500, a reply slower
than the client's timeout, a 200 whose body is not JSON, and a connection dropped without a reply.
Whether an arrival is faulty depends only on (seed, request, how many times that request arrived before),
never on timing or thread order, so a test sees the same faults on every run.

It counts every arrival, each outcome, and each request answered successfully (by request hash), so a
test can prove that no successful call was made twice. It is bounded: it stops itself after
`lifetime_s` seconds, answers 503 to every arrival beyond `max_requests`, and every delayed or held
handler wakes up when it stops.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

#: Outcomes in the order their rates are stacked on [0, 1).
FAULTS = ("rate_limit", "server_error", "slow", "malformed", "drop")

Responder = Callable[[dict[str, Any]], str]


@dataclass
class FaultPlan:
    """Rates (each in [0, 1], summing to at most 1) of each fault, and how faults behave."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    slow: float = 0.0
    malformed: float = 0.0
    drop: float = 0.0
    #: The `Retry-After` sent with a 429, in seconds (fractions allowed).
    retry_after_s: float = 0.05
    #: How long a slow reply takes; set it above the client's timeout.
    slow_s: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        rates = [getattr(self, f) for f in FAULTS]
        if any(r < 0 or r > 1 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must lie in [0, 1] and sum to at most 1, got {dict(zip(FAULTS, rates))}")

    def decide(self, request_hash: str, arrival: int) -> str:
        """'ok' or a fault name for the `arrival`-th arrival (0-based) of this request."""
        h = hashlib.sha256(f"{self.seed}:{request_hash}:{arrival}".encode()).digest()
        u = int.from_bytes(h[:8], "big") / 2**64
        edge = 0.0
        for name in FAULTS:
            edge += getattr(self, name)
            if u < edge:
                return name
        return "ok"


def echo_responder(body: dict[str, Any]) -> str:
    """Default content: a JSON object naming the hash of the last message (deterministic)."""
    last = body.get("messages", [{}])[-1].get("content", "")
    return json.dumps({"echo": hashlib.sha256(str(last).encode()).hexdigest()[:16]})


def body_hash(body: dict[str, Any]) -> str:
    """Hash of a request body (its decided content only: model, messages, sampling)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class EndpointCounts:
    """What the endpoint saw. `ok_by_request` counts successful replies per request hash."""

    arrivals: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    ok_by_request: Counter[str] = field(default_factory=Counter)
    completion_tokens: int = 0
    #: Authorization headers that matched `expected_key` / that did not.
    auth_ok: int = 0
    auth_bad: int = 0


class FakeEndpoint:
    """The misbehaving endpoint. Use as a context manager: `with FakeEndpoint(...) as ep: ep.base_url`."""

    def __init__(self, responder: Responder = echo_responder, faults: FaultPlan | None = None, *,
                 model: str = "fake-model", lifetime_s: float = 120.0, max_requests: int = 100_000,
                 supports_response_format: bool = True, expected_key: str | None = None,
                 hold_after_ok: int | None = None) -> None:
        self.responder = responder
        self.faults = faults or FaultPlan()
        self.model = model
        self.lifetime_s = lifetime_s
        self.max_requests = max_requests
        self.supports_response_format = supports_response_format
        self.expected_key = expected_key
        #: After this many successful replies, hold every new request (no reply) until `release()`.
        self.hold_after_ok = hold_after_ok
        self.counts = EndpointCounts()
        self._lock = threading.Lock()
        self._arrivals_by_request: Counter[str] = Counter()
        self._stop = threading.Event()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self.held = 0

    # ---- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> "FakeEndpoint":
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-llm-endpoint", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and wake every delayed or held handler. Safe to call twice."""
        self._stop.set()
        self._release.set()
        if self._timer is not None:
            self._timer.cancel()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> "FakeEndpoint":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the endpoint first"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def release(self) -> None:
        """Stop holding requests: held ones are dropped, new ones are served normally."""
        self.hold_after_ok = None
        self._release.set()

    # ---- request handling (called from handler threads) ----------------------------------------------

    def _admit(self, body: dict[str, Any], authorization: str | None) -> tuple[str, str]:
        """Count an arrival and decide its outcome: returns (outcome, request hash)."""
        key = body_hash(body)
        with self._lock:
            self.counts.arrivals += 1
            if self.expected_key is not None:
                if authorization == f"Bearer {self.expected_key}":
                    self.counts.auth_ok += 1
                else:
                    self.counts.auth_bad += 1
            if self.counts.arrivals > self.max_requests:
                outcome = "over_limit"
            elif (self.hold_after_ok is not None
                  and sum(self.counts.ok_by_request.values()) >= self.hold_after_ok):
                outcome = "held"
                self.held += 1
            elif not self.supports_response_format and "response_format" in body:
                outcome = "bad_request"
            else:
                n = self._arrivals_by_request[key]
                self._arrivals_by_request[key] += 1
                outcome = self.faults.decide(key, n)
            self.counts.outcomes[outcome] += 1
            if outcome == "ok":
                # Counted before the reply is written, so `ok_total` never lags a reply the client holds.
                self.counts.ok_by_request[key] += 1
        return outcome, key

    def _undo_ok(self, key: str) -> None:
        """The reply could not be written: the client never got it."""
        with self._lock:
            self.counts.ok_by_request[key] -= 1
            self.counts.outcomes["ok"] -= 1
            self.counts.outcomes["ok_undelivered"] += 1

    @property
    def ok_total(self) -> int:
        with self._lock:
            return sum(self.counts.ok_by_request.values())

    def completion(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        content = self.responder(body)
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion_words = len(content.split())
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
                      "total_tokens": prompt_words + completion_words},
        }, completion_words


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeEndpoint

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, json.dumps({"object": "list", "data": [{"id": self.owner.model,
                                                                     "object": "model"}]}).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        ep = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, b'{"error": {"message": "request body is not JSON"}}')
            return
        outcome, key = ep._admit(body, self.headers.get("Authorization"))
        try:
            self._answer(ep, body, outcome)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a slow reply after its timeout).
            if outcome == "ok":
                ep._undo_ok(key)
        except Exception as e:  # noqa: BLE001 - a failing responder is a 500, not a dead handler
            if outcome == "ok":
                ep._undo_ok(key)
            self._send(500, json.dumps({"error": {"message": f"responder failed: {e!r}"}}).encode())

    def _answer(self, ep: FakeEndpoint, body: dict[str, Any], outcome: str) -> None:
        if outcome == "held":
            ep._release.wait(ep.lifetime_s)
            self._drop()
        elif outcome == "over_limit":
            self._send(503, b'{"error": {"message": "fake endpoint: max_requests reached"}}')
        elif outcome == "bad_request":
            self._send(400, b'{"error": {"message": "response_format is not supported", "type": '
                            b'"invalid_request_error"}}')
        elif outcome == "rate_limit":
            self._send(429, b'{"error": {"message": "rate limited", "type": "rate_limit_error"}}',
                       {"Retry-After": f"{ep.faults.retry_after_s:g}"})
        elif outcome == "server_error":
            self._send(500, b'{"error": {"message": "internal error", "type": "server_error"}}')
        elif outcome == "malformed":
            self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "trunc')
        elif outcome == "drop":
            self._drop()
        elif outcome == "slow":
            if not ep._stop.wait(ep.faults.slow_s):
                payload, _ = ep.completion(body)
                self._send(200, json.dumps(payload).encode())
            else:
                self._drop()
        else:
            payload, n = ep.completion(body)
            with ep._lock:
                ep.counts.completion_tokens += n
            self._send(200, json.dumps(payload).encode())


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0, interval_s: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout_s` passes; returns whether it held."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()
