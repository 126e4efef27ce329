"""A content-addressed on-disk cache of LLM replies, so a repeated or resumed run makes no call twice.

The key is the SHA-256 of the request that decides the reply: model, messages and sampling parameters
(response format included), as canonical JSON. Nothing about the endpoint or its credentials is part of
the key or the entry. Each entry is one JSON file `<dir>/<key[:2]>/<key>.json`, written to a temporary
file, flushed to disk and renamed, so a run killed at any moment leaves either the whole entry or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Bumped when the entry layout changes; older entries are then misses.
CACHE_VERSION = 1


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal requests give equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(model: str, messages: list[dict[str, str]], sampling: dict[str, Any]) -> str:
    """The cache key of one chat request."""
    payload = {"v": CACHE_VERSION, "model": model, "messages": messages, "sampling": sampling}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def messages_hash(messages: list[dict[str, str]]) -> str:
    """Hash of the prompt alone (what lineage calls the prompt hash)."""
    return hashlib.sha256(canonical_json(messages).encode("utf-8")).hexdigest()


class ResponseCache:
    """Reply cache in one folder. Safe for several processes: writes are atomic renames."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry for `key`, or None (missing, unreadable or from another cache version)."""
        p = self.path(key)
        try:
            with open(p, "rb") as f:
                entry = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError):
            # A damaged entry (edited by hand, disk error) is a miss; the next put replaces it.
            return None
        if not isinstance(entry, dict) or entry.get("v") != CACHE_VERSION or entry.get("key") != key:
            return None
        if not isinstance(entry.get("content"), str):
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store `entry` (content, finish_reason, usage, request) under `key`, atomically."""
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"v": CACHE_VERSION, "key": key, **entry}, ensure_ascii=False, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:12]}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*/*.json"))
