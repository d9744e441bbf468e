"""--dataset / --val_dataset -> rows: local files and folders, built-ins, hub ids; #N; the split."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from swift_args import ArgumentError
from swift_args.fields import pick_fields

from swift_data.datasets.builtin import BUILTIN_DATASETS, find_builtin_dataset, read_builtin
from swift_data.datasets.hub import read_hub_dataset
from swift_data.datasets.readers import SUFFIXES, RawRow, check_subsets, files_in_folder, read_file
from swift_data.datasets.registry import RegisteredDataset, find_registered, register_dataset_info
from swift_data.datasets.sampling import sample_indices
from swift_data.datasets.spec import DatasetSpec, parse_dataset_spec


@dataclass(frozen=True)
class DataOptions:
    """The data arguments this module needs (from any command's arguments)."""

    dataset: list[str] = field(default_factory=list)
    val_dataset: list[str] = field(default_factory=list)
    split_dataset_ratio: float = 0.01
    data_seed: int = 42
    streaming: bool = False
    use_hf: bool = False
    download_mode: str = "reuse_dataset_if_exists"
    columns: dict[str, str] | None = None
    model_name: list[str] | None = None
    model_author: list[str] | None = None
    custom_dataset_info: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Any) -> DataOptions:
        return cls(**pick_fields(cls, args))


def iter_spec_rows(spec: DatasetSpec, options: DataOptions) -> Iterator[RawRow]:
    """All rows of one --dataset entry, before sampling; an entry with no rows at all is an error."""
    empty = True
    for row in _spec_rows(spec, options):
        empty = False
        yield row
    if empty:
        raise ArgumentError(
            f"--dataset {spec.label}: it has no rows "
            "(an empty file, blank lines only, or a CSV header alone); check that it is the dataset you meant"
        )


def _spec_rows(spec: DatasetSpec, options: DataOptions, registry: bool = True) -> Iterator[RawRow]:
    registered = find_registered(spec.name) if spec.hub is None and registry else None
    if registered is not None:
        yield from _registered_rows(registered, spec, options)
        return
    path = Path(spec.name).expanduser()
    # `all` is every subset; only hub datasets cannot be checked offline.
    asked = [s for s in spec.subsets if s != "all"]
    if spec.hub is None and path.is_file():
        check_subsets(str(path), asked, ("default",))
        yield from read_file(path)
    elif spec.hub is None and path.is_dir():
        for file in files_in_folder(path, spec.subsets):
            yield from read_file(file)
    elif spec.hub is None and (builtin := find_builtin_dataset(spec.name)) is not None:
        check_subsets(builtin.name, asked, builtin.subsets)
        yield from read_builtin(builtin, options.model_name, options.model_author)
    elif spec.hub is not None or _looks_like_hub_id(spec.name):
        yield from read_hub_dataset(spec, options.use_hf, options.streaming, options.download_mode)
    else:
        names = ", ".join(BUILTIN_DATASETS)
        raise ArgumentError(
            f"--dataset {spec.name}: no such file or folder, not a built-in dataset ({names}) and not a hub id "
            f"(org/name); local files may be {', '.join(SUFFIXES)}"
        )


def _registered_rows(dataset: RegisteredDataset, spec: DatasetSpec, options: DataOptions) -> Iterator[RawRow]:
    """A --custom_dataset_info entry's rows, with its column renames applied."""
    from swift_data.preprocess.formats import rename_columns

    if dataset.path is not None:
        where = DatasetSpec(str(dataset.path), None, spec.subsets, spec.sample)
    else:
        on_hf = bool(dataset.hf_id) and (options.use_hf or not dataset.hub_id)
        where = DatasetSpec(dataset.hf_id if on_hf else dataset.hub_id, "HF" if on_hf else "MS", spec.subsets, spec.sample)
    for row in _spec_rows(where, options, registry=False):
        yield row if row.data is None else RawRow(row.where, rename_columns(row.data, dataset.columns), row.error)


def _looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and Path(name).suffix.lower() not in SUFFIXES


def load_rows(spec: DatasetSpec, options: DataOptions) -> list[RawRow]:
    rows = list(iter_spec_rows(spec, options))
    if spec.sample is None:
        return rows
    rng = np.random.default_rng(options.data_seed)
    return [rows[i] for i in sample_indices(len(rows), spec.sample, rng)]


def load_and_split(spec: DatasetSpec, options: DataOptions) -> tuple[list[RawRow], list[RawRow]]:
    """Rows of one dataset split into (train, validation) before any row is repeated.

    With #N above the dataset size rows are repeated, and a repeated row must not end up on both
    sides; so the distinct rows are split first and only the training side is repeated.
    """
    rows = list(iter_spec_rows(spec, options))
    rng = np.random.default_rng(options.data_seed)
    if spec.sample is not None and spec.sample <= len(rows):
        rows = [rows[i] for i in sample_indices(len(rows), spec.sample, rng)]
        return split_rows(rows, options.split_dataset_ratio, options.data_seed)
    train, val = split_rows(rows, options.split_dataset_ratio, options.data_seed)
    if spec.sample is not None:
        train = [train[i] for i in sample_indices(len(train), spec.sample - len(val), rng)]
    return train, val


def split_rows(rows: list[RawRow], ratio: float, seed: int) -> tuple[list[RawRow], list[RawRow]]:
    """Hold out `ratio` of the rows (at least one when ratio > 0 and there are two or more)."""
    if ratio <= 0 or len(rows) < 2:
        return rows, []
    order = np.random.default_rng(seed).permutation(len(rows))
    n_val = min(len(rows) - 1, max(1, int(len(rows) * ratio)))
    val_idx = set(order[:n_val].tolist())
    return [r for i, r in enumerate(rows) if i not in val_idx], [rows[i] for i in sorted(val_idx)]


@dataclass
class LoadedRows:
    train: list[RawRow] | Iterator[RawRow]
    val: list[RawRow]


def load_dataset_rows(options: DataOptions) -> LoadedRows:
    """Every --dataset entry mixed into one training set, and the validation rows.

    Each dataset is split on its own (so a small dataset mixed with a large one is still in the
    validation set), unless --val_dataset is given.
    """
    register_dataset_info(options.custom_dataset_info)  # before any name is looked up
    specs = [parse_dataset_spec(s) for s in options.dataset]
    val_specs = [parse_dataset_spec(s) for s in options.val_dataset]
    if options.streaming:
        return LoadedRows(_stream(specs, options), [r for s in val_specs for r in load_rows(s, options)])
    train: list[RawRow] = []
    val: list[RawRow] = []
    for spec in specs:
        if val_specs:
            train += load_rows(spec, options)
        else:
            kept, held_out = load_and_split(spec, options)
            train += kept
            val += held_out
    for spec in val_specs:
        val += load_rows(spec, options)
    return LoadedRows(train, val)


def _stream(specs: list[DatasetSpec], options: DataOptions) -> Iterator[RawRow]:
    """Streaming: datasets are read lazily one after another; #N takes the first N rows."""
    for spec in specs:
        rows = iter_spec_rows(spec, options)
        yield from (itertools.islice(rows, spec.sample) if spec.sample is not None else rows)
