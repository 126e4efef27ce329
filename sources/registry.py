"""The plain registry of sources: kind -> Source class. A new source is one file plus one line here."""

from __future__ import annotations

from sources.base import Source

REGISTRY: dict[str, type[Source]] = {}


def get_source(kind: str) -> type[Source]:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise KeyError(f"unknown source kind {kind!r}; choose one of: {', '.join(sorted(REGISTRY))}") from None
