"""The adapt stage: templates turn AnnotationRecords into Samples (annotation adaptation).

For every configured task that a record can feed, the task builds its exchanges (pipeline/adapt/tasks.py);
each exchange is rendered through one style of the task's templates, chosen from (seed, sample id, turn)
with a stable hash, so any worker gives the same output. Without grouping each exchange is one sample;
with `group_max_turns=k` one image's exchanges of a groupable task become conversations of at most k
user/assistant pairs, in record order.

Sample ids are `<source>/<record id>/<task>/<n>`, n counting that record's samples of that task.
Lineage: `ann_ids` lists every annotation the sample used; `template_id`/`template_version` are those of
the first turn (a grouped conversation may use several styles; the first one stands for the sample).

Box markers: each exchange numbers its boxes from `<box:0>`; when exchanges are grouped, the markers of
later turns are shifted past the boxes of the earlier ones. Source text is escaped before rendering, so
any `<image>` or `<box:N>` in a rendered turn comes from the templates, never from the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jinja2 import meta

from pipeline.adapt.seeding import seeded_index
from pipeline.adapt.tasks import TASKS, BuildOptions, Exchange, Skip, TaskSpec
from pipeline.stage import Item, Stage
from schemas.box import Box
from schemas.record import AnnotationRecord
from schemas.reject import Reject
from schemas.sample import IMAGE_TOKEN, Lineage, Sample
from templates.library import BUNDLED_DIR, Template, TemplateLibrary

if TYPE_CHECKING:
    from schemas.recipe import AdaptSection

_MARKER_RE = re.compile(r"<box:(\d+)>")
_BLOCKS = ("user", "assistant")


class AdaptConfigError(ValueError):
    """The adapt options name an unknown task or style, or a template cannot serve its task."""


@dataclass(frozen=True)
class _Style:
    """One usable template of a task form."""

    template_id: str
    version: int
    template: Template


@dataclass
class _Compiled:
    """Per-instance state built once from the options: the tasks to run and their compiled styles."""

    specs: list[TaskSpec]
    #: (task, form) -> the styles that serve it, in sorted style order (the order seeding indexes into).
    styles: dict[tuple[str, str], tuple[_Style, ...]]
    build: BuildOptions


#: Compiled templates per process, by `AdaptStage._compile_key()`: Ray unpickles a fresh copy of the stage
#: for every task, and compiling (reading, parsing and test-rendering every template) takes about 15 ms.
_COMPILED: dict[tuple[Any, ...], _Compiled] = {}


def _shift_markers(text: str, offset: int) -> str:
    if offset == 0 or "<box:" not in text:
        return text
    return _MARKER_RE.sub(lambda m: f"<box:{int(m.group(1)) + offset}>", text)


@dataclass
class AdaptStage(Stage):
    """Turn each AnnotationRecord into Samples through templates; Samples and Rejects pass through."""

    name: ClassVar[str] = "adapt"

    seed: int = 0
    #: Tasks to build, in this order; None = every task (in TASKS order) a record can feed.
    tasks: list[str] | None = None
    #: Restrict the styles used per task, e.g. {"vqa_short": ["plain"]}.
    styles: dict[str, list[str]] = field(default_factory=dict)
    #: User template folders (<task>/<style>.jinja2), searched before the bundled ones.
    template_dirs: list[str] = field(default_factory=list)
    #: Group one image's exchanges of a task into conversations of at most this many pairs; None = no grouping.
    group_max_turns: int | None = None
    #: Short captions per image for caption_short (a seeded choice among its distinct captions).
    captions_per_image: int = 1
    #: Per source name, the only tasks its records feed (a source's `tasks` option); absent = all.
    source_tasks: dict[str, list[str]] = field(default_factory=dict)

    # Compiled templates: built on first use and left out of pickles (Ray ships the stage to workers).
    _compiled: _Compiled | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.group_max_turns is not None and self.group_max_turns < 1:
            raise AdaptConfigError(f"adapt: group_max_turns must be at least 1, got {self.group_max_turns}")
        if self.captions_per_image < 1:
            raise AdaptConfigError(f"adapt: captions_per_image must be at least 1, got {self.captions_per_image}")
        # Compile now so that a bad task, style or template fails before any record is read.
        self._state()

    @classmethod
    def from_section(cls, section: "AdaptSection", seed: int) -> "AdaptStage":
        """The stage a recipe's `adapt:` section describes (template folders already resolved)."""
        return cls(seed=seed, tasks=section.tasks, styles=dict(section.styles),
                   template_dirs=list(section.templates),
                   group_max_turns=section.group_per_image.max_turns if section.group_per_image else None,
                   captions_per_image=section.captions_per_image)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_compiled"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ---- compiling --------------------------------------------------------------------------------------

    def _state(self) -> _Compiled:
        if self._compiled is None:
            key = self._compile_key()
            compiled = _COMPILED.get(key)
            if compiled is None:
                compiled = _COMPILED[key] = self._compile()
            self._compiled = compiled
        return self._compiled

    def _compile_key(self) -> tuple[Any, ...]:
        """What compiling reads: the options and every template file's (path, mtime, size)."""
        files = []
        for d in [*self.template_dirs, BUNDLED_DIR]:
            for f in sorted(Path(d).glob("*/*.jinja2")):
                st = f.stat()
                files.append((str(f), st.st_mtime_ns, st.st_size))
        return (self.seed, None if self.tasks is None else tuple(self.tasks),
                tuple(sorted((k, tuple(v)) for k, v in self.styles.items())), tuple(self.template_dirs),
                self.captions_per_image, tuple(files))

    def _compile(self) -> _Compiled:
        names = list(TASKS) if self.tasks is None else list(dict.fromkeys(self.tasks))
        unknown = [t for t in names if t not in TASKS]
        unknown += [t for t in self.styles if t not in TASKS and t not in unknown]
        if unknown:
            raise AdaptConfigError(f"adapt: unknown task(s) {', '.join(map(repr, unknown))}; "
                                   f"choose from: {', '.join(TASKS)}")
        lib = TemplateLibrary(self.template_dirs)
        styles: dict[tuple[str, str], tuple[_Style, ...]] = {}
        for task in names:
            spec = TASKS[task]
            available = lib.styles(task)
            wanted = self.styles.get(task) or available
            missing = [s for s in wanted if s not in available]
            if missing:
                raise AdaptConfigError(
                    f"adapt.styles.{task}: no template for style(s) {', '.join(map(repr, missing))} (looked for "
                    f"{task}/<style>.jinja2 in {', '.join(str(d) for d in lib.dirs)}); available styles: "
                    f"{', '.join(available) or 'none'}")
            per_form: dict[str, list[_Style]] = {}
            for style in sorted(set(wanted)):
                form = spec.form_of_style(style)
                t = lib.get(f"{task}/{style}")
                self._check_template(lib, spec, form, t)
                per_form.setdefault(form, []).append(_Style(t.id, t.version, t))
            if not self.styles.get(task) and "" not in per_form:
                raise AdaptConfigError(f"adapt: task {task} has no template (looked for {task}/*.jinja2 in "
                                       f"{', '.join(str(d) for d in lib.dirs)})")
            # A form left without styles by `styles` is switched off: its exchanges are not built into samples.
            for form, found in per_form.items():
                styles[(task, form)] = tuple(found)
        return _Compiled(specs=[TASKS[t] for t in names], styles=styles,
                         build=BuildOptions(seed=self.seed, captions_per_image=self.captions_per_image))

    @staticmethod
    def _check_template(lib: TemplateLibrary, spec: TaskSpec, form: str, t: Template) -> None:
        """Fail early on a template that lacks a block, uses a variable its task does not give, or breaks."""
        lacking = [b for b in _BLOCKS if b not in t.blocks]
        if lacking:
            raise AdaptConfigError(f"template {t.id} ({t.path}) has no block {' or '.join(lacking)}; adapt "
                                   "templates define {% block user %}...{% endblock %} and "
                                   "{% block assistant %}...{% endblock %}")
        example = spec.forms[form]
        used = meta.find_undeclared_variables(lib.env.parse(Path(t.path).read_text(encoding="utf-8")))
        extra = sorted(used - set(example))
        if extra:
            kind = f"the {form!r} form of task {spec.name}" if form else f"task {spec.name}"
            raise AdaptConfigError(f"template {t.id} ({t.path}) uses variable(s) {', '.join(extra)} that {kind} "
                                   f"does not provide; it can use: {', '.join(example)}")
        t.render_blocks(_BLOCKS, example)

    # ---- processing -------------------------------------------------------------------------------------

    def process_batch(self, items: list[Item]) -> list[Item]:
        c = self._state()
        out: list[Item] = []
        for item in items:
            if isinstance(item, AnnotationRecord):
                out.extend(self._adapt(item, c))
            else:
                out.append(item)
        return out

    def _adapt(self, record: AnnotationRecord, c: _Compiled) -> list[Item]:
        samples: list[Item] = []
        rejects: list[Item] = []
        reported: set[tuple[str, str | None]] = set()
        allowed = self.source_tasks.get(record.source)
        for spec in c.specs:
            if allowed is not None and spec.name not in allowed:
                continue
            if not spec.applies(record):
                continue
            exchanges: list[Exchange] = []
            for x in spec.build(record, c.build):
                if isinstance(x, Skip):
                    # Tasks that read the same annotation (captions) report its problem once.
                    if (x.reason, x.ann_id) not in reported:
                        reported.add((x.reason, x.ann_id))
                        rejects.append(self._skip_reject(record, spec, x))
                elif (spec.name, x.form) in c.styles:
                    exchanges.append(x)
            if not exchanges:
                continue
            k = self.group_max_turns if spec.groupable else None
            if k is None or k == 1:
                chunks = [[x] for x in exchanges]
            else:
                chunks = [exchanges[i:i + k] for i in range(0, len(exchanges), k)]
            for n, chunk in enumerate(chunks):
                samples.append(self._sample(record, spec, n, chunk, c))
        if not samples and not rejects:
            rejects.append(self._no_task_reject(record, c))
        return samples + rejects

    def _sample(self, record: AnnotationRecord, spec: TaskSpec, n: int, chunk: list[Exchange],
                c: _Compiled) -> Sample:
        sid = f"{record.source}/{record.id}/{spec.name}/{n}"
        # Plain dicts: pydantic validates them faster than pre-built Turn / Lineage models.
        turns: list[dict[str, str]] = []
        boxes: list[Box] = []
        ann_ids: list[str] = []
        first: _Style | None = None
        for i, x in enumerate(chunk):
            options = c.styles[(spec.name, x.form)]
            style = options[seeded_index(self.seed, f"{sid}/{i}", len(options))]
            user, assistant = style.template.render_blocks(_BLOCKS, x.variables)
            if x.boxes:
                if boxes:
                    user = _shift_markers(user, len(boxes))
                    assistant = _shift_markers(assistant, len(boxes))
                boxes.extend(x.boxes)
            if i == 0:
                first = style
                if record.image is not None:
                    user = f"{IMAGE_TOKEN}\n{user}"
            turns.append({"role": "user", "text": user})
            turns.append({"role": "assistant", "text": assistant})
            ann_ids.extend(x.ann_ids)
        assert first is not None
        return Sample(
            id=sid,
            images=[record.image] if record.image is not None else [],
            turns=turns,
            boxes=boxes,
            task=spec.name,
            source=record.source,
            lineage={"source": record.source, "source_kind": record.source_kind, "file": record.file,
                     "ann_ids": ann_ids if len(ann_ids) < 2 else list(dict.fromkeys(ann_ids)),
                     "template_id": first.template_id,
                     "template_version": first.version},
        )

    def _skip_reject(self, record: AnnotationRecord, spec: TaskSpec, skip: Skip) -> Reject:
        where = f" ({record.file})" if record.file else ""
        return Reject(
            reason=skip.reason,
            message=(f"adapt/{spec.name}: record {record.id} of source {record.source}{where}: {skip.message}; "
                     "this annotation was not used. Fix or remove it in the source data"),
            stage=self.name, source=record.source, file=record.file, record=record.id, task=spec.name,
            lineage=Lineage(source=record.source, source_kind=record.source_kind, file=record.file,
                            ann_ids=[skip.ann_id] if skip.ann_id is not None else []),
        )

    def _no_task_reject(self, record: AnnotationRecord, c: _Compiled) -> Reject:
        has = [f"{len(record.captions)} caption(s)", f"{len(record.objects)} object(s)",
               f"{len(record.qas)} QA(s)", f"{len(record.refs)} referring expression(s)",
               f"label {record.label!r}" if record.label is not None else "no label",
               f"{len(record.ocr_tokens)} OCR token(s)", "an image" if record.image is not None else "no image"]
        fitting = [t for t, s in TASKS.items() if s.applies(record)]
        fix = (f"add a task that fits it to adapt.tasks ({', '.join(fitting)})" if fitting
               else "no task can use such a record: check the source's options or drop the source")
        where = f" ({record.file})" if record.file else ""
        return Reject(
            reason="no_task",
            message=(f"adapt: record {record.id} of source {record.source}{where} has nothing the configured "
                     f"tasks ({', '.join(s.name for s in c.specs)}) can use; it has {', '.join(has)}. Fix: {fix}"),
            stage=self.name, source=record.source, file=record.file, record=record.id,
            lineage=Lineage(source=record.source, source_kind=record.source_kind, file=record.file),
        )
