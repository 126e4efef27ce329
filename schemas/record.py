"""AnnotationRecord: one image and everything a source knows about it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.box import Box
from schemas.image import ImageRef


class Caption(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    ann_id: str | None = None
    #: True for long, paragraph-style descriptions (a describe stage's output, Localized Narratives).
    detailed: bool = False


class ObjectAnn(BaseModel):
    """A labelled object with its canonical box."""

    model_config = ConfigDict(extra="forbid")

    category: str
    box: Box
    ann_id: str | None = None
    iscrowd: bool = False


class QA(BaseModel):
    """A question about the image with its answer (VQA, OCR, multiple choice)."""

    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str
    qid: str
    #: Every reference answer (VQAv2 has 10); `answer` is the one used for training.
    answers: list[str] = Field(default_factory=list)
    answer_type: str | None = None
    #: Multiple choice: the options and the index of the right one (`answer` is that option's text).
    choices: list[str] | None = None
    answer_index: int | None = None
    #: Context that comes before the question (ScienceQA's hint).
    context: str | None = None
    #: Kind of QA; selects the template family: `vqa`, `mc`, `ocr`.
    kind: str = "vqa"


class RefExpr(BaseModel):
    """A referring expression and the object it names (RefCOCO family)."""

    model_config = ConfigDict(extra="forbid")

    ref_id: str
    sentences: list[str]
    box: Box
    ann_id: str | None = None
    category: str | None = None


class AnnotationRecord(BaseModel):
    """One image (or, for text-only science questions, none) plus all its annotations."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    source_kind: str
    file: str | None = None
    image: ImageRef | None = None
    split: str | None = None
    captions: list[Caption] = Field(default_factory=list)
    objects: list[ObjectAnn] = Field(default_factory=list)
    qas: list[QA] = Field(default_factory=list)
    refs: list[RefExpr] = Field(default_factory=list)
    label: str | None = None
    ocr_tokens: list[str] = Field(default_factory=list)
    #: Object categories some of whose annotations on this image were left out (rejected, or crowd regions
    #: dropped by `include_crowd: false`): how many of them there are is unknown, so they are not counted.
    incomplete_categories: list[str] = Field(default_factory=list)
    #: Lineage of a describe stage that wrote this record's machine captions and boxes (model id, prompts,
    #: sampling parameters, raw outputs); None for records that came from annotations.
    describe: dict[str, Any] | None = None
