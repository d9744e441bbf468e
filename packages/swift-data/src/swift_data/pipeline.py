"""The whole data path: rows -> conversations -> encoded samples (-> packed rows), counted.

Modes, as the reference names them:
  default          everything is encoded up front, with `dataset_num_proc` worker processes
  lazy_tokenize    rows are converted up front, tokenized when the trainer asks for them
  streaming        nothing is loaded whole: rows are read, converted and tokenized on the fly
  enable_cache     encoded results are kept on disk, keyed by a hash of everything that shapes them
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from swift_args.fields import pick_fields
from swift_args.files import apply_umask

from swift_data.datasets.builtin import find_builtin_dataset
from swift_data.datasets.load import DataOptions, LoadedRows, load_dataset_rows
from swift_data.datasets.spec import parse_dataset_spec
from swift_data.datasets.readers import RawRow
from swift_data.models.cache import cache_root
from swift_data.packing import pack_dataset
from swift_data.preference import preference_sample, sample_length
from swift_data.prompts import ONLINE_RL, prompt_sample
from swift_data.preprocess.formats import rename_columns, to_conversation
from swift_data.skips import WRONG_TYPES, SkipCounter, SkippedRow
from swift_data.templates.encode import Encoder, EncoderOptions

CHUNK_ROWS = 512


@dataclass
class PipelineOptions:
    dataset_num_proc: int = 1
    lazy_tokenize: bool = False
    streaming: bool = False
    enable_cache: bool = False
    packing: bool = False
    strict: bool = False
    remove_unused_columns: bool = True
    columns: dict[str, str] | None = None

    @classmethod
    def from_args(cls, args: Any) -> PipelineOptions:
        values = pick_fields(cls, args)
        values["lazy_tokenize"] = bool(values.get("lazy_tokenize"))
        return cls(**values)


# -- one row --------------------------------------------------------------------------------


def encode_row(row: RawRow, encoder: Encoder, columns: dict[str, str] | None, keep_row: bool,
               require_response: bool = True) -> dict[str, Any]:
    """RawRow -> encoded sample; raises SkippedRow (counted) or ArgumentError (fatal)."""
    if row.error is not None:
        raise row.error
    assert row.data is not None
    data = rename_columns(row.data, columns)
    if encoder.options.rlhf_type in ONLINE_RL:  # grpo, ppo: the prompt alone; the policy writes the answer
        return prompt_sample(to_conversation(data, row.where, require_response=False), encoder, data)
    if encoder.options.rlhf_type is not None:
        return preference_sample(to_conversation(data, row.where, require_response), encoder, encoder.options.rlhf_type)
    if encoder.classifies:
        return classification_sample(data, row.where, encoder)
    conversation = to_conversation(data, row.where, require_response)
    sample = encoder.encode(conversation)
    encoded: dict[str, Any] = {k: np.asarray(v, dtype=np.float32 if k == "loss_scale" else np.int64) for k, v in sample.items()}
    if keep_row:
        encoded["row"] = row.data
    return encoded


def classification_sample(data: dict[str, Any], where: str, encoder: Encoder) -> dict[str, Any]:
    """--task_type seq_cls: the row's messages (or query) and its `label` column, a class index."""
    label = data.get("label")
    if isinstance(label, str) and label.strip().lstrip("-").isdigit():
        label = int(label)
    classes = encoder.options.num_labels
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < (classes or 0):
        raise SkippedRow(WRONG_TYPES, f"label must be a class index 0..{(classes or 1) - 1} (--num_labels {classes}), "
                                      f"got {label!r}")
    rest = {k: v for k, v in data.items() if k != "label"}
    ids = encoder.classification_ids(to_conversation(rest, where, require_response=False))
    return {"input_ids": np.asarray(ids, dtype=np.int64), "labels": np.asarray(label, dtype=np.int64)}


# -- eager encoding with worker processes ---------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(encoder: Encoder, columns: dict[str, str] | None, keep_row: bool) -> None:
    _worker.update(encoder=encoder, columns=columns, keep_row=keep_row)


def _encode_chunk(rows: list[RawRow]) -> list[tuple[str, Any]]:
    """("ok", sample) or ("skip", (where, SkippedRow)) per row, in order."""
    results: list[tuple[str, Any]] = []
    for row in rows:
        try:
            results.append(("ok", encode_row(row, _worker["encoder"], _worker["columns"], _worker["keep_row"])))
        except SkippedRow as skipped:
            results.append(("skip", (row.where, skipped)))
    return results


def encode_rows(rows: list[RawRow], encoder: Encoder, options: PipelineOptions, skips: SkipCounter) -> list[dict[str, Any]]:
    keep_row = not options.remove_unused_columns
    chunks = [rows[i : i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)]
    if options.dataset_num_proc > 1 and len(chunks) > 1:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the Rust pool must not be forked
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with context.Pool(options.dataset_num_proc, _init_worker, (encoder, options.columns, keep_row)) as pool:
            results = pool.imap(_encode_chunk, chunks)
            return _collect(results, skips)
    _init_worker(encoder, options.columns, keep_row)
    return _collect(map(_encode_chunk, chunks), skips)


def _collect(chunk_results: Iterator[list[tuple[str, Any]]], skips: SkipCounter) -> list[dict[str, Any]]:
    samples = []
    for results in chunk_results:
        for status, value in results:
            if status == "ok":
                samples.append(value)
            else:
                skips.skip(*value)
    return samples


# -- datasets the trainer consumes ----------------------------------------------------------


class EncodedDataset(torch.utils.data.Dataset):
    """Samples already encoded (or packed)."""

    def __init__(self, samples: list[dict[str, Any]]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.samples[index]

    @property
    def lengths(self) -> list[int]:
        return [sample_length(s) for s in self.samples]


class LazyDataset(torch.utils.data.Dataset):
    """Rows tokenized on access; an unusable row is counted and the next usable one is returned."""

    def __init__(self, rows: list[RawRow], encoder: Encoder, options: PipelineOptions, skips: SkipCounter):
        self.rows, self.encoder, self.options, self.skips = rows, encoder, options, skips

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        for offset in range(len(self.rows)):
            row = self.rows[(index + offset) % len(self.rows)]
            try:
                return encode_row(row, self.encoder, self.options.columns, not self.options.remove_unused_columns)
            except SkippedRow as skipped:
                self.skips.skip(row.where, skipped)
        raise RuntimeError("no usable row in the dataset")

    def unusable(self) -> SkipCounter | None:
        """None once one row encodes; when none does, why each was skipped (counted apart from training's)."""
        seen = SkipCounter()
        for row in self.rows:
            try:
                encode_row(row, self.encoder, self.options.columns, keep_row=False)
                return None
            except SkippedRow as skipped:
                seen.skip(row.where, skipped)
        return seen


class StreamingDataset(torch.utils.data.IterableDataset):
    """Rows read, converted and tokenized as the trainer iterates; never loaded whole."""

    def __init__(self, rows: Iterator[RawRow], encoder: Encoder, options: PipelineOptions, skips: SkipCounter):
        self.rows, self.encoder, self.options, self.skips = rows, encoder, options, skips

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            try:
                yield encode_row(row, self.encoder, self.options.columns, not self.options.remove_unused_columns)
            except SkippedRow as skipped:
                self.skips.skip(row.where, skipped)


# -- the cache ------------------------------------------------------------------------------


def cache_key(options: DataOptions, encoder: Encoder, pipeline: PipelineOptions, max_length: int | None) -> str:
    """A hash of everything that shapes the encoded data: files' contents, tokenizer, template, arguments."""
    digest = hashlib.sha256()
    for text in [*options.dataset, *options.val_dataset]:
        digest.update(text.encode())
        for file in _data_files(parse_dataset_spec(text).name):
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    tokenizer = encoder.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    digest.update(backend.to_str().encode() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    digest.update(encoder.chat_template.encode())
    settings = {"data": options.__dict__, "encoder": encoder.options.__dict__, "system": encoder.system,
                "pipeline": {**pipeline.__dict__, "dataset_num_proc": None}, "max_length": max_length,
                "swift_data": metadata.version("swift-data")}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


def _data_files(name: str) -> list[Path]:
    """The local files behind a dataset name (none for hub ids: their revision is the hub's business)."""
    path = Path(name).expanduser()
    builtin = find_builtin_dataset(name)
    if builtin is not None and not path.exists():
        return [builtin.path()]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path] if path.is_file() else []


def _cached(path: Path) -> Any | None:
    if path.is_file():
        with open(path, "rb") as f:
            return pickle.load(f)
    return None


def _store(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    apply_umask(tmp)  # mkstemp makes it 0600; whoever shares the cache directory must read it too
    os.replace(tmp, path)


# -- the entry point ------------------------------------------------------------------------


@dataclass
class PreparedData:
    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset | None
    skips: SkipCounter = field(default_factory=SkipCounter)
    from_cache: bool = False


def prepare_datasets(args: Any, tokenizer: Any, max_length: int | None = None, report: bool = True,
                     rows: LoadedRows | None = None) -> PreparedData:
    """Load, convert and encode --dataset / --val_dataset for training.

    Args:
        args: any command's arguments (data, template and pipeline fields are read by name).
        tokenizer: the model's tokenizer (a fast tokenizer: offsets are needed for the loss mask).
        max_length: the model's maximum, used when --max_length is not given.
        report: print the skipped-row counts once preprocessing is done (for lazy and streaming
            data that is when the trainer has consumed it; the caller prints `skips.report()` then).
        rows: the rows `load_dataset_rows` already read (training checks its data before it loads
            a tokenizer); read here when None.
    """
    data = _prepare(args, tokenizer, max_length, rows)
    if report and isinstance(data.train, EncodedDataset):
        data.skips.print_report()
    return data


def _prepare(args: Any, tokenizer: Any, max_length: int | None, rows: LoadedRows | None) -> PreparedData:
    data_options = DataOptions.from_args(args)
    pipeline = PipelineOptions.from_args(args)
    encoder_options = EncoderOptions.from_args(args)
    if encoder_options.max_length is None:
        encoder_options.max_length = max_length
    encoder = Encoder(tokenizer, encoder_options)
    skips = SkipCounter(strict=pipeline.strict)
    loaded = rows if rows is not None else load_dataset_rows(data_options)
    if pipeline.streaming:
        train = StreamingDataset(iter(loaded.train), encoder, pipeline, skips)
        val = EncodedDataset(encode_rows(loaded.val, encoder, pipeline, skips)) if loaded.val else None
        return PreparedData(train, val, skips)
    if pipeline.lazy_tokenize:
        train = LazyDataset(list(loaded.train), encoder, pipeline, skips)
        return PreparedData(train, LazyDataset(loaded.val, encoder, pipeline, skips) if loaded.val else None, skips)
    cache_file = None
    if pipeline.enable_cache:
        key = cache_key(data_options, encoder, pipeline, encoder_options.max_length)
        cache_file = cache_root() / "datasets" / f"{key}.pkl"
        cached = _cached(cache_file)
        if cached is not None:
            skips.merge(cached["skips"])
            return PreparedData(EncodedDataset(cached["train"]), EncodedDataset(cached["val"]) if cached["val"] else None,
                                skips, from_cache=True)
    train_samples = encode_rows(list(loaded.train), encoder, pipeline, skips)
    val_samples = encode_rows(loaded.val, encoder, pipeline, skips)
    if pipeline.packing:
        if encoder_options.max_length is None:
            from swift_args import ArgumentError

            raise ArgumentError("--packing true needs --max_length (or a model whose maximum length is known)")
        train_samples = pack_dataset(train_samples, encoder_options.max_length)
    if cache_file is not None:
        _store(cache_file, {"train": train_samples, "val": val_samples, "skips": skips})
    return PreparedData(EncodedDataset(train_samples), EncodedDataset(val_samples) if val_samples else None, skips)
