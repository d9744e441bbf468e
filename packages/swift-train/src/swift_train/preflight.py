"""What a training run checks before it writes a run directory or loads any weights.

Each check here is cheap next to loading a model: the model's files are resolved and its config
read, its tokenizer loaded, the data read and encoded, and the tuner's module patterns matched on
a weightless (meta-device) copy of the architecture. A mistake in any of them costs seconds and
leaves nothing on disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from swift_args import ArgumentError
from swift_data.models import ModelInfo

def check_optional_packages(args: Any) -> None:
    """An option whose package is an extra that is not installed: one line naming the extra."""
    import importlib.util

    from swift_infer.loading import check_quantization

    from swift_train.swanlab_report import check_swanlab

    if args.use_galore and importlib.util.find_spec("galore_torch") is None:
        raise ArgumentError("--use_galore needs the GaLore optimizer: pip install 'swift-train[galore]'")
    check_quantization(args)
    check_swanlab(args)


def check_tuner_targets(args: Any, info: ModelInfo, resume: Path | None = None) -> None:
    """The tuner must apply to this architecture: --target_modules / --target_regex match a module,
    peft accepts the tuner's settings for those modules (BOFT's block size must divide their width),
    LLaMA-Pro's groups divide the layer count, LISA has that many layers to choose from.

    The tuner is applied to the architecture built on the meta device (no memory, no weights), with
    its weight initialisation off: PiSSA or OLoRA would otherwise run an SVD on tensors that hold no values.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(info.model_dir)
        auto = AutoModelForCausalLM
        if args.task_type == "seq_cls":
            from transformers import AutoModelForSequenceClassification as auto  # noqa: N813

            config.num_labels = args.num_labels
        with torch.device("meta"):
            skeleton = auto.from_config(config)
    except Exception:  # noqa: BLE001 - an architecture that cannot be built weightless is checked when it loads
        return
    from swift_train.tuners import ADAPTER_TUNERS, HOOKED_TUNERS
    from swift_train.tuners import longlora

    if args.train_type == "longlora" and (why := longlora.unsupported(config)) is not None:
        raise ArgumentError(f"--train_type longlora: {why}; use --train_type lora")
    _check_layer_counts(args, skeleton)
    if args.adapters or args.train_type not in ADAPTER_TUNERS:
        return
    if args.train_type in HOOKED_TUNERS:
        from swift_train.tuners.hooked import hooked_config

        try:
            wanted = hooked_config(skeleton, args)
        except ValueError as exc:
            raise ArgumentError(f"--train_type {args.train_type}: {exc}") from None
        from transformers.activations import ACT2FN

        act_fn = (args.reft_args or {}).get("act_fn")
        if args.train_type == "reft" and act_fn is not None and act_fn not in ACT2FN:
            raise ArgumentError(f"--reft_args: act_fn {act_fn} is not an activation; use one of "
                                f"{', '.join(sorted(ACT2FN)[:8])}, ...")
        _check_resumed_tuner(wanted, resume)
        return
    from peft import get_peft_model

    from swift_train.tuners import tuner_config

    try:
        tuner = tuner_config(args, skeleton)
        if hasattr(tuner, "init_lora_weights"):
            tuner.init_lora_weights = False
        if hasattr(tuner, "lora_ga_config"):
            tuner.lora_ga_config = None
        get_peft_model(skeleton, tuner)
    except (ValueError, TypeError, AssertionError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArgumentError(f"--train_type {args.train_type}: {first} (check --target_modules / --target_regex "
                            "and the tuner's own arguments)") from None


def _check_resumed_tuner(wanted: dict[str, Any], resume: Path | None) -> None:
    """A resumed adapter / ReFT run must build the tuner its checkpoint holds (else the weights do not fit)."""
    from swift_infer import own_tuners

    if resume is None or not own_tuners.is_own_tuner(resume):
        return
    saved = own_tuners.read_config(resume)
    if (saved["modules"], saved["settings"]) != (wanted["modules"], wanted["settings"]):
        raise ArgumentError(f"--resume_from_checkpoint {resume}: its tuner is {saved['settings']} on "
                            f"{len(saved['modules'])} modules, these arguments ask for {wanted['settings']} on "
                            f"{len(wanted['modules'])}; resume with the arguments in its args.json")


def _check_layer_counts(args: Any, skeleton: Any) -> None:
    from swift_train.tuners.layers import decoder_layers

    layers = len(decoder_layers(skeleton))
    if args.train_type == "llamapro" and layers % args.llamapro_num_groups:
        raise ArgumentError(f"--llamapro_num_groups {args.llamapro_num_groups} must divide the model's {layers} "
                            "decoder layers")
    outside = [i for i in args.reft_layers or () if not 0 <= i < layers]
    if args.train_type == "reft" and outside:
        raise ArgumentError(f"--reft_layers {' '.join(map(str, outside))}: the model's decoder layers are "
                            f"0 to {layers - 1}")
    if args.lisa_activated_layers > layers:
        raise ArgumentError(f"--lisa_activated_layers {args.lisa_activated_layers}: the model has only {layers} "
                            "decoder layers")


def check_sequence_parallel(args: Any, info: ModelInfo) -> None:
    """--sequence_parallel_size N splits each attention's heads over N ranks: the model's config must allow it."""
    size = args.sequence_parallel_size
    if size <= 1:
        return
    from transformers import AutoConfig

    from swift_train.sequence_parallel import unsupported

    try:
        config = AutoConfig.from_pretrained(info.model_dir)
    except Exception:  # noqa: BLE001 - a config transformers cannot read fails with its own message when it loads
        return
    problem = unsupported(config, size)
    if problem is not None:
        raise ArgumentError(f"--sequence_parallel_size {size}: {problem}")


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
