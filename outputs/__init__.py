"""Writers: one file per output format, registered by name in `WRITERS`."""

from outputs.base import Writer
from outputs.registry import WRITERS

__all__ = ["WRITERS", "Writer"]
