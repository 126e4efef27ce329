"""The stage interface. Stages never import Ray: `pipeline/ray_runner.py` runs them.

A stage is a dataclass whose fields are its options. `setup()` loads models once per worker;
`process_batch(items)` maps a list of items (AnnotationRecords, Samples, Rejects) to a new list.
Rejects pass through every stage untouched so that counts always add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from schemas.record import AnnotationRecord
from schemas.reject import Reject
from schemas.sample import Sample

Item = AnnotationRecord | Sample | Reject


@dataclass
class Stage:
    """Base class. Subclasses are dataclasses; `name` is used in stats and rejects."""

    name: ClassVar[str] = "stage"
    #: GPUs each worker needs; >0 makes the runner use an actor pool.
    num_gpus: ClassVar[float] = 0.0

    @property
    def needs_actor(self) -> bool:
        """True when the stage has per-worker state to load (models): run it in an actor pool."""
        return type(self).setup is not Stage.setup or self.num_gpus > 0

    def setup(self) -> None:
        """Load models or other per-worker state. Called once per worker before any batch."""

    def process_batch(self, items: list[Item]) -> list[Item]:
        raise NotImplementedError
