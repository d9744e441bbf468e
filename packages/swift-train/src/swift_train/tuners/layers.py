"""The decoder layers of a causal LM, for tuners that work layer by layer (LISA, LLaMA-Pro)."""

from __future__ import annotations

from typing import Any


def decoder_layers(model: Any) -> Any:
    """The ModuleList of decoder blocks: the one holding the most parameters (model.model.layers for
    Llama, Qwen, Mistral...; transformer.h for GPT-2-like models)."""
    import torch

    best, best_size = None, 0
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = module, size
    if best is None:
        raise ValueError(f"{type(model).__name__} has no list of decoder layers")
    return best
