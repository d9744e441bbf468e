"""LoRA (and DoRA, rsLoRA, PiSSA init) through peft: the saved adapter is a plain PEFT directory."""

from __future__ import annotations

from typing import Any

from swift_args import ArgumentError
from swift_args.adapters import adapter_path
from swift_infer.loading import DTYPES, attach_adapter


def _init_weights(value: str) -> bool | str:
    low = value.lower()
    return {"true": True, "false": False}.get(low, low)


def lora_config(args: Any, model: Any = None) -> Any:
    from peft import LoraConfig, TaskType

    from swift_train.tuners.parts import frozen_linear_modules

    targets: Any = args.target_regex or args.target_modules
    if isinstance(targets, list) and targets == ["all-linear"]:
        targets = "all-linear"  # peft's own keyword: every linear layer except the output head
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=args.lora_rank,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        bias=args.lora_bias,
        target_modules=targets,
        modules_to_save=args.modules_to_save or None,
        use_dora=args.use_dora,
        use_rslora=args.use_rslora,
        init_lora_weights=_init_weights(args.init_weights),
        # Multimodal models: no LoRA in the parts --freeze_llm / --freeze_vit / --freeze_aligner name.
        exclude_modules=(frozen_linear_modules(model, args) or None) if model is not None else None,
    )


def prepare_lora(model: Any, args: Any) -> Any:
    """Wrap the model with LoRA adapters (or load --adapters / a resumed adapter to keep training)."""
    from peft import get_peft_model

    if args.adapters:
        path = adapter_path(args.adapters[0])
        model = attach_adapter(model, path, is_trainable=True)
    else:
        try:
            model = get_peft_model(model, lora_config(args, model))
        except ValueError as exc:
            raise ArgumentError(f"LoRA: {str(exc).splitlines()[0]} (check --target_modules / --target_regex)") from None
    name_base_portably(model, args.model)
    if args.lora_dtype is not None:
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.data = parameter.data.to(DTYPES[args.lora_dtype])
    if args.gradient_checkpointing:
        model.enable_input_require_grads()  # checkpointed frozen embeddings still pass gradients on
    return model


def name_base_portably(model: Any, base: str | None) -> None:
    """adapter_config.json names the base model as the user did (alias, hub id, absolute path),
    not by the machine-local cache directory it was loaded from: the adapter must load elsewhere."""
    from swift_data.models import portable_model_name

    if base is None:
        return
    for config in model.peft_config.values():
        config.base_model_name_or_path = portable_model_name(base)


def lora_plus_groups(model: Any, args: Any) -> list[dict[str, Any]]:
    """LoRA+ optimizer groups: B matrices learn lorap_lr_ratio times faster than A."""
    base_lr = args.learning_rate
    groups: dict[str, list] = {"a": [], "b": [], "other": []}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        key = "b" if "lora_B" in name else "a" if "lora_A" in name else "other"
        groups[key].append(parameter)
    return [
        {"params": groups["a"], "lr": base_lr},
        {"params": groups["b"], "lr": base_lr * args.lorap_lr_ratio},
        {"params": groups["other"], "lr": base_lr},
    ]
