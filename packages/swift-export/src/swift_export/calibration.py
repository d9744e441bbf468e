"""Calibration rows for gptq and awq: --dataset through swift-data's loader, converter and template,
exactly as training would encode it, so any dataset form and any template works.

The rows are whole conversations (prompt and answer): quantization should see the activations the
model produces on the text it will serve, answers included.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

from swift_args import ArgumentError


def calibration_rows(args: Any, tokenizer: Any) -> list[list[int]]:
    """The token ids of the first --quant_n_samples rows of --dataset, each at most --max_length long."""
    from swift_data.pipeline import prepare_datasets

    options = copy.copy(args)
    options.split_dataset_ratio = 0.0  # every row may calibrate; nothing is held out for validation
    data = prepare_datasets(options, tokenizer, max_length=args.max_length)
    count = min(len(data.train), args.quant_n_samples)
    if count == 0:
        raise ArgumentError(f"--dataset {' '.join(args.dataset)}: no row is left to calibrate on (every row was "
                            f"skipped, see above); pass rows that fit --max_length {args.max_length}, or "
                            "--truncation_strategy right")
    if count < args.quant_n_samples:
        print(f"swift: calibrating on all {count} rows of --dataset (fewer than --quant_n_samples "
              f"{args.quant_n_samples})", file=sys.stderr)
    return [list(data.train[i]["input_ids"]) for i in range(count)]


def as_calibration_dataset(rows: list[list[int]]) -> Any:
    """The rows as the `datasets.Dataset` llm-compressor's oneshot reads (input_ids + attention_mask)."""
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(row) for row in rows]})
