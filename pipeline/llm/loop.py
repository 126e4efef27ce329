"""An asyncio event loop in a background thread, for calling async code from synchronous stages.

A stage's `process_batch` is synchronous, but the LLM client is async and its connections belong to one
event loop. Each worker keeps one `LoopThread` for its lifetime; `run(coro)` blocks the caller until the
coroutine ends. It works whether or not the calling thread already runs a loop (a notebook, an async
Ray actor).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread; `run(coro)` blocks the caller until the coroutine ends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="vlforge-generate-loop", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()
