"""--train_type adapter: a bottleneck adapter (Houlsby et al.) after each decoder layer's MLP.

h -> h + up(act(down(h))), down: hidden -> adapter_length, up: adapter_length -> hidden. `up` starts
at zero, so the adapted model computes exactly what the base does until training moves it (ms-swift
initialises both sides randomly, which perturbs the base model before the first step).
"""

from __future__ import annotations

from typing import Any

import torch

DEFAULTS = {"adapter_length": 128, "act": "gelu"}  # ms-swift's defaults; the reference exposes neither


class Bottleneck(torch.nn.Module):
    def __init__(self, hidden_size: int, adapter_length: int, act: str):
        from transformers.activations import ACT2FN

        super().__init__()
        self.down = torch.nn.Linear(hidden_size, adapter_length)
        self.act = ACT2FN[act]
        self.up = torch.nn.Linear(adapter_length, hidden_size)
        torch.nn.init.zeros_(self.up.weight)
        torch.nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        delta = self.up(self.act(self.down(hidden.to(self.down.weight.dtype))))
        return hidden + delta.to(hidden.dtype)


def build(hidden_size: int, settings: dict[str, Any]) -> Bottleneck:
    settings = {**DEFAULTS, **settings}
    return Bottleneck(hidden_size, int(settings["adapter_length"]), str(settings["act"]))
