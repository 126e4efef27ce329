"""A run killed with SIGKILL midway and run again gives the same output as an uninterrupted run, and
makes no successful call twice (counted at the endpoint)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from fake_llm import respond
from pipeline.llm.testing import FakeEndpoint, FaultPlan, wait_until

WORKER = Path(__file__).resolve().parent / "resume_worker.py"
REQUESTS = 36  # 12 usable records x 3 prompts (see resume_worker.py)


def worker(ep: FakeEndpoint, cache: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WORKER), ep.base_url, str(cache), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[bytes]) -> None:
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output.decode(errors="replace")


def cached(cache: Path) -> int:
    return sum(1 for _ in cache.glob("*/*.json"))


def test_sigkill_midway_then_resume(tmp_path: Path) -> None:
    faults = FaultPlan(server_error=0.15, rate_limit=0.1, drop=0.05, retry_after_s=0.01, seed=2)

    with FakeEndpoint(respond, faults) as ref_ep:
        finish(worker(ref_ep, tmp_path / "ref-cache", tmp_path / "ref.jsonl"))
        assert ref_ep.ok_total == REQUESTS
    reference = (tmp_path / "ref.jsonl").read_bytes()
    assert reference.count(b'"type": "Sample"') == REQUESTS and reference.count(b'"type": "Reject"') == 4

    cache, out = tmp_path / "cache", tmp_path / "out.jsonl"
    with FakeEndpoint(respond, faults, hold_after_ok=12) as ep:
        proc = worker(ep, cache, out)
        try:
            # Midway: 12 replies served and written to the cache, the next requests held unanswered.
            assert wait_until(lambda: ep.ok_total == 12 and ep.held >= 1 and cached(cache) == 12, timeout_s=60)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert not out.exists()
        ep.release()
        finish(worker(ep, cache, out))
        assert ep.ok_total == REQUESTS
        twice = {k: n for k, n in ep.counts.ok_by_request.items() if n != 1}
        assert twice == {}, "a successful call was made twice"
    assert out.read_bytes() == reference
