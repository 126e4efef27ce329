"""Shared test setup: tests run offline, on CPU, from the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "tests" / "assets"


@pytest.fixture
def assets() -> Path:
    return ASSETS
