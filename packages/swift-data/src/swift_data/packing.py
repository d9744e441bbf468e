"""Packing: several samples per row, each isolated from the others by its own position_ids.

Rows are filled first-fit-decreasing up to max_length. Each sample's first label is ignored,
because unpacked training never predicts a sample's first token either (labels are shifted);
so the packed loss is exactly the sum of the unpacked losses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from swift_data.templates.encode import IGNORE


def pack_bins(lengths: list[int], max_length: int) -> list[list[int]]:
    """Sample indices per packed row (first-fit decreasing; samples longer than max_length alone)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    free: list[int] = []
    for index in order:
        length = lengths[index]
        slot = next((b for b, room in enumerate(free) if room >= length), None)
        if slot is None:
            bins.append([index])
            free.append(max_length - length)
        else:
            bins[slot].append(index)
            free[slot] -= length
    return bins


def pack_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """One packed row from several encoded samples."""
    input_ids, labels, position_ids, loss_scale = [], [], [], []
    weighted = any("loss_scale" in s for s in samples)
    for sample in samples:
        n = len(sample["input_ids"])
        input_ids.append(np.asarray(sample["input_ids"]))
        sample_labels = np.asarray(sample["labels"]).copy()
        sample_labels[0] = IGNORE
        labels.append(sample_labels)
        position_ids.append(np.arange(n))
        if weighted:
            scale = np.asarray(sample.get("loss_scale", (sample_labels != IGNORE).astype(float)), dtype=float)
            loss_scale.append(scale)
    packed = {
        "input_ids": np.concatenate(input_ids),
        "labels": np.concatenate(labels),
        "position_ids": np.concatenate(position_ids),
    }
    if weighted:
        packed["loss_scale"] = np.concatenate(loss_scale)
    return packed


def pack_dataset(samples: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    lengths = [len(s["input_ids"]) for s in samples]
    return [pack_samples([samples[i] for i in sorted(b)]) for b in pack_bins(lengths, max_length)]
