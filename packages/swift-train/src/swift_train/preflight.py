"""What a training run checks before it writes a run directory or loads any weights.

Each check here is cheap next to loading a model: the model's files are resolved and its config
read, its tokenizer loaded, the data read and encoded, and the tuner's module patterns matched on
a weightless (meta-device) copy of the architecture. A mistake in any of them costs seconds and
leaves nothing on disk.
"""

from __future__ import annotations

import os
from typing import Any

from swift_args import ArgumentError
from swift_data.models import ModelInfo

IMPLEMENTED_TRAIN_TYPES = ("lora", "full")


def check_train_type(args: Any) -> None:
    if args.train_type not in IMPLEMENTED_TRAIN_TYPES:
        raise ArgumentError(f"--train_type {args.train_type} is not implemented yet; use lora or full")


def check_tuner_targets(args: Any, info: ModelInfo) -> None:
    """LoRA's --target_modules / --target_regex must match a module of this architecture.

    peft is applied to the architecture built on the meta device (no memory, no weights), with
    its weight initialisation off: PiSSA or OLoRA would otherwise run an SVD on tensors that
    hold no values.
    """
    if args.train_type != "lora" or args.adapters:
        return
    import torch
    from peft import get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from swift_train.tuners import lora_config

    try:
        config = AutoConfig.from_pretrained(info.model_dir)
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(config)
    except Exception:  # noqa: BLE001 - an architecture that cannot be built weightless is checked when it loads
        return
    lora = lora_config(args, skeleton)
    lora.init_lora_weights = False
    try:
        get_peft_model(skeleton, lora)
    except ValueError as exc:
        raise ArgumentError(f"LoRA: {str(exc).splitlines()[0]} (check --target_modules / --target_regex)") from None


def check_has_rows(data: Any, args: Any) -> None:
    """A training set with no usable row is an error that says why, before the trainer starts.

    Streaming data cannot be checked without consuming it; it is checked as it is read.
    """
    from swift_data.pipeline import EncodedDataset, LazyDataset

    if isinstance(data.train, EncodedDataset):
        skips = data.skips if len(data.train) == 0 else None
    elif isinstance(data.train, LazyDataset):
        skips = data.train.unusable()
    else:
        return
    if skips is not None:
        why = skips.report().removeprefix("preprocessing: ") if skips.total else "the dataset has no rows"
        raise ArgumentError(f"--dataset {' '.join(args.dataset)}: no usable rows for training; {why}")


def check_trainer_args(args: Any, info: ModelInfo, has_eval: bool) -> None:
    """transformers' own checks of the trainer arguments (bf16 without a GPU, fsdp on one process, a
    missing fsdp_config file, ...), run on a throwaway copy before the run directory exists."""
    from pathlib import Path

    from swift_infer.loading import choose_dtype, default_device

    from swift_train.training_args import hf_training_args

    if args.fsdp and int(os.environ.get("WORLD_SIZE", "1")) == 1:  # checked in a worker, or in the only process
        raise ArgumentError("--fsdp shards the model over several processes; start them with NPROC_PER_NODE=N "
                            "(one per GPU), or drop --fsdp")
    dtype = choose_dtype(args.torch_dtype, info, default_device().split(":")[0], say=lambda _: None)
    try:
        trainer_args = hf_training_args(args, Path(args.output_dir), dtype, has_eval)
    except (ValueError, OSError, ImportError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArgumentError(f"trainer arguments: {first}") from None
    check_scheduler_kwargs(trainer_args)


def check_scheduler_kwargs(trainer_args: Any) -> None:
    """--lr_scheduler_kwargs names only what the chosen schedule takes (else a TypeError at step 0)."""
    import inspect

    from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION

    schedule = TYPE_TO_SCHEDULER_FUNCTION.get(trainer_args.lr_scheduler_type)
    if schedule is None or not trainer_args.lr_scheduler_kwargs:
        return
    taken = set(inspect.signature(schedule).parameters) - {"optimizer", "num_warmup_steps", "num_training_steps"}
    unknown = sorted(set(trainer_args.lr_scheduler_kwargs) - taken)
    if unknown:
        raise ArgumentError(f"--lr_scheduler_kwargs: {', '.join(unknown)} not taken by the "
                            f"{trainer_args.lr_scheduler_type.value} schedule; it takes {', '.join(sorted(taken)) or 'nothing'}")
