"""The self-instruct prompts: chat messages rendered from `templates/self_instruct/<kind>.jinja2`, and
the JSON schema each kind's reply must match.

A prompt template has blocks `system`, then few-shot pairs `example_<n>_user` / `example_<n>_assistant`
(in the order of n), then `user` (the record's captions and objects). The detail template also has
`instructions`: the requests a sample's user turn is drawn from. Templates see `captions` (list of
strings), `objects` (dicts with `category` and `box`, the box written `[x1, y1, x2, y2]` in [0, 1] of the
image with 2 decimals), `max_pairs` and `language` (the language's English name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.generate.language import LANGUAGES
from pipeline.llm.cache import messages_hash
from schemas.box import render_box
from schemas.record import AnnotationRecord
from templates.library import Template, TemplateError, TemplateLibrary

_EXAMPLE_RE = re.compile(r"^example_(\d+)_(user|assistant)$")

_QA_ITEM = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
    "additionalProperties": False,
}


def reply_schema(kind: str, max_pairs: int) -> dict[str, Any]:
    """The JSON schema a reply to prompt `kind` must match."""
    if kind == "conversation":
        return {"type": "object",
                "properties": {"conversation": {"type": "array", "items": _QA_ITEM, "minItems": 1,
                                                "maxItems": max_pairs}},
                "required": ["conversation"], "additionalProperties": False}
    if kind == "detail":
        return {"type": "object", "properties": {"description": {"type": "string"}},
                "required": ["description"], "additionalProperties": False}
    if kind == "complex":
        return dict(_QA_ITEM)
    raise ValueError(f"unknown self-instruct prompt {kind!r}; choose conversation, detail or complex")


@dataclass(frozen=True)
class Prompt:
    """The rendered request for one (record, kind) and where it came from."""

    kind: str
    template_id: str
    template_version: int
    messages: list[dict[str, str]]
    prompt_hash: str


def prompt_objects(record: AnnotationRecord, max_objects: int) -> list[dict[str, str]]:
    """The record's objects as the templates see them; beyond `max_objects`, the largest are kept
    (in their original order)."""
    objs = list(record.objects)
    if len(objs) > max_objects:
        keep = sorted(range(len(objs)), key=lambda i: (-objs[i].box.area, i))[:max_objects]
        objs = [objs[i] for i in sorted(keep)]
    out = []
    for o in objs:
        name = f"{o.category} (a crowd)" if o.iscrowd else o.category
        out.append({"category": name, "box": render_box(o.box, "norm1", 2)})
    return out


class PromptBuilder:
    """Renders the self-instruct prompts of one template library."""

    def __init__(self, library: TemplateLibrary, max_pairs: int = 6, max_objects: int = 30,
                 language: str = "en") -> None:
        self.library = library
        self.max_pairs = max_pairs
        self.max_objects = max_objects
        self.language_name = LANGUAGES[language].name

    def template(self, kind: str) -> Template:
        t = self.library.get(f"self_instruct/{kind}")
        missing = [b for b in ("system", "user") if b not in t.blocks]
        if kind == "detail" and "instructions" not in t.blocks:
            missing.append("instructions")
        if missing:
            raise TemplateError(f"template {t.id} ({t.path}) lacks block(s) {', '.join(missing)}; a self-instruct "
                                "template needs `system` and `user` (and `instructions` for detail)")
        return t

    def build(self, record: AnnotationRecord, kind: str) -> Prompt:
        t = self.template(kind)
        variables = {"captions": [c.text for c in record.captions],
                     "objects": prompt_objects(record, self.max_objects),
                     "max_pairs": self.max_pairs, "language": self.language_name}
        messages = [{"role": "system", "content": t.render("system", **variables)}]
        examples: dict[int, dict[str, str]] = {}
        for b in t.blocks:
            m = _EXAMPLE_RE.match(b)
            if m:
                examples.setdefault(int(m.group(1)), {})[m.group(2)] = b
        for n in sorted(examples):
            pair = examples[n]
            if set(pair) != {"user", "assistant"}:
                raise TemplateError(f"template {t.id} ({t.path}): few-shot example {n} needs both "
                                    f"example_{n}_user and example_{n}_assistant blocks")
            messages.append({"role": "user", "content": t.render(pair["user"], **variables)})
            messages.append({"role": "assistant", "content": t.render(pair["assistant"], **variables)})
        messages.append({"role": "user", "content": t.render("user", **variables)})
        return Prompt(kind=kind, template_id=t.id, template_version=t.version, messages=messages,
                      prompt_hash=messages_hash(messages))

    def instructions(self) -> list[str]:
        """The requests a detail sample's user turn is drawn from."""
        t = self.template("detail")
        lines = [ln.strip() for ln in t.render("instructions").splitlines()]
        lines = [ln for ln in lines if ln]
        if not lines:
            raise TemplateError(f"template {t.id} ({t.path}): the `instructions` block is empty; "
                                "write one request per line")
        return lines
