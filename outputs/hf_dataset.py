"""Writing rows as a Hugging Face dataset with the images embedded: parquet shards and `save_to_disk`.

Shared by the `hf` and `trl` writers. Rows arrive as JSON text whose `images` list holds paths
relative to the image root; here each path becomes the `Image()` feature's storage
`{"bytes": <the file's bytes>, "path": <its file name>}`, so both outputs are self-contained
(`Dataset.to_parquet` would store bare paths otherwise). `path` keeps only the file name, as `datasets`
does whenever it embeds a file (`save_to_disk` would cut it so anyway). The layout under the folder:

    data/<name>-00000-of-0000N.parquet    `load_dataset("parquet", data_files=...)`
    arrow/<name>/                         `load_from_disk(...)`

`load_dataset("<the folder>")` also works: by the Hub's `data/<split>-NNNNN-of-NNNNN` convention it
reads each output name as a split (so `["<name>"]`; a README `configs:` entry can map it to `train`).

Rows go through one Arrow file in a temporary folder (memory-mapped, so a large output is never
held in memory at once); the parquet shards are slices of it, and everything moves into place by
renames only when all of it is written. The same rows and images give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from outputs.errors import WriterError
from outputs.shards import (plan_shards, publish_files, publish_folder, remove_stale_shards, shard_name,
                            temp_folder)

if TYPE_CHECKING:
    from datasets import Features

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson = None

PARQUET_DIR = "data"
ARROW_DIR = "arrow"
#: Rows (and bytes) handed to the Arrow writer at a time: images are in them, so kept small.
_BATCH_ROWS = 100
_BATCH_BYTES = 64 * 1024 * 1024


def _loads(row: str) -> dict[str, Any]:
    return _orjson.loads(row) if _orjson is not None else json.loads(row)


def require_datasets(kind: str) -> None:
    """Raise an ImportError with the install hint when the `datasets` package is missing."""
    try:
        import datasets  # noqa: F401
    except ImportError as e:
        raise ImportError(f"the {kind} output needs the `datasets` package: pip install datasets") from e


@contextmanager
def _quiet() -> Iterator[None]:
    """No `datasets` progress bars while writing (the build prints its own progress)."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def read_image(image_root: str, rel: str, sample_id: str, kind: str) -> bytes:
    """The bytes of one image file; WriterError naming the sample and the path when it cannot be read."""
    path = os.path.join(image_root, rel)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise WriterError(f"{kind}: image {rel!r} of sample {sample_id!r} cannot be read from the image root "
                          f"{image_root} ({e.strerror or e}); the build found it earlier, so it was moved or "
                          "deleted since: restore it and rerun") from None


def embedded_rows(rows: list[str], image_root: str, kind: str, digest: Any) -> Iterator[tuple[dict[str, Any], int]]:
    """Each row as a record whose images are `{"bytes", "path"}`, with its size in bytes; every row
    and image also goes into `digest` (the dataset's fingerprint)."""
    for row in rows:
        rec = _loads(row)
        digest.update(row.encode("utf-8"))
        size = len(row)
        images = []
        for rel in rec.get("images") or []:
            data = read_image(image_root, rel, str(rec.get("id")), kind)
            digest.update(hashlib.sha256(data).digest())
            size += len(data)
            images.append({"bytes": data, "path": os.path.basename(rel)})
        rec["images"] = images
        yield rec, size


def write_hf_dataset(rows: list[str], features: "Features", out_dir: str | os.PathLike[str], name: str,
                     image_root: str, kind: str, max_rows: int, max_bytes: int) -> list[Path]:
    """Write `rows` (JSON text, columns as in `features`) as parquet shards and a `save_to_disk`
    folder under `out_dir`; return the parquet files, then the folder."""
    require_datasets(kind)
    import pyarrow as pa
    from datasets import Dataset, DatasetInfo
    from datasets.arrow_writer import ArrowWriter
    from datasets.table import MemoryMappedTable

    out = Path(out_dir)
    tmp = temp_folder(out, f"{kind}-{name}")
    try:
        digest = hashlib.sha256(f"{kind}\0{name}\0{json.dumps(features.to_dict(), sort_keys=True)}".encode())
        schema = features.arrow_schema
        sizes: list[int] = []
        arrow_file = tmp / "all.arrow"
        with ArrowWriter(features=features, path=str(arrow_file)) as writer:
            batch: list[dict[str, Any]] = []
            held = 0
            for rec, size in embedded_rows(rows, image_root, kind, digest):
                batch.append(rec)
                sizes.append(size)
                held += size
                if len(batch) >= _BATCH_ROWS or held >= _BATCH_BYTES:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch, held = [], 0
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            writer.finalize()

        ranges = plan_shards(sizes, max_rows, max_bytes)
        built_parquet = []
        with _quiet():
            ds = Dataset(MemoryMappedTable.from_file(str(arrow_file)), info=DatasetInfo(features=features),
                         fingerprint=digest.hexdigest()[:16])
            (tmp / PARQUET_DIR).mkdir()
            for k, (start, end) in enumerate(ranges):
                path = tmp / PARQUET_DIR / shard_name(name, k, len(ranges), "parquet")
                ds.select(range(start, end)).to_parquet(str(path))
                built_parquet.append(path)
            ds.save_to_disk(str(tmp / ARROW_DIR), num_shards=max(1, min(len(ranges), len(ds))))
            del ds
        files = publish_files(built_parquet, out / PARQUET_DIR)
        remove_stale_shards(out / PARQUET_DIR, name, "parquet", files)
        files.append(publish_folder(tmp / ARROW_DIR, out / ARROW_DIR / name))
        return files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hf_usage(kind: str, out: Path, name: str) -> str:
    """One line telling how to load the dataset `write_hf_dataset` wrote under `out`."""
    shards = out / PARQUET_DIR / f"{name}-?????-of-?????.parquet"
    return (f'{kind}: datasets.load_dataset("parquet", data_files="{shards}", split="train") or '
            f'datasets.load_from_disk("{out / ARROW_DIR / name}") (images embedded as bytes)')
