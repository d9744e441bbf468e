"""LISA (Layerwise Importance Sampled AdamW): full training that keeps only a few decoder layers trainable
at a time, switching to a fresh random choice every --lisa_step_interval steps.

As in the paper and LMFlow/ms-swift, the embeddings and the output head train throughout. Every parameter
is in the optimizer (it is built before the first switch); a frozen layer has no gradient, so AdamW leaves
it and its state alone, which is where the memory saving comes from.
"""

from __future__ import annotations

import random
from typing import Any

from transformers import TrainerCallback

from swift_train.tuners.layers import decoder_layers


class LisaSwitcher(TrainerCallback):
    def __init__(self, model: Any, active: int, interval: int, seed: int):
        self.layers = decoder_layers(model)
        if active > len(self.layers):
            from swift_args import ArgumentError

            raise ArgumentError(f"--lisa_activated_layers {active}: the model has only {len(self.layers)} decoder layers")
        self.active, self.interval = active, interval
        self.random = random.Random(seed)
        self.chosen: list[int] = []

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.interval == 0 or not self.chosen:
            self.switch()

    def switch(self) -> None:
        self.chosen = sorted(self.random.sample(range(len(self.layers)), self.active))
        for index, layer in enumerate(self.layers):
            for parameter in layer.parameters():
                parameter.requires_grad_(index in self.chosen)
                if index not in self.chosen:
                    parameter.grad = None

