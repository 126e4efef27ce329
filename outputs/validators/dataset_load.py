"""Reading a parquet or Arrow dataset for validation: lazily, a batch at a time, never raising on bad content.

A path may be a `.parquet` file, a folder of parquet shards (searched recursively, as vlforge's `hf` and
`trl` outputs keep them under `data/`), a `save_to_disk` folder (it has `state.json`), one `.arrow`
file, or a writer's output folder that holds one `save_to_disk` dataset and no parquet. Rows come
back as plain Python values of the Arrow storage: an `Image()` is `{"bytes": ..., "path": ...}`.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from outputs.validators.base import Violation, as_list, where

#: File name endings that mark a dataset file rather than JSON.
DATASET_SUFFIXES = (".parquet", ".arrow")
_BATCH_ROWS = 64


def _unreadable(message: str) -> Violation:
    return Violation(row=None, rule="unreadable_dataset", message=message)


@dataclass
class DatasetRows:
    """The rows of one dataset, read when iterated. Problems met while reading go to `errors`."""

    root: Path
    files: list[Path]
    #: "parquet" or "arrow" (Arrow IPC stream files, as save_to_disk writes them).
    storage: str
    columns: list[str]
    #: Rows per file, in file order.
    counts: list[int]
    errors: list[Violation] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(self.counts)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import pyarrow as pa

        for path in self.files:
            try:
                for batch in _batches(path, self.storage):
                    yield from batch.to_pylist()
            except (pa.ArrowException, OSError) as e:
                self.errors.append(_unreadable(f"{path}: reading stopped part way ({e}); the file is damaged: "
                                               "write it again"))
                return

    def locate(self, row: int) -> str:
        """`<file> row k`: where dataset row `row` is (for messages about datasets of several files)."""
        starts = [0]
        for n in self.counts[:-1]:
            starts.append(starts[-1] + n)
        k = bisect.bisect_right(starts, row) - 1
        return f"{self.files[k].name} row {row - starts[k]}"


def _batches(path: Path, storage: str) -> Iterator[Any]:
    """Record batches of one file, a few rows each (rows carry image bytes)."""
    if storage == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS)
    else:
        yield from _arrow_table(path).to_batches(max_chunksize=_BATCH_ROWS)


def _arrow_table(path: Path) -> Any:
    """An Arrow file (stream format as save_to_disk writes it, or the random-access file format), memory-mapped."""
    import pyarrow as pa

    source = pa.memory_map(str(path))
    try:
        return pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def _files(path: Path) -> tuple[list[Path], str] | Violation:
    """The dataset files `path` names and their storage, or the violation saying why there are none."""
    if path.is_file():
        return [path], ("parquet" if path.suffix == ".parquet" else "arrow")
    if not path.is_dir():
        return Violation(row=None, rule="file_missing", message=f"{path} does not exist; check the path")
    if (path / "state.json").is_file():
        return _state_files(path)
    parquet = sorted(p for p in path.rglob("*.parquet") if not _hidden(p, path))
    if parquet:
        return parquet, "parquet"
    saved = sorted(p.parent for p in path.rglob("state.json") if not _hidden(p, path))
    if len(saved) == 1:
        return _state_files(saved[0])
    if saved:
        return _unreadable(f"{path} holds {len(saved)} save_to_disk datasets ({', '.join(str(s) for s in saved)}); "
                           "point at one of them")
    return Violation(row=None, rule="file_missing",
                     message=f"{path} holds no parquet file and no save_to_disk dataset (state.json); point at a "
                             ".parquet file, a folder of them or a save_to_disk folder")


def _hidden(p: Path, root: Path) -> bool:
    """True under a hidden folder (a writer's temporary folder) below `root`."""
    return any(part.startswith(".") for part in p.relative_to(root).parts)


def _state_files(folder: Path) -> tuple[list[Path], str] | Violation:
    """The Arrow files a save_to_disk folder lists in its state.json."""
    state = folder / "state.json"
    try:
        names = [d["filename"] for d in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        return _unreadable(f"{state} is not a save_to_disk state file ({type(e).__name__}: {e}); save the dataset "
                           "again with save_to_disk")
    files = [folder / str(n) for n in names]
    gone = [f.name for f in files if not f.is_file()]
    if gone:
        return _unreadable(f"{state} lists {gone}, missing from {folder}; save the dataset again")
    return files, "arrow"


def load_dataset_rows(path: Path) -> tuple[DatasetRows | None, list[Violation]]:
    """(the dataset's rows, or None when it cannot be read, and the violations found so far).

    Shards whose columns differ from the first one's are a violation: `load_dataset` cannot join them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = _files(path)
    if isinstance(found, Violation):
        return None, [found]
    files, storage = found
    counts: list[int] = []
    columns: list[list[str]] = []
    for f in files:
        try:
            if storage == "parquet":
                meta = pq.ParquetFile(f)
                counts.append(meta.metadata.num_rows)
                columns.append(list(meta.schema_arrow.names))
            else:
                table = _arrow_table(f)
                counts.append(table.num_rows)
                columns.append(list(table.schema.names))
        except (pa.ArrowException, OSError) as e:
            return None, [_unreadable(f"{f} cannot be read as {storage} ({e}); is it a {storage} file? "
                                      "Write it again")]
    out = [_unreadable(f"{f.name} has columns {cols}, but {files[0].name} has {columns[0]}; load_dataset cannot "
                       "join shards of different columns: write them with one schema")
           for f, cols in zip(files[1:], columns[1:]) if cols != columns[0]]
    return DatasetRows(root=path, files=files, storage=storage, columns=columns[0], counts=counts), out


@dataclass
class Table:
    """What a row validator iterates: JSON rows (a list) or a dataset's rows, with how to name a row."""

    rows: Iterable[Any]
    #: True for parquet/Arrow rows (images must be embedded; columns were checked once for the file).
    in_dataset: bool
    multi_file: DatasetRows | None = None

    def at(self, i: int, row: Any) -> str:
        """`row 3 (id 'x')`, plus the shard file and its row when the dataset has several files."""
        base = where(i, row)
        return f"{base} [{self.multi_file.locate(i)}]" if self.multi_file is not None else base


def as_table(rows: Any, required: tuple[str, ...], loader: str) -> tuple[Table | None, list[Violation]]:
    """The rows to check (None when there are none to check) and the file-level violations: for a
    dataset, each `required` column it lacks; for JSON, a top level that is not a list."""
    if isinstance(rows, DatasetRows):
        out = [Violation(row=None, rule="missing_column",
                         message=f"{rows.root}: the dataset has no {col!r} column (columns: {rows.columns}); "
                                 f"{loader} reads it: add it")
               for col in required if col not in rows.columns]
        return Table(rows, True, rows if len(rows.files) > 1 else None), out
    items, out = as_list(rows)
    return (Table(items, False) if items is not None else None), out
