"""Batches of preference samples (swift_data.preference): every answer is one sequence of the batch.

A pair batch of B samples holds 2B sequences, the chosen answers first, then the rejected ones, so one
forward pass scores both (and the reference model's pass, too). Laid out either padded (one row per
sequence, attention_mask) or, where varlen attention runs, flattened into a single row with
position_ids restarting at 0 per sequence: no compute is spent on padding.

A KTO batch holds each row's answer with its desirable flag, then the mismatched sequences of the
KL estimate: answer i's prompt followed by the next answer given to another prompt (prompt tokens
and answer tokens as encoded, so nothing is re-tokenized).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from swift_data.collator import Collator

IGNORE = -100


@dataclass
class Sequence:
    input_ids: np.ndarray
    labels: np.ndarray


@dataclass
class PreferenceCollator:
    pad_token_id: int
    rlhf_type: str
    flatten: bool = False  # one row with position_ids (varlen attention) instead of padded rows

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if self.rlhf_type == "rm":
            return self._scores(samples)
        if self.rlhf_type == "kto":
            return self._kto(samples)
        chosen = [Sequence(s["chosen_input_ids"], s["chosen_labels"]) for s in samples]
        rejected = [Sequence(s["rejected_input_ids"], s["rejected_labels"]) for s in samples]
        return self.lay_out(chosen + rejected)

    def _kto(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        answers, desirable = [], []
        for s in samples:
            if "chosen_input_ids" in s:  # a paired row: its chosen answer is desirable, its rejected one not
                answers += [Sequence(s["chosen_input_ids"], s["chosen_labels"]),
                            Sequence(s["rejected_input_ids"], s["rejected_labels"])]
                desirable += [True, False]
            else:
                answers.append(Sequence(s["input_ids"], s["labels"]))
                desirable.append(bool(s["desirable"]))
        mismatched = [_join(_prompt(a), _answer(_other_prompts_answer(answers, i))) for i, a in enumerate(answers)]
        batch = self.lay_out(answers + mismatched)
        batch["desirable"] = torch.tensor(desirable)
        return batch

    def _scores(self, samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Reward model: the chosen then the rejected conversations, right-padded (the head reads the last token)."""
        rows = [s["chosen_input_ids"] for s in samples] + [s["rejected_input_ids"] for s in samples]
        batch = self._rows.pad([{"input_ids": row, "labels": row} for row in rows])
        del batch["labels"]  # the score has no token targets
        return batch

    def lay_out(self, sequences: list[Sequence]) -> dict[str, torch.Tensor]:
        """One flattened row with position_ids, or right-padded rows with an attention_mask (swift-data's collator)."""
        rows = [{"input_ids": s.input_ids, "labels": s.labels} for s in sequences]
        return self._rows.flatten(rows) if self.flatten else self._rows.pad(rows)

    @property
    def _rows(self) -> Collator:
        return Collator(self.pad_token_id, padding_side="right")


def sequence_index(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Which sequence each position belongs to ([rows, length]), and how many sequences the batch holds."""
    position_ids = batch.get("position_ids")
    if position_ids is not None and batch.get("attention_mask") is None:  # flattened: a sequence starts at 0
        starts = (position_ids == 0).long()
        index = starts.cumsum(-1) - 1
        return index, int(starts.sum())
    rows, length = batch["input_ids"].shape
    return torch.arange(rows, device=batch["input_ids"].device)[:, None].expand(rows, length), rows


def _other_prompts_answer(answers: list[Sequence], i: int) -> Sequence:
    """The next answer in the batch (cyclically) given to another prompt: a paired row's two answers share a
    prompt, and that pair would be a matched sequence, not a mismatched one. Answer i+1 if every prompt is the same."""
    prompt = _prompt(answers[i]).input_ids
    for step in range(1, len(answers)):
        other = answers[(i + step) % len(answers)]
        if not np.array_equal(_prompt(other).input_ids, prompt):
            return other
    return answers[(i + 1) % len(answers)]


def _first_trained(s: Sequence) -> int:
    trained = np.flatnonzero(s.labels != IGNORE)
    return int(trained[0]) if len(trained) else len(s.labels)


def _prompt(s: Sequence) -> Sequence:
    cut = _first_trained(s)
    return Sequence(s.input_ids[:cut], s.labels[:cut])


def _answer(s: Sequence) -> Sequence:
    cut = _first_trained(s)
    return Sequence(s.input_ids[cut:], s.labels[cut:])


def _join(a: Sequence, b: Sequence) -> Sequence:
    return Sequence(np.concatenate([a.input_ids, b.input_ids]), np.concatenate([a.labels, b.labels]))
