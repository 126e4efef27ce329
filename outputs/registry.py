"""The plain registry of writers: kind -> Writer class. A new format is one file plus one line here."""

from __future__ import annotations

from outputs.base import Writer

WRITERS: dict[str, type[Writer]] = {}
