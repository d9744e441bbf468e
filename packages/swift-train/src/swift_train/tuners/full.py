"""Full fine-tuning with the reference's freezing rules.

All weights train except the parts of a multimodal model that --freeze_llm / --freeze_vit /
--freeze_aligner name; then `freeze_parameters` (prefixes) and `freeze_parameters_ratio` (the bottom
share of parameters) are frozen; then `trainable_parameters` (prefixes) train again: that last
list wins.
"""

from __future__ import annotations

from typing import Any

from swift_train.tuners.parts import freeze_parts


def prepare_full(model: Any, args: Any) -> Any:
    parameters = list(model.named_parameters())
    for _, parameter in parameters:
        parameter.requires_grad_(True)
    freeze_parts(model, args)
    if args.freeze_parameters_ratio > 0:
        total = sum(p.numel() for _, p in parameters)
        frozen = 0
        for _, parameter in parameters:  # named_parameters runs from the embedding upwards
            if frozen >= total * args.freeze_parameters_ratio:
                break
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    for name, parameter in parameters:
        if any(name.startswith(prefix) for prefix in args.freeze_parameters):
            parameter.requires_grad_(False)
    for name, parameter in parameters:
        if any(name.startswith(prefix) for prefix in args.trainable_parameters):
            parameter.requires_grad_(True)
    if args.gradient_checkpointing and not parameters[0][1].requires_grad:
        model.enable_input_require_grads()
    return model
