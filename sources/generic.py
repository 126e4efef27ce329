"""Any table of annotations: a JSON list, JSON Lines or CSV, with a `columns` mapping to our fields.

Each row becomes one record. `columns` maps our field names (id, image, question, answer, caption,
choices, answer_index, label, split) to the file's column names; unmapped fields are not read. A row
gives a QA pair (kind `mc` when choices are mapped, else `vqa`), a caption, a class label, or several of
these. Without an `id` column the record id is the row's index (0-based, data rows only); without an
`image` column records are text-only (image None). Every mapped column must be present in every row.

Choices are a JSON list, or in a CSV cell a JSON list (`["red", "blue"]`) or text split on
`choices_sep`. With choices, the answer is given by `answer_index`, by `answer` (one of the choices),
or by both (which must agree).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, ClassVar, Iterator, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from schemas.record import QA, AnnotationRecord, Caption
from schemas.reject import Reject
from schemas.sample import escape_source_text
from sources.base import Item, Source, SourceError, SourceOptions, load_json

_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


class GenericColumns(BaseModel):
    """Our field -> the file's column name. Unknown keys are recipe errors (extra="forbid")."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    image: str | None = None
    question: str | None = None
    answer: str | None = None
    caption: str | None = None
    choices: str | None = None
    answer_index: str | None = None
    label: str | None = None
    split: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> "GenericColumns":
        if self.question is None and self.caption is None and self.label is None:
            raise ValueError("columns map none of question, caption, label; map at least one, "
                             "e.g. columns: {image: file, caption: text}")
        if self.question is not None and self.answer is None and self.answer_index is None:
            raise ValueError("columns map `question` but neither `answer` nor `answer_index`; map the answer column")
        if (self.answer is not None or self.choices is not None) and self.question is None:
            raise ValueError("columns map `answer` or `choices` but not `question`; map the question column")
        if self.answer_index is not None and self.choices is None:
            raise ValueError("columns map `answer_index` but not `choices`; an index needs the choices it points into")
        return self

    def mapped(self) -> dict[str, str]:
        """Our field -> column name, for the mapped fields only."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class GenericOptions(SourceOptions):
    """`path`: the file; `format`: auto (by extension), json, jsonl or csv; `columns`: field -> column."""

    path: str
    format: Literal["auto", "json", "jsonl", "csv"] = "auto"
    columns: GenericColumns
    #: For a JSON object that holds the list of rows under one key, e.g. `data`.
    records_key: str | None = None
    #: Separator of choices written as plain text in one CSV cell.
    choices_sep: str = "|"
    #: CSV field delimiter (`"\t"` for TSV).
    delimiter: str = ","


class RowError(Exception):
    """A row's value is unusable; carries the reject reason code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _text(value: Any, field: str, column: str) -> str:
    """A scalar cell as stripped text; empty text raises RowError (empty_<field> where such a code exists)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError("bad_value", f"column {column!r} ({field}) holds {value!r}, expected text or a number")
    text = str(value).strip()
    if not text:
        reason = {"question": "empty_question", "answer": "empty_answer", "caption": "empty_caption"}
        raise RowError(reason.get(field, "bad_value"), f"column {column!r} ({field}) is empty")
    return text


class GenericSource(Source):
    """Reads rows of a JSON / JSONL / CSV table as records, one per row, in file order."""

    kind: ClassVar[str] = "generic"
    Options: ClassVar[type[SourceOptions]] = GenericOptions

    @property
    def opts(self) -> GenericOptions:
        assert isinstance(self.options, GenericOptions)
        return self.options

    def _format(self) -> str:
        fmt = self.opts.format
        if fmt != "auto":
            return fmt
        ext = os.path.splitext(self.opts.path)[1].lower()
        if ext not in _EXTENSIONS:
            raise SourceError(f"{self.kind}: cannot tell the format of {self.opts.path} from its extension "
                              f"{ext or '(none)'!r}; set `format` to json, jsonl or csv")
        return _EXTENSIONS[ext]

    # ---- row readers: each yields (index, where, row or error message) ------------------------

    def _json_rows(self) -> Iterator[tuple[int, str, Any]]:
        path, key = self.opts.path, self.opts.records_key
        data = load_json(path, self.kind, "a JSON list of row objects (or an object holding one under `records_key`)")
        if key is not None:
            if not isinstance(data, dict) or key not in data:
                found = ", ".join(sorted(data)[:8]) if isinstance(data, dict) else f"a {type(data).__name__}"
                raise SourceError(f"{self.kind}: {path} has no {key!r} key (found: {found}); fix `records_key`")
            data = data[key]
        if isinstance(data, dict):
            lists = [k for k, v in data.items() if isinstance(v, list)]
            raise SourceError(f"{self.kind}: {path} holds a JSON object, not a list of rows; set `records_key` to "
                              f"the key that holds the rows (keys holding lists: {', '.join(lists) or 'none'})")
        if not isinstance(data, list):
            raise SourceError(f"{self.kind}: {path} holds a JSON {type(data).__name__} under {key!r}, "
                              "expected a list of row objects")
        for i, row in enumerate(data):
            yield i, f"row {i}", row

    def _jsonl_rows(self) -> Iterator[tuple[int, str, Any]]:
        path = self.opts.path
        i = 0
        with self._open() as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"row {i} (line {line_no})"
                try:
                    yield i, where, json.loads(line)
                except json.JSONDecodeError as e:
                    yield i, where, RowError("bad_value", f"line {line_no} of {path} is not valid JSON ({e.msg})")
                i += 1

    def _csv_rows(self) -> Iterator[tuple[int, str, Any]]:
        path = self.opts.path
        with self._open() as f:
            reader = csv.DictReader(f, delimiter=self.opts.delimiter)
            try:
                header = reader.fieldnames
                if not header:
                    raise SourceError(f"{self.kind}: {path} is empty; a CSV file needs a header row naming its "
                                      "columns")
                absent = {k: c for k, c in self.opts.columns.mapped().items() if c not in header}
                if absent:
                    raise SourceError(f"{self.kind}: the header of {path} has no column(s) "
                                      f"{', '.join(f'{c!r} (for {k})' for k, c in absent.items())}; its columns "
                                      f"are {', '.join(map(repr, header))}. Fix `columns` (or `delimiter`)")
                for i, row in enumerate(reader):
                    yield i, f"row {i} (line {reader.line_num})", row
            except csv.Error as e:
                raise SourceError(f"{self.kind}: {path} is not readable CSV near line {reader.line_num}: {e}"
                                  ) from None

    def _open(self) -> Any:
        path = self.opts.path
        if not os.path.isfile(path):
            raise SourceError(f"{self.kind}: file not found: {path}; check `path` in the recipe")
        return open(path, encoding="utf-8-sig", newline="")

    # ---- reading --------------------------------------------------------------------------------

    def read(self) -> Iterator[Item]:
        fmt = self._format()
        if self.opts.records_key is not None and fmt != "json":
            raise SourceError(f"{self.kind}: `records_key` applies to JSON files only, but {self.opts.path} is "
                              f"read as {fmt}; remove `records_key`")
        rows = {"json": self._json_rows, "jsonl": self._jsonl_rows, "csv": self._csv_rows}[fmt]()
        seen: set[str] = set()
        n = 0
        try:
            for i, where, row in rows:
                if self.limited(n):
                    return
                try:
                    record = self._record(i, where, row, seen)
                except RowError as e:
                    yield self.reject(e.reason, f"{self.kind}: {where} of {self.opts.path}: {e}",
                                      file=self.opts.path, record=where)
                    continue
                if isinstance(record, AnnotationRecord):
                    n += 1
                if record is not None:
                    yield record
        except UnicodeDecodeError:
            raise SourceError(f"{self.kind}: {self.opts.path} is not UTF-8 text; save it as UTF-8") from None

    def _record(self, i: int, where: str, row: Any, seen: set[str]) -> AnnotationRecord | Reject | None:
        """One row to a record (or an image reject); None when its split is not selected. Raises RowError."""
        if isinstance(row, RowError):
            raise row
        if not isinstance(row, dict):
            raise RowError("bad_value", f"the row is a {type(row).__name__}, expected an object of columns")
        cols = self.opts.columns
        mapped = cols.mapped()
        absent = [(k, c) for k, c in mapped.items() if row.get(c) is None]
        if absent:
            names = ", ".join(f"{c!r} (for {k})" for k, c in absent)
            have = ", ".join(repr(k) for k, v in row.items() if k is not None and v is not None)
            raise RowError("missing_key", f"no value in column(s) {names}; the row has {have or 'no columns'}. "
                                          "Fix the row or `columns`")
        val = {k: row[c] for k, c in mapped.items()}

        rid = _text(val["id"], "id", mapped["id"]) if "id" in val else str(i)
        split = _text(val["split"], "split", mapped["split"]) if "split" in val else None
        if not self.split_ok(split):
            return None
        if rid in seen:
            raise RowError("bad_value", f"id {rid!r} was already used by an earlier row; ids must be unique")
        seen.add(rid)

        image = None
        if "image" in val:
            file_name = _text(val["image"], "image", mapped["image"])
            image, reason = self.image_ref(file_name)
            if image is None:
                assert reason is not None
                return self.image_reject(reason, file_name, file=self.opts.path, record=where)

        qas = [self._qa(rid, val, mapped)] if "question" in val else []
        captions = []
        if "caption" in val:
            items = val["caption"] if isinstance(val["caption"], list) else [val["caption"]]
            if not items:
                raise RowError("empty_caption", f"column {mapped['caption']!r} (caption) is an empty list")
            captions = [Caption(text=escape_source_text(_text(c, "caption", mapped["caption"]))) for c in items]
        label = escape_source_text(_text(val["label"], "label", mapped["label"])) if "label" in val else None
        return AnnotationRecord(id=rid, source=self.name, source_kind=self.kind, file=self.opts.path, image=image,
                                split=split, qas=qas, captions=captions, label=label)

    def _qa(self, rid: str, val: dict[str, Any], mapped: dict[str, str]) -> QA:
        question = escape_source_text(_text(val["question"], "question", mapped["question"]))
        if "choices" not in val:
            answer = escape_source_text(_text(val["answer"], "answer", mapped["answer"]))
            return QA(kind="vqa", question=question, answer=answer, qid=rid)
        choices = [escape_source_text(c) for c in self._choices(val["choices"], mapped["choices"])]
        index: int | None = None
        if "answer_index" in val:
            raw = val["answer_index"]
            if isinstance(raw, str) and raw.strip().isdigit():
                raw = int(raw.strip())
            if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < len(choices):
                raise RowError("bad_value", f"column {mapped['answer_index']!r} (answer_index) holds {raw!r}, "
                                            f"not an index into the {len(choices)} choices (0..{len(choices) - 1})")
            index = raw
        if "answer" in val:
            answer = escape_source_text(_text(val["answer"], "answer", mapped["answer"]))
            if index is None:
                if answer not in choices:
                    raise RowError("bad_value", f"answer {answer!r} is not one of the choices {choices!r}")
                index = choices.index(answer)
            elif choices[index] != answer:
                raise RowError("bad_value", f"answer {answer!r} differs from choice {index} ({choices[index]!r}) "
                                            "that answer_index points at")
        assert index is not None
        return QA(kind="mc", question=question, answer=choices[index], qid=rid, choices=choices,
                  answer_index=index)

    def _choices(self, value: Any, column: str) -> list[str]:
        """A JSON list, a JSON list written as text, or text split on `choices_sep`."""
        if isinstance(value, str):
            s = value.strip()
            if s.startswith("["):
                try:
                    value = json.loads(s)
                except json.JSONDecodeError as e:
                    raise RowError("bad_value", f"column {column!r} (choices) starts with '[' but is not a JSON "
                                                f"list ({e.msg})") from None
            else:
                value = s.split(self.opts.choices_sep) if s else []
        if not isinstance(value, list) or not value:
            raise RowError("bad_value", f"column {column!r} (choices) holds {value!r}, expected a non-empty list")
        return [_text(c, "choices", column) for c in value]
