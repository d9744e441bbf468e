"""LoRA (and DoRA, rsLoRA, PiSSA init) through peft: the saved adapter is a plain PEFT directory."""

from __future__ import annotations

import os
from typing import Any

from swift_args import ArgumentError
from swift_args.adapters import adapter_path
from swift_infer.loading import DTYPES, attach_adapter


def _init_weights(value: str) -> bool | str:
    low = value.lower()
    return {"true": True, "false": False, "lora-ga": "lora_ga"}.get(low, low)


def module_selection(args: Any, model: Any = None) -> dict[str, Any]:
    """peft's target_modules / modules_to_save / exclude_modules from --target_modules, --target_regex,
    --modules_to_save and (multimodal models) the parts --freeze_* leave out; shared by every peft tuner."""
    from swift_train.tuners.parts import frozen_linear_modules

    targets: Any = args.target_regex or args.target_modules
    if isinstance(targets, list) and targets == ["all-linear"]:
        targets = "all-linear"  # peft's own keyword: every linear layer except the output head
    chosen = {"target_modules": targets, "modules_to_save": args.modules_to_save or None}
    excluded = frozen_linear_modules(model, args) if model is not None else []
    if excluded:  # multimodal models: no tuner in the frozen parts
        if args.train_type == "vera":
            raise ArgumentError("--train_type vera cannot leave out the frozen parts of a multimodal model "
                                "(peft's VeRA has no exclude_modules); use --target_regex to pick the LLM's layers")
        chosen["exclude_modules"] = excluded
    return chosen


def lora_config(args: Any, model: Any = None) -> Any:
    from peft import LoraConfig, TaskType

    return LoraConfig(
        # SEQ_CLS: peft also trains and saves the new classification head (score) beside the adapters.
        task_type=TaskType.SEQ_CLS if getattr(args, "task_type", "causal_lm") == "seq_cls" else TaskType.CAUSAL_LM,
        r=args.lora_rank,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        bias=args.lora_bias,
        use_dora=args.use_dora,
        use_rslora=args.use_rslora,
        init_lora_weights=_init_weights(args.init_weights),
        lora_ga_config=_lora_ga_config(args),
        **module_selection(args, model),
    )


def _lora_ga_config(args: Any) -> Any:
    if args.init_weights.lower() != "lora-ga":
        return None
    from peft import LoraGAConfig

    return LoraGAConfig(direction=args.lora_ga_direction, scale=args.lora_ga_scale, stable_gamma=args.lora_ga_stable_gamma)


def prepare_lora(model: Any, args: Any, train_data: Any = None) -> Any:
    """Wrap the model with LoRA adapters (or load --adapters / a resumed adapter to keep training)."""
    from peft import get_peft_model

    if args.adapters:
        path = adapter_path(args.adapters[0])
        model = attach_adapter(model, path, is_trainable=True)
    else:
        config = lora_config(args, model)
        if config.lora_ga_config is not None:
            estimate_gradients(model, config, args, train_data)
        try:
            model = get_peft_model(model, config)
        except ValueError as exc:
            raise ArgumentError(f"LoRA: {str(exc).splitlines()[0]} (check --target_modules / --target_regex)") from None
    name_base_portably(model, args.model)
    if moves_base_weights(args) and os.environ.get("RANK", "0") == "0":  # only rank 0 saves checkpoints
        save_initial_adapter(model, initial_adapter_dir(args))
    if args.lora_dtype is not None:
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.data = parameter.data.to(DTYPES[args.lora_dtype])
    if args.gradient_checkpointing:
        model.enable_input_require_grads()  # checkpointed frozen embeddings still pass gradients on
    return model


def moves_base_weights(args: Any) -> bool:
    """PiSSA, OLoRA and LoRA-GA start the adapter from the base weights and subtract it from them: the
    trained adapter only fits that changed base, so every save converts it to a plain LoRA of rank 2r
    that fits the original --model (peft's path_initial_model_for_weight_conversion)."""
    low = args.init_weights.lower()
    return not args.adapters and (low in ("pissa", "olora", "lora-ga") or low.startswith("pissa_niter_"))


def initial_adapter_dir(args: Any) -> Any:
    from pathlib import Path

    return Path(args.output_dir) / "initial_adapter"


def save_initial_adapter(model: Any, directory: Any) -> None:
    config = model.peft_config["default"]
    init, config.init_lora_weights = config.init_lora_weights, True  # the saved copy is a plain LoRA
    try:
        model.save_pretrained(directory)
    finally:
        config.init_lora_weights = init


def estimate_gradients(model: Any, config: Any, args: Any, train_data: Any) -> None:
    """LoRA-GA: the adapters start aligned with the full gradient, estimated on --lora_ga_iters batches of
    --lora_ga_batch_size training samples cut to --lora_ga_max_length tokens (peft's preprocess_loraga)."""
    import torch
    from peft.tuners.lora.loraga import preprocess_loraga
    from peft.tuners.tuners_utils import _maybe_include_all_linear_layers
    from swift_data.collator import Collator

    if train_data is None or len(train_data) == 0:
        raise ArgumentError("--init_weights lora-ga estimates gradients on training samples; the dataset has none")
    size, cut = args.lora_ga_batch_size, args.lora_ga_max_length
    collate = Collator(pad_token_id=0)
    device = next(model.parameters()).device

    def train_step() -> None:
        for step in range(args.lora_ga_iters):
            start = step * size % len(train_data)
            samples = [train_data[(start + i) % len(train_data)] for i in range(size)]
            samples = [{"input_ids": s["input_ids"][:cut], "labels": s["labels"][:cut]} for s in samples]
            batch = {k: v.to(device) for k, v in collate(samples).items()}
            labels = batch.pop("labels")
            with torch.enable_grad():
                model(**batch, labels=labels, use_cache=False).loss.backward()

    # LoRA-GA matches module names itself, before peft would expand the all-linear keyword.
    config.target_modules = _maybe_include_all_linear_layers(config, model).target_modules
    preprocess_loraga(model, config, train_step)


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
