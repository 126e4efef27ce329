"""The plain registry of writers: kind -> Writer class. A new format is one file plus one line here."""

from __future__ import annotations

from outputs.base import Writer
from outputs.hf import HfWriter
from outputs.llamafactory import LlamaFactoryWriter
from outputs.llava import LlavaWriter
from outputs.openai_chat import OpenAIChatWriter
from outputs.trl import TrlWriter

WRITERS: dict[str, type[Writer]] = {}
WRITERS[LlavaWriter.kind] = LlavaWriter
WRITERS[LlamaFactoryWriter.kind] = LlamaFactoryWriter
WRITERS[HfWriter.kind] = HfWriter
WRITERS[TrlWriter.kind] = TrlWriter
WRITERS[OpenAIChatWriter.kind] = OpenAIChatWriter
