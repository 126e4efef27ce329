"""Sharded output files: how rows are split, how shards are named, and how a set of them is published.

A large output is split into shards of at most `max_rows` rows and `max_bytes` bytes, named as
the Hub names them: `<name>-00000-of-00003.<ext>`. Each shard is written to a temporary file and
renamed into place; shards of an earlier write of the same name that the new set does not have are
removed afterwards, so a folder never mixes two writes' shard counts. A folder (a `save_to_disk`
dataset) is built in a temporary folder and swapped in by renames.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

#: Rows per shard when the output format sets no `shard_rows`.
DEFAULT_SHARD_ROWS = 50_000
#: Bytes per shard before a new one starts (the Hub's advice is parquet files of a few hundred MB).
DEFAULT_SHARD_BYTES = 512 * 1024 * 1024


def shard_name(name: str, index: int, count: int, ext: str) -> str:
    """`name-00001-of-00003.ext`, the Hub's shard naming."""
    return f"{name}-{index:05d}-of-{count:05d}.{ext}"


def shard_pattern(name: str, ext: str) -> re.Pattern[str]:
    """Matches every shard file name `shard_name(name, ...)` can produce, and nothing else."""
    return re.compile(rf"{re.escape(name)}-\d{{5}}-of-\d{{5}}\.{re.escape(ext)}")


def plan_shards(sizes: list[int], max_rows: int, max_bytes: int = DEFAULT_SHARD_BYTES) -> list[tuple[int, int]]:
    """Split rows with these byte sizes into [start, end) ranges of at most `max_rows` rows each; a
    shard also ends before a row that would take it past `max_bytes` (a row bigger than that alone is
    a shard of its own). Always at least one range, so an empty output is still one (empty) shard."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    ranges: list[tuple[int, int]] = []
    start, held = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_rows or held + size > max_bytes):
            ranges.append((start, i))
            start, held = i, 0
        held += size
    ranges.append((start, len(sizes)))
    return ranges


def remove_stale_shards(folder: Path, name: str, ext: str, keep: list[Path]) -> None:
    """Delete shard files of `name` in `folder` that an earlier write left and `keep` does not list."""
    pattern = shard_pattern(name, ext)
    kept = {p.name for p in keep}
    for entry in os.listdir(folder):
        if pattern.fullmatch(entry) and entry not in kept:
            os.unlink(folder / entry)


def temp_folder(parent: Path, label: str) -> Path:
    """A new empty hidden folder in `parent` (same file system, so renames out of it are atomic)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{label}.", suffix=".tmp", dir=parent))


def publish_files(built: list[Path], folder: Path) -> list[Path]:
    """Move finished files (in a temporary folder on the same file system) into `folder`, each by an
    atomic rename; return their new paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in built:
        dest = folder / p.name
        os.replace(p, dest)
        out.append(dest)
    return out


def publish_folder(built: Path, dest: Path) -> Path:
    """Put the finished folder `built` at `dest`: an existing `dest` is first renamed aside (into
    `built`'s parent, a temporary folder of ours) and deleted once the new one is in place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if dest.exists() or dest.is_symlink():
        old = built.parent / f".old-{dest.name}"
        os.replace(dest, old)
    os.replace(built, dest)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    return dest
