"""The recipe: one YAML file that says what to build. Validated before any work starts.

`load_recipe(path)` reports every problem at once, each with its key and the fix, as a `RecipeError`.
Relative input paths (images, source files, template folders) are resolved against the recipe file's
folder; `outputs.dir` is resolved against the current working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.dedup import DedupSection
from pipeline.describe.config import DescribeSection
from pipeline.llm.config import GenerateSection
from pipeline.mix import MixSection
from pipeline.tune.config import TuneSection
from schemas.box import BOX_FORMATS


class RecipeError(Exception):
    """The recipe has problems. `errors` lists them, one line each: `key: problem. fix`."""

    def __init__(self, path: str | os.PathLike[str] | None, errors: list[str]) -> None:
        self.path = str(path) if path is not None else "<recipe>"
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"recipe {self.path} has {len(errors)} problem(s):\n{lines}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RaySection(_Section):
    """Where stages run. `address: null` starts a local Ray; `RAY_ADDRESS` in the environment also works."""

    address: str | None = None
    #: Worker processes for the CPU stages; default: the machine's CPU count.
    workers: int | None = Field(default=None, ge=1)
    #: Records per block handed to a worker.
    shard_size: int = Field(default=4096, ge=1)


class GroupSection(_Section):
    """Group one image's QA pairs into multi-turn conversations of at most `max_turns` exchanges."""

    max_turns: int = Field(default=8, ge=1)


class AdaptSection(_Section):
    """Annotation adaptation: templates turn records into conversations."""

    #: Tasks to build; None = every task a record can feed.
    tasks: list[str] | None = None
    #: Restrict the phrasings used per task, e.g. {vqa_short: [plain]}.
    styles: dict[str, list[str]] = Field(default_factory=dict)
    #: Folders of user templates (<task>/<style>.jinja2) that override bundled ones by id.
    templates: list[str] = Field(default_factory=list)
    group_per_image: GroupSection | None = None
    #: Short captions per image (a seeded choice among the image's captions).
    captions_per_image: int = Field(default=1, ge=1)


class ValidateSection(_Section):
    max_chars_per_turn: int = Field(default=4000, ge=1)
    max_turns: int = Field(default=64, ge=2)
    max_images: int = Field(default=8, ge=1)


class OutputFormat(_Section):
    kind: str
    #: How boxes in text are written (`llava`, `norm1000`, `absolute`, `norm1`).
    box_format: str = "llava"
    #: File / dataset name; defaults to the recipe name.
    name: str | None = None
    #: Rows per shard for the sharded formats (hf, trl, openai_chat); None = the writer's default.
    shard_rows: int | None = Field(default=None, ge=1)

    @field_validator("box_format")
    @classmethod
    def _known_box_format(cls, v: str) -> str:
        if v not in BOX_FORMATS:
            raise ValueError(f"unknown box format {v!r}. Choose one: {', '.join(BOX_FORMATS)}")
        return v


class OutputsSection(_Section):
    dir: str = "runs/out"
    formats: list[OutputFormat] = Field(default_factory=lambda: [OutputFormat(kind="llava")])
    #: Write the dataset card (README.md with HF-style front matter) into the output folder.
    card: bool = True
    #: The licence named in the card's front matter (an SPDX id, or "other").
    license: str = "other"
    #: How many example samples the card shows.
    card_examples: int = Field(default=4, ge=0)


class Recipe(_Section):
    """A validated recipe. `sources` holds each source's own validated options model."""

    name: str = "vlforge"
    seed: int = 0
    ray: RaySection = Field(default_factory=RaySection)
    images: str = "."
    sources: list[Any]
    adapt: AdaptSection | None = None
    validate_: ValidateSection = Field(default_factory=ValidateSection, alias="validate")
    describe: DescribeSection | None = None
    generate: GenerateSection | None = None
    dedup: DedupSection | None = None
    mix: MixSection | None = None
    outputs: OutputsSection = Field(default_factory=OutputsSection)
    tune: TuneSection | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: The folder relative input paths were resolved against.
    base_dir: str = "."


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top>"


def _pydantic_errors(err: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for e in err.errors():
        key = _loc(tuple(e["loc"]))
        key = f"{prefix}.{key}" if prefix and key != "<top>" else (prefix or key)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key. Remove it or check its spelling"
        elif e["type"] == "missing":
            msg = "required key is missing. Add it"
        lines.append(f"{key}: {msg}")
    return lines


def parse_recipe(data: Any, base_dir: str | os.PathLike[str] = ".", path: str | None = None,
                 check_paths: bool = True) -> Recipe:
    """Validate a recipe mapping; raise RecipeError listing every problem."""
    from sources.registry import REGISTRY

    base = Path(base_dir)
    errors: list[str] = []
    if not isinstance(data, dict):
        raise RecipeError(path, [f"<top>: the recipe must be a YAML mapping, got {type(data).__name__}"])
    data = dict(data)
    raw_sources = data.pop("sources", None)
    if raw_sources is None:
        errors.append("sources: required key is missing. Add a list of sources, e.g. "
                      "[{kind: coco_captions, path: annotations/captions.json}]")
        raw_sources = []
    elif not isinstance(raw_sources, list) or not raw_sources:
        errors.append("sources: must be a non-empty list of source mappings")
        raw_sources = []

    def resolve(p: str) -> str:
        return str(p) if os.path.isabs(p) else str(base / p)

    sources: list[Any] = []
    names: dict[str, int] = {}
    for i, raw in enumerate(raw_sources):
        key = f"sources[{i}]"
        if not isinstance(raw, dict):
            errors.append(f"{key}: must be a mapping with a `kind`")
            continue
        kind = raw.get("kind")
        if kind not in REGISTRY:
            errors.append(f"{key}.kind: unknown source kind {kind!r}. Choose one: {', '.join(sorted(REGISTRY))}")
            continue
        opts_cls = REGISTRY[kind].Options
        try:
            opts = opts_cls.model_validate(raw)
        except ValidationError as e:
            errors.extend(_pydantic_errors(e, key))
            continue
        updates = {}
        for pk in opts_cls.path_keys:
            val = getattr(opts, pk, None)
            if val is None:
                continue
            full = resolve(val)
            updates[pk] = full
            if check_paths and not os.path.exists(full):
                errors.append(f"{key}.{pk}: file not found: {full}. Fix the path (relative paths are "
                              f"resolved against the recipe's folder {base})")
        opts = opts.model_copy(update=updates)
        if opts.tasks is not None:
            from pipeline.adapt.tasks import TASKS

            for t in opts.tasks:
                if t not in TASKS:
                    errors.append(f"{key}.tasks: unknown task {t!r}. Choose from: {', '.join(TASKS)}")
        nm = opts.source_name
        if nm in names:
            errors.append(f"{key}.name: source name {nm!r} is also used by sources[{names[nm]}]. "
                          "Give each source a unique `name`")
        names[nm] = i
        sources.append(opts)

    data["sources"] = []
    try:
        recipe: Recipe | None = Recipe.model_validate(data)
    except ValidationError as e:
        errors.extend(_pydantic_errors(e))
        recipe = None
    errors.extend(_semantic_errors(data, resolve, check_paths))
    if errors:
        raise RecipeError(path, errors)
    assert recipe is not None
    recipe.sources = sources
    recipe.base_dir = str(base)
    recipe.images = resolve(recipe.images)
    if recipe.adapt is not None:
        recipe.adapt.templates = [resolve(d) for d in recipe.adapt.templates]
    if recipe.generate is not None and recipe.generate.templates:
        recipe.generate.templates = [resolve(d) for d in recipe.generate.templates]
    if recipe.tune is not None and recipe.tune.eval.text_only:
        recipe.tune.eval.text_only = resolve(recipe.tune.eval.text_only)
    return recipe


def _semantic_errors(data: dict[str, Any], resolve: Any, check_paths: bool) -> list[str]:
    """Checks beyond types (paths exist, names are registered), run on the raw mapping so that they are
    reported even when other keys failed to validate."""
    from outputs.registry import WRITERS

    errors: list[str] = []
    images = data.get("images", ".")
    if check_paths and isinstance(images, str) and not os.path.isdir(resolve(images)):
        errors.append(f"images: image root not found: {resolve(images)}. Point it at the folder that holds "
                      "the images (relative paths are resolved against the recipe's folder)")
    outputs = data.get("outputs")
    formats = outputs.get("formats") if isinstance(outputs, dict) else None
    seen: dict[tuple[Any, Any], int] = {}
    for i, f in enumerate(formats if isinstance(formats, list) else []):
        if isinstance(f, dict):
            key = (f.get("kind"), f.get("name"))
            if key in seen:
                errors.append(f"outputs.formats[{i}]: the same kind and name as outputs.formats[{seen[key]}], so "
                              "one would overwrite the other. Give one of them a different `name`")
            seen[key] = i
        kind = f.get("kind") if isinstance(f, dict) else None
        if isinstance(kind, str) and kind not in WRITERS:
            errors.append(f"outputs.formats[{i}].kind: unknown output format {kind!r}. "
                          f"Choose one: {', '.join(sorted(WRITERS))}")
    adapt = data.get("adapt")
    if isinstance(adapt, dict):
        from pipeline.adapt.tasks import TASKS

        tasks = adapt.get("tasks")
        for t in tasks if isinstance(tasks, list) else []:
            if t not in TASKS:
                errors.append(f"adapt.tasks: unknown task {t!r}. Choose from: {', '.join(TASKS)}")
        tdirs = adapt.get("templates")
        for j, d in enumerate(tdirs if isinstance(tdirs, list) else []):
            if check_paths and isinstance(d, str) and not os.path.isdir(resolve(d)):
                errors.append(f"adapt.templates[{j}]: template folder not found: {resolve(d)}")
    return errors


def load_recipe(path: str | os.PathLike[str], overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a YAML recipe file."""
    p = Path(path)
    if not p.is_file():
        raise RecipeError(p, [f"<file>: recipe file not found: {p}"])
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise RecipeError(p, [f"<file>: not valid YAML: {e}"]) from None
    if overrides and isinstance(data, dict):
        data.update(overrides)
    return parse_recipe(data, base_dir=p.resolve().parent, path=str(p))
