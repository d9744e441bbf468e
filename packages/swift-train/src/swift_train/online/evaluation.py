"""Evaluation of the online trainers: completions to the validation prompts, and their mean rewards."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def evaluate_rewards(trainer: Any, eval_dataset: Any, prefix: str,
                     rewards: Callable[[list[dict[str, Any]], Any], dict[str, torch.Tensor]]) -> dict[str, float]:
    """One completion per validation prompt; `rewards(samples, rollouts)` names each reward's values (NaN:
    none). Logged and handed to the callbacks like transformers' own evaluate (best-checkpoint tracking)."""
    start = time.time()
    totals: dict[str, list[float]] = {}
    for samples in trainer.get_eval_dataloader(eval_dataset):
        rollouts = trainer.rollout().generate([s["prompt_ids"].tolist() for s in samples])
        for name, values in rewards(samples, rollouts).items():
            kept = values[~values.isnan()]
            total = totals.setdefault(name, [0.0, 0.0])
            total[0] += float(kept.sum())
            total[1] += len(kept)
    names = sorted(totals)
    sums = trainer.accelerator.gather(torch.tensor([totals[n] for n in names], device=trainer.args.device)[None]).sum(0)
    metrics = {f"{prefix}_{name}": round(float(total / count), 6) if count else float("nan")
               for name, (total, count) in zip(names, sums.tolist())}
    metrics[f"{prefix}_runtime"] = round(time.time() - start, 4)
    trainer.log(metrics)
    trainer.control = trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, metrics)
    return metrics
