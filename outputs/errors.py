"""The error writers raise for a sample or an existing file they cannot convert."""

from __future__ import annotations


class WriterError(ValueError):
    """A sample or file a writer cannot handle; the message names the writer, the sample or file, and the fix."""
