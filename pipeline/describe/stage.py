"""The describe stage: a vision-language model writes a detailed caption and labelled boxes for each image.

It takes AnnotationRecords (typically from the `images` source), decodes each image once, runs every task of
`describe.tasks` over the batch in chunks of `batch_size`, parses the replies in the model family's convention,
and adds `Caption(detailed=True)` and `ObjectAnn`s to the record. The record's `describe` field keeps the
lineage: backend, model id, prompts, sampling parameters, raw replies and any box that was dropped (and why).
A reply that does not parse makes the record a `describe_unparseable` reject holding the raw replies; an image
that cannot be decoded is an `image_unreadable` reject; a backend failure on a batch rejects that batch's
records as `describe_failed`. Other items pass through untouched.

The runner reads `num_gpus` (from `gpus_per_actor`) and `concurrency` (from `actors`) off the instance.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from pipeline.describe.backend import DescribeBackend, Reply
from pipeline.describe.config import DescribeSection
from pipeline.describe.parse import UnparseableOutput, parse_boxes, parse_caption
from pipeline.stage import Item, Stage
from schemas.record import AnnotationRecord, Caption, ObjectAnn
from schemas.reject import Reject
from schemas.sample import Lineage

if TYPE_CHECKING:
    from PIL.Image import Image


def make_backend(cfg: DescribeSection) -> DescribeBackend:
    """The backend `cfg.backend` names (imported here so heavy dependencies load only when used)."""
    if cfg.backend == "transformers":
        from pipeline.describe.hf_backend import TransformersBackend

        return TransformersBackend(cfg)
    from pipeline.describe.openai_backend import OpenAIVisionBackend

    return OpenAIVisionBackend(cfg)


def prompt_hash(prompts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class DescribeStage(Stage):
    """Adds machine captions and boxes to records that have an image."""

    name: ClassVar[str] = "describe"

    cfg: DescribeSection
    #: The recipe's image root: record image paths are relative to it.
    image_root: str
    #: Builds the backend in `setup()` (once per actor); tests pass a fake.
    backend_factory: Callable[[DescribeSection], DescribeBackend] = make_backend
    _backend: DescribeBackend | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.num_gpus = self.cfg.gpus_per_actor  # type: ignore[misc] - the instance overrides the class default
        self.concurrency = self.cfg.actors

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_backend"] = None  # a loaded model never travels; each actor loads its own in setup()
        return state

    def setup(self) -> None:
        if self._backend is None:
            self._backend = self.backend_factory(self.cfg)

    @property
    def backend(self) -> DescribeBackend:
        if self._backend is None:
            self.setup()
        assert self._backend is not None
        return self._backend

    # ---- helpers ----------------------------------------------------------------------------------------

    def _load(self, rec: AnnotationRecord) -> "Image | Reject":
        from PIL import Image

        assert rec.image is not None
        path = os.path.join(self.image_root, rec.image.path)
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except Exception as e:  # PIL raises several types for broken files
            return self._reject(rec, "image_unreadable", f"describe: cannot decode image {path} of record {rec.id} "
                                f"({type(e).__name__}: {e}); replace the file or drop it from the source", None)

    def _reject(self, rec: AnnotationRecord, reason: str, message: str, raw: dict[str, str] | None,
                prompts: dict[str, str] | None = None) -> Reject:
        return Reject(reason=reason, message=message, stage=self.name, source=rec.source, file=rec.file,
                      record=rec.id,
                      lineage=Lineage(source=rec.source, source_kind=rec.source_kind, file=rec.file,
                                      ann_ids=[rec.id], model=self.cfg.model, sampling=self.cfg.sampling(),
                                      prompt_hash=prompt_hash(prompts) if prompts else None,
                                      raw_output=None if raw is None else json.dumps(raw, ensure_ascii=False)))

    def _run(self, images: list["Image"], prompt: str) -> list[Reply]:
        out: list[Reply] = []
        bs = self.cfg.batch_size
        for i in range(0, len(images), bs):
            chunk = images[i:i + bs]
            replies = self.backend.generate(chunk, prompt)
            if len(replies) != len(chunk):
                raise RuntimeError(f"backend returned {len(replies)} replies for {len(chunk)} images")
            out.extend(replies)
        return out

    # ---- the stage --------------------------------------------------------------------------------------

    def process_batch(self, items: list[Item]) -> list[Item]:
        backend = self.backend
        cap_prompt, det_prompt, convention = self.cfg.resolved(backend.family)
        prompts = {t: cap_prompt if t == "caption" else det_prompt for t in self.cfg.tasks}

        out: list[Item] = list(items)
        todo: list[tuple[int, AnnotationRecord, "Image"]] = []
        for i, it in enumerate(items):
            if not isinstance(it, AnnotationRecord) or it.image is None:
                continue
            if self.cfg.sources is not None and it.source not in self.cfg.sources:
                continue
            img = self._load(it)
            if isinstance(img, Reject):
                out[i] = img
            else:
                todo.append((i, it, img))
        if not todo:
            return out

        images = [img for _, _, img in todo]
        replies: dict[str, list[Reply]] = {}
        try:
            for task, prompt in prompts.items():
                replies[task] = self._run(images, prompt)
        except Exception as e:  # one failing batch must not end the run: its records become rejects
            for i, rec, _ in todo:
                out[i] = self._reject(rec, "describe_failed", f"describe: {backend.model_id} failed on the batch "
                                      f"holding record {rec.id} ({type(e).__name__}: {e}); check the model and "
                                      "describe.batch_size / max_new_tokens", None, prompts)
            return out

        for k, (i, rec, img) in enumerate(todo):
            out[i] = self._describe_one(rec, img, {t: r[k] for t, r in replies.items()}, prompts, convention)
        return out

    def _describe_one(self, rec: AnnotationRecord, img: "Image", replies: dict[str, Reply],
                      prompts: dict[str, str], convention: str) -> AnnotationRecord | Reject:
        raw = {t: r.text for t, r in replies.items()}
        width, height = (rec.image.width, rec.image.height) if rec.image and rec.image.width and rec.image.height \
            else img.size
        tag = f"describe:{self.cfg.model}"
        captions: list[Caption] = []
        objects: list[ObjectAnn] = []
        dropped: list[str] = []
        try:
            if "caption" in replies:
                captions.append(Caption(text=parse_caption(replies["caption"].text), ann_id=tag, detailed=True))
            if "detect" in replies:
                parsed = parse_boxes(replies["detect"].text, convention, width, height, replies["detect"].input_size)
                objects = [ObjectAnn(category=d.label, box=d.box, ann_id=f"{tag}:{n}")
                           for n, d in enumerate(parsed.detections)]
                dropped = parsed.dropped
        except UnparseableOutput as e:
            return self._reject(rec, "describe_unparseable", f"describe: {self.cfg.model} replied to record "
                                f"{rec.id} in a form the {convention!r} parsers do not read: {e}. Check "
                                "describe.family / box_convention and the prompts", raw, prompts)
        lineage = {"backend": self.cfg.backend, "model": self.cfg.model, "family": self.backend.family,
                   "box_convention": convention, "prompts": prompts, "prompt_hash": prompt_hash(prompts),
                   "sampling": self.cfg.sampling(), "raw_output": raw, "dropped_boxes": dropped}
        return rec.model_copy(update={"captions": [*rec.captions, *captions], "objects": [*rec.objects, *objects],
                                      "describe": lineage})
