"""The plain registry of writers: kind -> Writer class. A new format is one file plus one line here."""

from __future__ import annotations

from outputs.base import Writer
from outputs.llamafactory import LlamaFactoryWriter
from outputs.llava import LlavaWriter

WRITERS: dict[str, type[Writer]] = {}
WRITERS[LlavaWriter.kind] = LlavaWriter
WRITERS[LlamaFactoryWriter.kind] = LlamaFactoryWriter
