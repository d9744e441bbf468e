"""Selective activation checkpointing: recompute only the first N decoder layers in backward.

Recomputation costs about a third of a LoRA step. Layers left out keep their activations, which
costs memory, so `--gradient_checkpointing_layers N` trades the memory you have for speed.
transformers reads a per-layer `gradient_checkpointing` flag in GradientCheckpointingLayer; the
Trainer sets it on every layer when training starts, so the limit is applied right after.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


def limit_checkpointed_layers(model: Any, count: int) -> tuple[int, int]:
    """Keep checkpointing on the first `count` decoder layers only; returns (checkpointed, total)."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for layer in layers[count:]:
        layer.gradient_checkpointing = False
    return min(count, len(layers)), len(layers)


class CheckpointOnlyFirstLayers(TrainerCallback):
    def __init__(self, count: int, say: Any):
        self.count, self.say = count, say

    def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001, ANN201
        kept, total = limit_checkpointed_layers(model, self.count)
        self.say(f"activation checkpointing on {kept} of {total} decoder layers (--gradient_checkpointing_layers)")
