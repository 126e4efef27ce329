"""The read loop shared by the question-answer readers (VQAv2, OK-VQA, GQA, TextVQA, OCR-VQA).

Their files list questions (rows); several rows name the same image. `QAReader.read()` groups the rows
by image, in the order in which each image first appears in the file, checks each image once, and
yields one AnnotationRecord per image holding the usable QA pairs of its rows.

Choices (documented once here for every QA reader):
- A bad question (missing key, empty question or answer, no annotation) is one Reject; the image keeps
  its good questions. An image with no usable question left yields no record: the per-question rejects
  already account for it.
- A missing or escaping image file, or a row whose image name cannot be made, is one Reject for the
  image (its lineage lists the question ids); its questions are not rejected one by one.
- Rows that cannot be placed on an image (no image id, not an object) and the reader's own leftovers
  (VQA annotations that no question uses) are yielded after the records, once the whole file has been
  read; a run stopped early by `limit` does not report them.
- `splits` is applied to rows before anything else; `limit` counts images: an image whose file turns
  out to be missing still counts (the check runs in the parse stage, after the scan has picked the images).
- Two phases: `scan()` (a read task) groups rows by image and joins other files' data; `parse_unit()` (a worker)
  checks the image and parses its rows.
"""

from __future__ import annotations

from typing import Any, Hashable, Iterable, Iterator, Sequence

from schemas.record import QA, AnnotationRecord
from schemas.reject import Reject
from sources.base import Item, RawUnit, TwoPhaseSource
from sources.fields import BadField, field_message


class QAReader(TwoPhaseSource):
    """Base of the QA readers. Subclasses load the file(s) and say how a row maps to an image and QAs."""

    #: The file path written into records (`AnnotationRecord.file`).
    file: str
    #: The file the rows come from, named in row and image rejects (VQAv2: the questions file).
    rows_file: str | None = None

    def load(self) -> Iterable[tuple[str, Any]]:
        """Read and check the input (SourceError when unusable); return (row name, row) in file order."""
        raise NotImplementedError

    def row_split(self, row: dict[str, Any]) -> str | None:
        """The split of one row (the file's split for most readers)."""
        raise NotImplementedError

    def image_key(self, name: str, row: dict[str, Any]) -> Hashable:
        """The image row `name` is about (the record id is `str()` of it); BadField when the row has none."""
        raise NotImplementedError

    def image_info(self, key: Any, row: dict[str, Any]) -> tuple[str, int | None, int | None]:
        """(file name under the image root, width, height) for image `key`; BadField when unusable."""
        raise NotImplementedError

    def join(self, name: str, row: dict[str, Any]) -> Any:
        """Data from other files that `parse` needs for this row (VQAv2: its annotation), found in the
        driver so that workers need no lookup tables."""
        return None

    def parse(self, name: str, row: dict[str, Any], qas: list[QA], joined: Any = None) -> Sequence[Reject]:
        """Append the usable QA pairs of one row to `qas`; return a Reject for each unusable one.

        (Appending to a list rather than yielding keeps the per-question cost low: readers see
        hundreds of thousands of questions.)"""
        raise NotImplementedError

    def finish(self) -> Iterator[Reject]:
        """Rejects that only a complete read can find (called when the whole file was read)."""
        return iter(())

    # ---- the shared loop ---------------------------------------------------------------------

    def scan(self) -> Iterator[Item | RawUnit]:
        rows = self.load()
        late: list[Reject] = []
        groups: dict[Any, list[tuple[str, dict[str, Any], Any]]] = {}
        split_ok = self.split_ok
        join = self.join
        for name, row in rows:
            if not isinstance(row, dict):
                late.append(self.bad(BadField("bad_value", f"is a JSON {type(row).__name__}, expected an object"),
                                     name))
                continue
            if not split_ok(self.row_split(row)):
                continue
            try:
                key = self.image_key(name, row)
            except BadField as e:
                late.append(self.bad(e, name))
                continue
            g = groups.get(key)
            if g is None:
                groups[key] = [(name, row, join(name, row))]
            else:
                g.append((name, row, join(name, row)))

        n = 0
        for key, items in groups.items():
            if self.limited(n):
                return
            yield RawUnit(self.name, (key, items))
            n += 1
        yield from late
        yield from self.finish()

    def parse_unit(self, payload: Any) -> list[Item]:
        """One image's rows: check the image once, parse each row, build the record."""
        key, items = payload
        first = items[0][1]
        qids = [name for name, _, _ in items]
        try:
            file_name, width, height = self.image_info(key, first)
        except BadField as e:
            return [self.bad(e, key, what="image", ann_ids=qids)]
        ref, reason = self.image_ref(file_name, width, height)
        if ref is None:
            r = self.image_reject(reason or "image_missing", file_name, file=self.rows_file or self.file,
                                  record=key)
            r.lineage.ann_ids = qids  # type: ignore[union-attr]
            return [r]
        out: list[Item] = []
        qas: list[QA] = []
        parse = self.parse
        for name, row, joined in items:
            rejects = parse(name, row, qas, joined)
            if rejects:
                out.extend(rejects)
        if qas:
            out.append(AnnotationRecord(id=str(key), source=self.name, source_kind=self.kind, file=self.file,
                                        image=ref, split=self.row_split(first), qas=qas))
        return out

    def bad(self, err: BadField, record: Any, *, what: str = "question", file: str | None = None,
            ann_ids: list[str] | None = None, hint: str = "") -> Reject:
        """The Reject for a bad field of one row (or image), naming the file and the record."""
        f = file or self.rows_file or self.file
        return self.reject(err.reason, field_message(self.kind, f"{what} {record}", f, err, hint), file=f,
                           record=record, ann_ids=ann_ids)
