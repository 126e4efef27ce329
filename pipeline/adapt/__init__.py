"""Annotation adaptation: templates turn labelled records into instruction conversations."""

from pipeline.adapt.stage import AdaptConfigError, AdaptStage
from pipeline.adapt.tasks import TASKS, TaskSpec

__all__ = ["TASKS", "AdaptConfigError", "AdaptStage", "TaskSpec"]
