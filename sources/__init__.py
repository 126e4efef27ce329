"""Dataset readers, one file per family, registered by name in `REGISTRY`."""

from sources.base import Source, SourceError, SourceOptions
from sources.registry import REGISTRY, get_source

__all__ = ["REGISTRY", "Source", "SourceError", "SourceOptions", "get_source"]
