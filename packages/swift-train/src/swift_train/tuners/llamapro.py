"""LLaMA-Pro: grow the model by new decoder blocks that start as the identity, and train only them.

The decoder's layers are split into --llamapro_num_groups equal groups; after the last layer of each,
--llamapro_num_new_blocks / groups copies of that layer are inserted with their output projections
(attention o_proj and MLP down_proj) zeroed, so each new block adds nothing to the residual stream
and the grown model computes exactly what the original did until training moves them. The result is
a plain, larger model: checkpoints are whole model directories that load with --model anywhere, and
config.json lists the new layers, so resuming or training on finds them again.
"""

from __future__ import annotations

import copy
from typing import Any

from swift_args import ArgumentError

from swift_train.tuners.layers import decoder_layers

NEW_LAYERS = "llamapro_new_layers"  # config.json key: indices of the inserted blocks
OUTPUT_PROJECTIONS = ("o_proj", "down_proj", "c_proj", "out_proj", "dense_4h_to_h", "wo", "w2")


def prepare_llamapro(model: Any, args: Any) -> Any:
    new = getattr(model.config, NEW_LAYERS, None)
    if new is None:  # the base model: grow it
        new = grow(model, args.llamapro_num_new_blocks, args.llamapro_num_groups)
    layers = decoder_layers(model)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for index in new:
        for parameter in layers[index].parameters():
            parameter.requires_grad_(True)
    if args.gradient_checkpointing:
        model.enable_input_require_grads()  # the frozen embeddings still pass gradients on
    return model


def grow(model: Any, new_blocks: int, groups: int) -> list[int]:
    """Insert the identity blocks in place; returns their indices in the grown model."""
    layers = decoder_layers(model)
    old = len(layers)
    if old % groups:
        raise ArgumentError(f"--llamapro_num_groups {groups} must divide the model's {old} decoder layers")
    per_group, group_size = new_blocks // groups, old // groups
    grown, new = [], []
    for index, layer in enumerate(layers):
        grown.append(layer)
        if (index + 1) % group_size == 0:
            for _ in range(per_group):
                block = copy.deepcopy(layer)
                zeroed = _zero_output_projections(block)
                if not zeroed:
                    raise ArgumentError(f"--train_type llamapro: no output projection ({', '.join(OUTPUT_PROJECTIONS)}) "
                                        f"found in {type(layer).__name__}, so a new block cannot start as the identity")
                new.append(len(grown))
                grown.append(block)
    del layers[:]  # the same ModuleList object, new contents: the model's forward keeps using it
    layers.extend(grown)
    for index, layer in enumerate(layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = index  # each block's own slot in the KV cache
    _grow_config(model.config, old, new)
    return new


def _zero_output_projections(block: Any) -> int:
    import torch

    zeroed = 0
    for name, module in block.named_modules():
        if name.rsplit(".", 1)[-1] in OUTPUT_PROJECTIONS and isinstance(module, torch.nn.Linear):
            with torch.no_grad():
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
            zeroed += 1
    return zeroed


def _grow_config(config: Any, old: int, new: list[int]) -> None:
    total = old + len(new)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    text.num_hidden_layers = total
    layer_types = getattr(text, "layer_types", None)
    if layer_types:  # per-layer attention kinds (sliding / full): a new block takes its source layer's
        grown = []
        source = iter(layer_types)
        for index in range(total):
            grown.append(grown[-1] if index in new else next(source))
        text.layer_types = grown
    setattr(config, NEW_LAYERS, new)
