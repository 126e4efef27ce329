"""What the text-only sources share: options, the row reader, row layouts and the Sample they build.

Text-only sources (alpaca, sharegpt, dolly, openai_messages, hf_dataset) turn each row straight into one
`Sample` with no images and task `TEXT_TASK`; a bad row becomes a `Reject` with a reason code. A row's id
is its `id` value when it has one, else its 0-based index; the sample id is `<source>/<row id>/text/0`.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Literal

from pydantic import Field

from schemas.sample import Lineage, Sample, Turn, escape_source_text
from sources.base import Item, Source, SourceError, SourceOptions, load_json

#: The task name of every text-only sample (stats, mixing and the dataset card count them under it).
TEXT_TASK = "text"

Role = Literal["system", "user", "assistant"]

#: Keys that mark each row layout; the layout's name is also the kind of the source that reads it.
LAYOUT_KEYS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "output"),
    "sharegpt": ("conversations",),
    "dolly": ("instruction", "response"),
    "openai_messages": ("messages",),
}

#: One line per layout, for error messages.
LAYOUT_SHAPES: dict[str, str] = {
    "alpaca": "rows {instruction, input, output}",
    "sharegpt": "rows {id, conversations: [{from, value}]}",
    "dolly": "rows {instruction, context, response, category}",
    "openai_messages": 'rows {"messages": [{role, content}]}',
}


class RowError(Exception):
    """One row is unusable; `reason` is its reject reason code (schemas/reject.py REASONS)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass
class Conversation:
    """A row turned into turns (source text, not yet escaped) and the safe repairs made on the way."""

    turns: list[tuple[Role, str]]
    repairs: list[str] = field(default_factory=list)


class TextSourceOptions(SourceOptions):
    """`path`: the data file. Text-only sources always give text-only samples (`text_only` may be written
    in a recipe for clarity; it cannot be false)."""

    path: str
    text_only: Literal[True] = True


class ChatSourceOptions(TextSourceOptions):
    """Options of sources whose rows carry role names (sharegpt, openai_messages, hf_dataset)."""

    #: Extra role names and the role each stands for, e.g. {model: assistant}; added to the built-in ones.
    role_map: dict[str, Role] = Field(default_factory=dict)


def layouts_of(keys: Iterable[str]) -> list[str]:
    """The row layouts whose marking keys are all among `keys` (in LAYOUT_KEYS order)."""
    have = set(keys)
    return [name for name, need in LAYOUT_KEYS.items() if all(k in have for k in need)]


def check_layout(keys: Iterable[str], layout: str, kind: str, path: str, where: str,
                 switch: str = "read this file with `kind: {}`") -> None:
    """Raise SourceError when `keys` (a first row's keys or a dataset's columns) show that the file is not
    in `layout`: it fits another layout (`switch` says how to read it as that one), or has none of this
    layout's keys."""
    keys = list(keys)
    need = LAYOUT_KEYS[layout]
    if all(k in keys for k in need):
        return
    shown = ", ".join(repr(k) for k in keys[:10]) or "none"
    fits = layouts_of(keys)
    if fits:
        raise SourceError(f"{kind}: {where} of {path} has the keys of the {fits[0]} layout ({shown}), not of "
                          f"{layout} ({LAYOUT_SHAPES[layout]}); {switch.format(fits[0])}")
    if not any(k in keys for k in need):
        raise SourceError(f"{kind}: {where} of {path} has none of the keys {', '.join(map(repr, need))} "
                          f"(it has {shown}); expected {LAYOUT_SHAPES[layout]}. Check `path` and `kind`")


def field_text(row: dict[str, Any], key: str, empty: str | None) -> str:
    """The stripped text of `row[key]`. With `empty` (a reason code) the field is required and must not be
    empty; without it, a missing or null field gives ''. Numbers are accepted as text (an answer of 4)."""
    value = row.get(key)
    if value is None:
        if empty is None:
            return ""
        have = ", ".join(repr(k) for k in row) or "no keys"
        raise RowError("missing_key", f"the row has no {key!r} value (it has {have}); add it")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError("bad_value", f"{key!r} holds a {type(value).__name__}, expected text")
    text = str(value).strip()
    if not text and empty is not None:
        raise RowError(empty, f"{key!r} is empty")
    return text


def row_id(row: dict[str, Any], default: str) -> str:
    """The row's `id` value as text, or `default` (its index) when it has none."""
    value = row.get("id")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise RowError("bad_value", f"'id' holds {value!r}, expected a non-empty string or an integer")
    return str(value).strip()


def _first_byte(path: Path) -> bytes:
    """The first byte that is not whitespace or a UTF-8 byte-order mark (b'' for an empty file)."""
    with open(path, "rb") as f:
        head = f.read(3)
        if head != b"\xef\xbb\xbf":
            f.seek(0)
        while chunk := f.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[:1]
    return b""


def read_rows(path: str, kind: str, layout: str) -> Iterator[tuple[str, str, Any]]:
    """Yield (index, where, row) for each row of a JSON list or a JSON Lines file, told apart by content
    (a list starts with '['); `row` is a RowError for a JSONL line that is not JSON.

    A missing, empty or non-UTF-8 file, or one whose first line is not JSON, is a SourceError."""
    p = Path(path)
    expect = f"a JSON list or JSON Lines of {LAYOUT_SHAPES[layout]}"
    if not p.is_file():
        raise SourceError(f"{kind}: file not found: {p}; check `path` in the recipe ({expect})")
    head = _first_byte(p)
    if not head:
        raise SourceError(f"{kind}: {p} is empty; expected {expect}")
    if head == b"[":
        data = load_json(p, kind, expect)
        for i, row in enumerate(data):
            yield str(i), f"row {i}", row
        return
    if head != b"{":
        raise SourceError(f"{kind}: {p} starts with {head.decode('latin-1')!r}, neither '[' (a JSON list of rows) "
                          f"nor '{{' (JSON Lines, one object per line); expected {expect}")
    yield from _jsonl_rows(p, kind, expect)


def _jsonl_rows(p: Path, kind: str, expect: str) -> Iterator[tuple[str, str, Any]]:
    i = 0
    with open(p, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                raise SourceError(f"{kind}: line {line_no} of {p} is not UTF-8 text; save the file as UTF-8") from None
            if not line:
                continue
            where = f"row {i} (line {line_no})"
            try:
                row: Any = json.loads(line)
            except json.JSONDecodeError as e:
                if i == 0:
                    hint = ("; a pretty-printed JSON object is neither a list of rows nor JSON Lines"
                            if line == "{" else "")
                    raise SourceError(f"{kind}: line {line_no} of {p} is not valid JSON ({e.msg}, column {e.colno})"
                                      f"{hint}; expected {expect}") from None
                row = RowError("bad_value", f"line {line_no} is not valid JSON ({e.msg}, column {e.colno}); "
                                            "fix or remove the line")
            yield str(i), where, row
            i += 1


class TextSource(Source):
    """A text-only source: each row of `rows()` becomes one Sample through `convert()`, or a Reject."""

    Options: ClassVar[type[SourceOptions]] = TextSourceOptions
    #: The row layout this source reads (a key of LAYOUT_KEYS).
    layout: ClassVar[str]

    @property
    def path(self) -> str:
        return str(getattr(self.options, "path"))

    @property
    def row_layout(self) -> str:
        """The layout of the rows being read (a source that reads several layouts overrides this)."""
        return self.layout

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        """(default row id, where, row) for each row; checks the first row's keys against the layout."""
        checked = False
        for key, where, row in read_rows(self.path, self.kind, self.layout):
            if not checked and isinstance(row, dict):
                check_layout(row.keys(), self.layout, self.kind, self.path, where)
                checked = True
            yield key, where, row

    @abstractmethod
    def convert(self, row: dict[str, Any]) -> Conversation:
        """Turn one row into a conversation; raise RowError for a row that cannot be used."""

    def read(self) -> Iterator[Item]:
        """One Sample per good row, one Reject per bad row, in file order. `limit` counts samples."""
        seen: dict[str, str] = {}
        n = 0
        for key, where, row in self.rows():
            if self.limited(n):
                return
            rid = key
            try:
                if isinstance(row, RowError):
                    raise row
                if not isinstance(row, dict):
                    raise RowError("bad_value", f"the row is a JSON {type(row).__name__}, expected an object "
                                                f"({LAYOUT_SHAPES[self.row_layout]})")
                rid = row_id(row, key)
                if rid in seen:
                    raise RowError("bad_value", f"id {rid!r} was already used by {seen[rid]}; ids must be unique")
                seen[rid] = where
                conv = self.convert(row)
            except RowError as e:
                named = f"{where} (id {rid!r})" if rid != key else where
                yield self.reject(e.reason, f"{self.kind}: {named} of {self.path}: {e}", file=self.path, record=rid)
                continue
            n += 1
            yield self.sample(rid, conv)

    def sample(self, rid: str, conv: Conversation) -> Sample:
        """The text-only Sample of one row; literal `<image>` / `<box:` in the text are escaped."""
        return Sample(
            id=f"{self.name}/{rid}/text/0",
            images=[],
            turns=[Turn(role=role, text=escape_source_text(text)) for role, text in conv.turns],
            task=TEXT_TASK,
            source=self.name,
            lineage=Lineage(source=self.name, source_kind=self.kind, file=self.path, ann_ids=[rid],
                            filters=[f"repaired:{r}" for r in conv.repairs]),
        )

