"""--train_type adapter and reft: our own tuners, hooked onto the frozen model (see swift_infer.own_tuners).

Only the tuner's modules train. Checkpoints hold the tuner alone (swift_tuner.json + .safetensors),
loaded on the base model with --adapters by swift infer, or by training again to continue.
"""

from __future__ import annotations

from typing import Any

from swift_args.adapters import adapter_path
from swift_infer import own_tuners
from swift_infer.loading import attach_adapter

from swift_train.tuners.layers import decoder_layers

HOOKED_TUNERS = ("adapter", "reft")


def prepare_hooked_tuner(model: Any, args: Any) -> Any:
    """Freeze `model` and attach the tuner --train_type asks for (or --adapters' saved one, to train on)."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if args.adapters:  # through the loader LoRA uses: damaged checkpoints and another base are one line
        attach_adapter(model, adapter_path(args.adapters[0]), is_trainable=True)
    else:
        own_tuners.attach(model, hooked_config(model, args))
    if args.gradient_checkpointing:
        model.enable_input_require_grads()  # the frozen embeddings must still pass gradients on
    return model


def hooked_config(model: Any, args: Any) -> dict[str, Any]:
    names = layer_names(model)
    if args.train_type == "adapter":  # after each layer's MLP, as ms-swift places it
        modules = [_mlp_name(model, name) for name in names]
        return {"kind": "adapter", "modules": modules, "settings": dict(own_tuners.bottleneck.DEFAULTS)}
    chosen = args.reft_layers if args.reft_layers is not None else range(len(names))
    return {"kind": "reft", "modules": [names[i] for i in chosen],
            "settings": {"intervention_type": args.reft_intervention_type, "rank": args.reft_rank,
                         "reft_args": args.reft_args or {}}}


def layer_names(model: Any) -> list[str]:
    """The decoder layers' module names, e.g. model.layers.0 ... model.layers.N-1."""
    layers = decoder_layers(model)
    prefix = next(name for name, module in model.named_modules() if module is layers)
    return [f"{prefix}.{index}" for index in range(len(layers))]


def _mlp_name(model: Any, layer: str) -> str:
    for child in ("mlp", "feed_forward", "ffn"):
        try:
            model.get_submodule(f"{layer}.{child}")
            return f"{layer}.{child}"
        except AttributeError:
            continue
    raise ValueError(f"{layer} has no MLP block (mlp, feed_forward or ffn) for the adapter")
