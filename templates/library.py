"""Loading and rendering templates.

A template is `templates/<task>/<style>.jinja2`; its id is `<task>/<style>`. The first line may declare
its version as a Jinja comment, `{# version: 2 #}` (default 1). A template either renders one text, or
defines blocks (`{% block user %}`, `{% block assistant %}`) that are rendered one by one. Rendering uses
a sandboxed environment with StrictUndefined, so a missing variable is an error, not an empty string.
User template folders (same layout) are searched first and override bundled templates by id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from jinja2 import FileSystemLoader, nodes, StrictUndefined, TemplateNotFound
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.runtime import new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment

BUNDLED_DIR = Path(__file__).resolve().parent
_VERSION_RE = re.compile(r"\{#\s*version:\s*(\d+)\s*#\}")


class TemplateError(Exception):
    """A template is missing or failed to render; the message names the template and the fix."""


@dataclass
class Template:
    """A compiled template with its id and version."""

    id: str
    version: int
    path: str
    _jinja: Any
    _flat_globals: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    #: Per block, the block as a `str.format` pattern when it is only text and `{{ name }}` (else None).
    _fast: dict[str, str | None] | None = field(default=None, repr=False, compare=False)

    @property
    def blocks(self) -> list[str]:
        return list(self._jinja.blocks)

    def render(self, block: str | None = None, **variables: Any) -> str:
        """Render the whole template, or one named block, with `variables`."""
        try:
            if block is None:
                return self._jinja.render(**variables).strip()
            fn = self._jinja.blocks.get(block)
            if fn is None:
                raise TemplateError(f"template {self.id} ({self.path}) has no block {block!r}; "
                                    f"it defines: {', '.join(self.blocks) or 'no blocks'}")
            ctx = self._jinja.new_context(variables)
            return "".join(fn(ctx)).strip()
        except TemplateError:
            raise
        except JinjaTemplateError as e:
            raise TemplateError(f"template {self.id} ({self.path}) failed to render: {e}; "
                                f"variables given: {', '.join(sorted(variables))}") from None

    def render_blocks(self, blocks: tuple[str, ...], variables: dict[str, Any]) -> list[str]:
        """Render several blocks: the fast path for rendering many samples. Same output as
        `render(block, **variables)` for each block.

        A block that is only literal text and `{{ name }}` substitutions (most instruction templates)
        is rendered with `str.format_map` of an equivalent pattern (`{{ x }}` writes `str(x)`, as does
        `{x}`), without building a Jinja context; any other block, or a name the variables lack (so that
        StrictUndefined reports it), goes through Jinja."""
        fast = self._fast
        if fast is None:
            fast = self._fast = {b: _format_pattern(_flat_parts(self._jinja, b)) for b in self._jinja.blocks}
        out: list[str] = []
        for b in blocks:
            pattern = fast.get(b, _MISSING)
            if pattern is _MISSING:
                raise TemplateError(f"template {self.id} ({self.path}) has no block {b!r}; "
                                    f"it defines: {', '.join(self.blocks) or 'no blocks'}")
            if pattern is not None:
                try:
                    out.append(pattern.format_map(variables).strip())  # type: ignore[union-attr]
                    continue
                except KeyError:
                    pass  # let Jinja raise its StrictUndefined error
            out.append(self._render_jinja_block(b, variables))
        return out

    def _render_jinja_block(self, block: str, variables: dict[str, Any]) -> str:
        if self._flat_globals is None:
            self._flat_globals = dict(self._jinja.globals)
        fns = self._jinja.blocks
        try:
            ctx = new_context(self._jinja.environment, self._jinja.name, fns, variables, False, self._flat_globals)
            return "".join(fns[block](ctx)).strip()
        except JinjaTemplateError as e:
            raise TemplateError(f"template {self.id} ({self.path}) failed to render: {e}; "
                                f"variables given: {', '.join(sorted(variables))}") from None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fast"] = None
        return state


_MISSING = object()


def _format_pattern(parts: list[tuple[bool, str]] | None) -> str | None:
    """A block's flat parts as a `str.format` pattern: literal braces doubled, names as `{name}`."""
    if parts is None:
        return None
    return "".join(p.replace("{", "{{").replace("}", "}}") if lit else "{" + p + "}" for lit, p in parts)


def _flat_parts(jinja_template: Any, block: str) -> list[tuple[bool, str]] | None:
    """The block as (is_literal, text_or_name) parts when it is only text and `{{ name }}`; else None."""
    source_path = jinja_template.filename
    env = jinja_template.environment
    try:
        source = Path(source_path).read_text(encoding="utf-8") if source_path else None
        if source is None:
            return None
        tree = env.parse(source)
    except (OSError, JinjaTemplateError):
        return None
    for node in tree.find_all(nodes.Block):
        if node.name != block:
            continue
        parts: list[tuple[bool, str]] = []
        for stmt in node.body:
            if not isinstance(stmt, nodes.Output):
                return None
            for child in stmt.nodes:
                if isinstance(child, nodes.TemplateData):
                    parts.append((True, child.data))
                elif isinstance(child, nodes.Name) and child.ctx == "load":
                    parts.append((False, child.name))
                else:
                    return None
        return parts
    return None


class TemplateLibrary:
    """All templates visible to a run: user folders first, then the bundled ones."""

    def __init__(self, user_dirs: Iterable[str | Path] = ()) -> None:
        self.dirs = [Path(d) for d in user_dirs] + [BUNDLED_DIR]
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader([str(d) for d in self.dirs]),
            undefined=StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self._cache: dict[str, Template] = {}

    def get(self, template_id: str) -> Template:
        """The template `<task>/<style>`; raises TemplateError naming the folders searched."""
        t = self._cache.get(template_id)
        if t is not None:
            return t
        try:
            j = self.env.get_template(f"{template_id}.jinja2")
        except TemplateNotFound:
            raise TemplateError(f"no template {template_id!r} (looked for {template_id}.jinja2 in "
                                f"{', '.join(str(d) for d in self.dirs)})") from None
        except JinjaTemplateError as e:
            raise TemplateError(f"template {template_id} does not compile: {e}") from None
        src_path = j.filename or template_id
        m = _VERSION_RE.search(Path(src_path).read_text(encoding="utf-8")) if j.filename else None
        t = Template(id=template_id, version=int(m.group(1)) if m else 1, path=str(src_path), _jinja=j)
        self._cache[template_id] = t
        return t

    def styles(self, task: str) -> list[str]:
        """Style names available for `task`, sorted, user folders included (a stable order for seeding)."""
        names: set[str] = set()
        for d in self.dirs:
            folder = d / task
            if folder.is_dir():
                names.update(p.stem for p in folder.glob("*.jinja2"))
        return sorted(names)

    def tasks(self) -> list[str]:
        names: set[str] = set()
        for d in self.dirs:
            if d.is_dir():
                names.update(p.parent.name for p in d.glob("*/*.jinja2"))
        return sorted(names)


@lru_cache(maxsize=1)
def default_library() -> TemplateLibrary:
    return TemplateLibrary()


def render(name: str, block: str | None = None, **variables: Any) -> str:
    """Render bundled template `name` (`<task>/<style>`), or one of its blocks."""
    return default_library().get(name).render(block, **variables)
