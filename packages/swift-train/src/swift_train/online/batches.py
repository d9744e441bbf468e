"""How prompts reach the online trainers, and the [prompt | completion] rows their losses read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


class GroupSampler(torch.utils.data.Sampler):
    """Prompt indices, each `group` times in a row, in windows that are each repeated `repeats` times.

    A window is one optimizer step's prompts over every process (`window` completions). GRPO samples
    one window's completions once and trains on them `num_iterations` times: the repeated windows keep
    transformers' step and epoch counts (and the batches skipped on resume) right, and the trainer
    reuses the completions it buffered instead of sampling again.
    """

    def __init__(self, size: int, group: int, window: int, repeats: int, seed: int):
        self.size, self.group, self.window, self.repeats, self.seed = size, group, window, repeats, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _prompts_per_window(self) -> int:
        return self.window // self.group

    def __len__(self) -> int:
        return (self.size // self._prompts_per_window()) * self.window * self.repeats

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        per_window = self._prompts_per_window()
        for start in range(0, len(order) - per_window + 1, per_window):
            window = [index for index in order[start:start + per_window] for _ in range(self.group)]
            for _ in range(self.repeats):
                yield from window


def collate(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The samples as they are: prompts are laid out with their completions once those exist."""
    return samples


@dataclass
class Sequences:
    """Prompts (left-padded) followed by completions (right-padded), one row each."""

    input_ids: torch.Tensor  # [n, P + C]
    attention_mask: torch.Tensor  # [n, P + C]
    position_ids: torch.Tensor  # [n, P + C]: counted from each row's first real token
    completion_ids: torch.Tensor  # [n, C]
    completion_mask: torch.Tensor  # [n, C] float: 1 on real completion tokens

    @property
    def completion_length(self) -> int:
        return self.completion_ids.shape[1]

    def to(self, device: torch.device) -> Sequences:
        return Sequences(*(t.to(device) for t in (self.input_ids, self.attention_mask, self.position_ids,
                                                  self.completion_ids, self.completion_mask)))

    def rows(self, index: slice | torch.Tensor) -> Sequences:
        return Sequences(self.input_ids[index], self.attention_mask[index], self.position_ids[index],
                         self.completion_ids[index], self.completion_mask[index])


def lay_out(prompts: list[list[int]], completions: list[list[int]], pad_id: int) -> Sequences:
    width = max(len(p) for p in prompts)
    length = max(1, max(len(c) for c in completions))
    rows, masks, completion_rows, completion_masks = [], [], [], []
    for prompt, completion in zip(prompts, completions):
        left, right = width - len(prompt), length - len(completion)
        rows.append([pad_id] * left + list(prompt) + list(completion) + [pad_id] * right)
        masks.append([0] * left + [1] * (len(prompt) + len(completion)) + [0] * right)
        completion_rows.append(list(completion) + [pad_id] * right)
        completion_masks.append([1.0] * len(completion) + [0.0] * right)
    attention = torch.tensor(masks)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    return Sequences(torch.tensor(rows), attention, positions, torch.tensor(completion_rows),
                     torch.tensor(completion_masks))


def token_logps(model: Any, sequences: Sequences, temperature: float = 1.0, chunk_rows: int = 4) -> torch.Tensor:
    """Each completion token's log-probability under `model` [n, C], the logits of a few rows at a time.

    The logits are divided by the sampling temperature, as the rollout sampled from them (TRL does the
    same), so the ratio to the sampling policy starts at 1.
    """
    outputs = model(input_ids=sequences.input_ids, attention_mask=sequences.attention_mask,
                    position_ids=sequences.position_ids, use_cache=False,
                    logits_to_keep=sequences.completion_length + 1)
    logits = outputs.logits[:, :-1]  # position i predicts completion token i
    scale = temperature if temperature and temperature > 0 else 1.0
    parts = []
    for start in range(0, logits.shape[0], chunk_rows):
        block = logits[start:start + chunk_rows].float() / scale
        targets = sequences.completion_ids[start:start + chunk_rows]
        parts.append(torch.gather(block.log_softmax(-1), -1, targets[..., None]).squeeze(-1))
    return torch.cat(parts)


BUFFER_FILE = "rollout_buffer_{rank}.pt"  # rollouts still to be trained on, saved with a checkpoint


def save_buffer(buffer: dict[int, dict[str, Any]], directory: str, rank: int) -> None:
    """The rollouts of an unfinished batch (later epochs or iterations train on them again), for exact resume."""
    if buffer:
        saved = {slot: {k: vars(v) if isinstance(v, Sequences) else v for k, v in batch.items()}
                 for slot, batch in buffer.items()}
        torch.save(saved, Path(directory) / BUFFER_FILE.format(rank=rank))


def load_buffer(directory: str | None, rank: int, device: Any) -> dict[int, dict[str, Any]]:
    path = Path(directory or "") / BUFFER_FILE.format(rank=rank)
    if directory is None or not path.is_file():
        return {}
    saved = torch.load(path, map_location=device, weights_only=True)
    return {int(slot): {k: Sequences(**v) if k == "sequences" else v for k, v in batch.items()}
            for slot, batch in saved.items()}
