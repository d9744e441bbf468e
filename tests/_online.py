"""Shared by test_grpo.py and test_ppo.py: the prompts online RL trains on, and reading what a run leaves."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from swift_e2e import read_jsonl, read_log, write_jsonl

# An example of the form `format` rewards: thinking in <think></think>, then the answer in <answer></answer>,
# and nothing after.
THINK_EXAMPLE = [{"role": "user", "content": "What is 3 + 4?"},
                 {"role": "assistant", "content": "<think>3 + 4 = 7</think><answer>7</answer>"}]


@dataclass
class Split:
    train: Path
    held_out: Path


def arithmetic_problems() -> list[dict]:
    """The built-in arithmetic set: 236 one-digit problems, each after the set's worked example.

    With the example SmolLM2-135M-Instruct mostly works a problem out but seldom goes on to the tagged answer that
    `accuracy` reads: GRPO has a rare success to reinforce.
    """
    from swift_data.datasets.builtin import find_builtin_dataset

    return read_jsonl(find_builtin_dataset("arithmetic").path())


def split(rows: list[dict], held_out: int, folder: Path, seed: int = 0) -> Split:
    """The rows shuffled; the first `held_out` are never trained on."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    folder.mkdir(parents=True, exist_ok=True)
    return Split(write_jsonl(folder / "train.jsonl", rows[held_out:]),
                 write_jsonl(folder / "held_out.jsonl", rows[:held_out]))


def train_steps(run_dir: Path) -> list[dict]:
    """The training records of logging.jsonl, one per logged step."""
    return [r for r in read_log(run_dir) if "loss" in r]


def evals(run_dir: Path, metric: str) -> list[float]:
    """`metric` of each evaluation, in order (the first is before training with --eval_on_start true)."""
    return [r[metric] for r in read_log(run_dir) if metric in r]
