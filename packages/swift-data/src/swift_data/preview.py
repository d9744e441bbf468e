"""What the model will be trained on: decoded samples with the trained tokens marked.

Used by `swift sft ... --show_sample N` (and `swift pt`, and `swift rlhf`, which shows each answer of a pair).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import numpy as np

from swift_data.models import load_tokenizer, model_for_args
from swift_data.templates.encode import IGNORE

_GREEN, _RESET = "\x1b[32m", "\x1b[0m"


def _pieces(sample: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(ids, labels, weights) per original sample; a packed row holds several."""
    ids, labels = np.asarray(sample["input_ids"]), np.asarray(sample["labels"])
    weights = np.asarray(sample.get("loss_scale", (labels != IGNORE).astype(float)))
    starts = np.flatnonzero(np.asarray(sample.get("position_ids", [0] + [1] * (len(ids) - 1))) == 0).tolist()
    bounds = [*starts, len(ids)]
    return [(ids[a:b], labels[a:b], weights[a:b]) for a, b in zip(bounds, bounds[1:])]


def format_sample(sample: dict[str, Any], tokenizer: Any, color: bool = False) -> str:
    """The sample's text with trained runs in green (color) or between [[ and ]]; weights != 1 shown."""
    parts = []
    for ids, labels, weights in _pieces(sample):
        keys = [float(w) if label != IGNORE else None for label, w in zip(labels.tolist(), weights.tolist())]
        text, begin = [], 0
        # Decode whole runs, not single tokens: a character may span several byte-level tokens.
        for end in range(1, len(keys) + 1):
            if end == len(keys) or keys[end] != keys[begin]:
                piece = tokenizer.decode(ids[begin:end].tolist())
                text.append(piece if keys[begin] is None else _mark(piece, keys[begin], color))
                begin = end
        parts.append("".join(text))
    return "\n--- packed with ---\n".join(parts)


def _mark(text: str, weight: float | None, color: bool) -> str:
    label = "" if weight in (None, 1.0) else f"x{weight:g}:"
    return f"{_GREEN}{label}{text}{_RESET}" if color else f"[[{label}{text}]]"


def _views(sample: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The sequences a sample trains on, titled: a preference pair's two answers, or the sample itself."""
    if "chosen_input_ids" not in sample:
        title = "" if "desirable" not in sample else " desirable" if sample["desirable"] else " undesirable"
        return [(title, sample)]
    views = []
    for side in ("chosen", "rejected"):
        ids = np.asarray(sample[f"{side}_input_ids"])
        labels = sample.get(f"{side}_labels", np.full(len(ids), IGNORE))  # rm scores the whole conversation
        views.append((f" {side}", {"input_ids": ids, "labels": labels}))
    return views


def show_samples(args: Any, count: int, out: TextIO | None = None) -> int:
    """Run the data pipeline for `args` and print the first `count` training samples."""
    from swift_data.pipeline import prepare_datasets

    out = out or sys.stdout
    model_dir, info = model_for_args(args)
    tokenizer = load_tokenizer(model_dir)
    data = prepare_datasets(args, tokenizer, max_length=info.max_model_len)
    color = out.isatty()
    shown = 0
    for index, whole in enumerate(data.train):
        if shown >= count:
            break
        for title, sample in _views(whole):
            n_trained = int((np.asarray(sample["labels"]) != IGNORE).sum())
            out.write(f"=== sample {index}{title} ({len(sample['input_ids'])} tokens, {n_trained} trained) ===\n")
            out.write(format_sample(sample, tokenizer, color) + "\n")
        shown += 1
    total = "streamed" if not hasattr(data.train, "__len__") else f"{len(data.train)} training"
    val = len(data.val) if data.val is not None else 0
    template = f"--template {args.template}" if args.template else "the model's own chat template"
    out.write(f"=== {total} samples, {val} validation; {template}; [[...]] is trained ===\n")
    return 0
