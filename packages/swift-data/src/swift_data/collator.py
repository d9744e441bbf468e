"""Batches for training: padded (attention_mask) or packed (one flat row with position_ids).

A packed batch has no attention_mask on purpose: transformers then separates the samples by
their position_ids (with use_cache=False), for sdpa, flex and flash attention alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from swift_data.templates.encode import IGNORE


@dataclass
class Collator:
    pad_token_id: int
    padding_side: str = "right"
    packing: bool = False

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        # Only packed rows are flattened; validation samples (never packed) are padded.
        return self.flatten(samples) if self.packing and "position_ids" in samples[0] else self.pad(samples)

    def flatten(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {
            "input_ids": np.concatenate([np.asarray(s["input_ids"]) for s in samples]),
            "labels": np.concatenate([np.asarray(s["labels"]) for s in samples]),
            "position_ids": np.concatenate(
                [np.asarray(s.get("position_ids", np.arange(len(s["input_ids"])))) for s in samples]
            ),
        }
        if any("loss_scale" in s for s in samples):
            batch["loss_scale"] = np.concatenate([_loss_scale(s) for s in samples])
        return {k: torch.as_tensor(v)[None] for k, v in batch.items()}

    def pad(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if np.ndim(samples[0]["labels"]) == 0:  # sequence classification: one class per sample
            batch = self.pad([{"input_ids": s["input_ids"], "labels": s["input_ids"]} for s in samples])
            batch["labels"] = torch.as_tensor(np.array([s["labels"] for s in samples]))
            return batch
        width = max(len(s["input_ids"]) for s in samples)
        fields = {"input_ids": self.pad_token_id, "labels": IGNORE, "attention_mask": 0}
        weighted = any("loss_scale" in s for s in samples)
        out: dict[str, list] = {name: [] for name in fields}
        if weighted:
            out["loss_scale"] = []
        for sample in samples:
            n = len(sample["input_ids"])
            values = {"input_ids": sample["input_ids"], "labels": sample["labels"], "attention_mask": [1] * n}
            for name, fill in fields.items():
                out[name].append(self._pad_row(np.asarray(values[name]), width, fill))
            if weighted:
                out["loss_scale"].append(self._pad_row(_loss_scale(sample), width, 0.0))
        return {name: torch.as_tensor(np.stack(rows)) for name, rows in out.items()}

    def _pad_row(self, row: np.ndarray, width: int, fill: Any) -> np.ndarray:
        padding = np.full(width - len(row), fill, dtype=row.dtype)
        return np.concatenate([padding, row] if self.padding_side == "left" else [row, padding])


def _loss_scale(sample: dict[str, Any]) -> np.ndarray:
    if "loss_scale" in sample:
        return np.asarray(sample["loss_scale"], dtype=np.float32)
    return (np.asarray(sample["labels"]) != IGNORE).astype(np.float32)
