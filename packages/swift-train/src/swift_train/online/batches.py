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


def token_logps(model: Any, sequences: Sequences, temperature: float = 1.0, head: Any = None) -> torch.Tensor:
    """Each completion token's log-probability under `model` [n, C] (0 on padding).

    The logits are divided by the sampling temperature, as the rollout sampled from them (TRL does the
    same), so the ratio to the sampling policy starts at 1. With `head` (swift_train.loss.find_head's),
    lm_head runs on the completion positions a chunk at a time under activation checkpointing, as the
    supervised loss does: the [n, C, vocabulary] logits never exist; without, from the model's logits.
    """
    scale = temperature if temperature and temperature > 0 else 1.0
    inputs = {"input_ids": sequences.input_ids, "attention_mask": sequences.attention_mask,
              "position_ids": sequences.position_ids}
    length = sequences.completion_length
    if head is None:
        logits = model(**inputs, use_cache=False, logits_to_keep=length + 1).logits[:, :-1]
        return _chunked(lambda block: block, logits, sequences, scale, rows=4)
    from swift_train.loss import hidden_states

    hidden, _ = hidden_states(model, head, inputs)
    # A quarter of the supervised loss's chunk: here a chunk's logits exist three times over at the peak (the
    # head's output, its float32 copy, cross-entropy's log-softmax), in the reference pass, the old-policy pass
    # and the policy's backward alike.
    chunk = max(64, head.chunk_tokens // 4)
    return _chunked(head.output, hidden[:, -length - 1:-1], sequences, scale, rows=None, chunk=chunk)


def _chunked(output: Any, states: torch.Tensor, sequences: Sequences, scale: float, rows: int | None,
             chunk: int = 0) -> torch.Tensor:
    """-cross-entropy (= log-probability) of each real completion token, a chunk of positions at a time."""
    from torch.utils.checkpoint import checkpoint

    mask = sequences.completion_mask.bool()
    selected, targets = states[mask], sequences.completion_ids[mask]
    step = chunk or max(1, rows * states.shape[1])
    pieces = []
    for start in range(0, len(targets), step):
        args = (output, selected[start:start + step], targets[start:start + step], scale)
        use_checkpoint = torch.is_grad_enabled() and chunk  # recomputed in backward: one chunk's logits at a time
        pieces.append(checkpoint(_logps, *args, use_reentrant=False) if use_checkpoint else _logps(*args))
    values = torch.cat(pieces) if pieces else selected[:0, 0].float()
    result = torch.zeros(mask.shape, dtype=torch.float32, device=values.device)
    return result.masked_scatter(mask, values)


def _logps(output: Any, states: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    logits = output(states).float()
    if scale != 1.0:
        logits = logits.div_(scale)  # in place: one float32 copy of the chunk's logits less
    return -torch.nn.functional.cross_entropy(logits, targets, reduction="none")  # no [N, V] log_softmax kept


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
