"""A local Hugging Face datasets folder of text-only rows, read offline.

`path` is a `save_to_disk` folder (a Dataset, or a DatasetDict whose splits `splits` selects; all by
default), a folder of parquet files (those matching the glob `files`, in sorted order, read as one
dataset), or one `.parquet` file. The rows are in one of the text-only layouts, named by `format`
(alpaca | sharegpt | dolly | openai_messages) or, by default, told from the columns. Row ids are the
`id` column when there is one, else the row index (`<split>/<index>` in a DatasetDict).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

from sources.alpaca import alpaca_conversation
from sources.base import SourceError, SourceOptions
from sources.dolly import dolly_conversation
from sources.openai_messages import openai_conversation
from sources.sharegpt import sharegpt_conversation
from sources.text_base import (LAYOUT_KEYS, ChatSourceOptions, Conversation, TextSource, check_layout,
                               layouts_of)


class HFDatasetOptions(ChatSourceOptions):
    """`path`: the folder (or parquet file); `format`: the row layout, `auto` to tell it from the columns."""

    format: Literal["auto", "alpaca", "sharegpt", "dolly", "openai_messages"] = "auto"
    #: The parquet files of a parquet folder: a glob relative to `path`.
    files: str = "**/*.parquet"
    #: Where `datasets` keeps its Arrow copy of parquet files; None = datasets' default cache.
    cache_dir: str | None = None


@contextlib.contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    """Hide datasets' progress bars while loading (the build prints its own progress)."""
    was_on = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


class HFDatasetSource(TextSource):
    """Reads the rows of a local datasets folder as text-only samples, one per row."""

    kind: ClassVar[str] = "hf_dataset"
    layout: ClassVar[str] = "auto"
    Options: ClassVar[type[SourceOptions]] = HFDatasetOptions

    def __init__(self, options: SourceOptions, image_root: Any) -> None:
        super().__init__(options, image_root)
        self._layout = "alpaca"

    @property
    def opts(self) -> HFDatasetOptions:
        assert isinstance(self.options, HFDatasetOptions)
        return self.options

    @property
    def row_layout(self) -> str:
        return self._layout

    def _datasets(self) -> list[tuple[str | None, Any]]:
        """(split name or None, Dataset) pairs to read, in order."""
        try:
            import datasets
        except ImportError:
            raise SourceError(f"{self.kind}: reading {self.path} needs the `datasets` package; "
                              "pip install datasets") from None
        p = Path(self.path)
        if p.is_file():
            if p.suffix.lower() != ".parquet":
                raise SourceError(f"{self.kind}: {p} is a file but not a .parquet file; point `path` at a "
                                  "save_to_disk folder, a folder of parquet files or one .parquet file")
            files = [str(p)]
        elif not p.is_dir():
            raise SourceError(f"{self.kind}: {p} not found; point `path` at a save_to_disk folder, a folder of "
                              "parquet files or one .parquet file")
        elif (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
            return self._from_disk(datasets, p)
        else:
            files = sorted(str(f) for f in p.glob(self.opts.files) if f.is_file())
            if not files:
                raise SourceError(f"{self.kind}: {p} holds no save_to_disk dataset (state.json, or "
                                  f"dataset_dict.json) and no files matching `files: {self.opts.files}`; "
                                  "check `path` and `files`")
        if self.opts.splits is not None:
            raise SourceError(f"{self.kind}: `splits` selects splits of a save_to_disk DatasetDict, but {p} is "
                              "read as parquet files (one dataset); remove `splits` or narrow `files`")
        try:
            with _quiet(datasets):
                ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=self.opts.cache_dir)
        except Exception as e:  # datasets and pyarrow raise many types for unreadable files
            raise SourceError(f"{self.kind}: could not read the parquet files of {p} ({len(files)} file(s), "
                              f"first {files[0]}): {type(e).__name__}: {e}") from None
        return [(None, ds)]

    def _from_disk(self, datasets: Any, p: Path) -> list[tuple[str | None, Any]]:
        try:
            with _quiet(datasets):
                loaded = datasets.load_from_disk(str(p))
        except Exception as e:  # a damaged folder can fail in datasets, pyarrow or json
            raise SourceError(f"{self.kind}: could not load the save_to_disk folder {p}: {type(e).__name__}: {e}; "
                              "is it complete?") from None
        if not isinstance(loaded, datasets.DatasetDict):
            if self.opts.splits is not None:
                raise SourceError(f"{self.kind}: `splits` selects splits of a DatasetDict, but {p} holds a single "
                                  "Dataset; remove `splits`")
            return [(None, loaded)]
        names = list(loaded)
        wanted = names if self.opts.splits is None else list(self.opts.splits)
        unknown = [s for s in wanted if s not in loaded]
        if unknown:
            raise SourceError(f"{self.kind}: {p} has no split(s) {', '.join(map(repr, unknown))}; its splits are "
                              f"{', '.join(map(repr, names))}. Fix `splits`")
        return [(s, loaded[s]) for s in wanted]

    def _pick_layout(self, columns: list[str], where: str) -> str:
        fmt = self.opts.format
        if fmt != "auto":
            check_layout(columns, fmt, self.kind, self.path, where, switch="set `format: {}`")
            return fmt
        fits = layouts_of(columns)
        if len(fits) == 1:
            return fits[0]
        shown = ", ".join(map(repr, columns)) or "none"
        if fits:
            raise SourceError(f"{self.kind}: {where} of {self.path} ({shown}) fit several row layouts "
                              f"({', '.join(fits)}); set `format` to the right one")
        known = "; ".join(f"{name}: {' + '.join(keys)}" for name, keys in LAYOUT_KEYS.items())
        raise SourceError(f"{self.kind}: cannot tell the row layout of {self.path} from {where} ({shown}); "
                          f"set `format` to one of alpaca, sharegpt, dolly, openai_messages (columns that mark "
                          f"each: {known})")

    def rows(self) -> Iterator[tuple[str, str, Any]]:
        for split, ds in self._datasets():
            in_split = f" of split {split!r}" if split is not None else ""
            self._layout = self._pick_layout(list(ds.column_names), f"the columns{in_split}")
            for i, row in enumerate(ds):
                yield (f"{split}/{i}" if split is not None else str(i)), f"row {i}{in_split}", row

    def convert(self, row: dict[str, Any]) -> Conversation:
        layout = self._layout
        if layout == "sharegpt":
            return sharegpt_conversation(row, self.opts.role_map)
        if layout == "openai_messages":
            return openai_conversation(row, self.opts.role_map)
        if layout == "dolly":
            return dolly_conversation(row)
        return alpaca_conversation(row)

