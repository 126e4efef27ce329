"""The writer and validator registries name what they hold."""

from __future__ import annotations

from outputs.llamafactory import LlamaFactoryWriter
from outputs.llava import LlavaWriter
from outputs.registry import WRITERS
from outputs.validators import VALIDATORS
from outputs.validators.llamafactory import check_llamafactory_file
from outputs.validators.llava import check_llava_file


def test_writers_registry() -> None:
    assert WRITERS["llava"] is LlavaWriter
    assert WRITERS["llamafactory"] is LlamaFactoryWriter
    assert all(cls.kind == kind for kind, cls in WRITERS.items())


def test_validators_registry() -> None:
    assert VALIDATORS["llava"] is check_llava_file
    assert VALIDATORS["llamafactory"] is check_llamafactory_file
