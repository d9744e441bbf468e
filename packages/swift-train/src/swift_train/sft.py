"""`swift sft`, `swift pt` and `swift rlhf`: load, prepare data, build the trainer, train, save, summarise.

Run as: swift sft --model SmolLM2-135M-Instruct --dataset self-cognition#500 --model_name ... --model_author ...
        swift rlhf --rlhf_type dpo --model SmolLM2-135M-Instruct --dataset preference-pairs

rlhf differs in its samples (chosen/rejected pairs, swift_data.preference), its batches and loss
(swift_train.preference), and, for full training, a frozen reference model loaded beside the policy.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from swift_args import ARGS_FILE, ArgumentError, Invocation
from swift_args.adapters import adapter_path, is_adapter_dir, tuner_mismatch
from swift_args.checkpoint_files import is_checkpoint_dir, newest_whole_checkpoint, refusal
from swift_args.plugins import import_files
from swift_args.run_dir import RESUME_ENV, RUN_DIR_ENV, check_writable_dir, started_run
from swift_args.shell import swift_command
from swift_data.models import ModelInfo

from swift_train import checkpoints, preflight
from swift_train.online.checks import ONLINE_RL, check_online_rl
from swift_train.plugins import check_plugins
from swift_train.swanlab_report import start_swanlab


def resume_source(args: Any) -> Path | None:
    """The checkpoint to resume from, verified before any model loads.

    A checkpoint named directly must be whole; in a run directory, or an output directory of
    vN-* runs, the newest whole one is taken and each newer damaged one is named on stderr.
    """
    if not args.resume_from_checkpoint:
        return None
    verified = os.environ.get(RESUME_ENV)  # a torchrun worker: the launcher has read every file already
    path = Path(verified) if verified else whole_checkpoint(Path(args.resume_from_checkpoint), args)
    is_adapter = is_adapter_dir(path)
    if is_adapter and (mismatch := tuner_mismatch(path, args.train_type, "--resume_from_checkpoint")):
        raise ArgumentError(mismatch)
    if is_adapter != saves_adapters(args):
        kind, other = ("an adapter", "lora (or the adapter's tuner)") if is_adapter else ("a whole model", "full or llamapro")
        raise ArgumentError(f"--resume_from_checkpoint {path} holds {kind}; resume it with --train_type {other}")
    from swift_train.tuners.lora import moves_base_weights

    if moves_base_weights(args) and not args.resume_only_model:
        raise ArgumentError(f"--resume_from_checkpoint {path}: a --init_weights {args.init_weights} run saves its adapter "
                            "converted to a plain LoRA for the original model, so its optimizer state no longer fits; "
                            "train on from it with --resume_only_model true (or --adapters)")
    step = checkpoints.step_of(path)
    if not args.resume_only_model and 0 < args.max_steps <= step:  # transformers would train one step past the end
        raise ArgumentError(f"--resume_from_checkpoint {path}: the run had already reached step {step} of "
                            f"--max_steps {args.max_steps}; raise --max_steps to train further")
    return path


def saves_adapters(args: Any) -> bool:
    """LoRA, the other peft tuners, adapter and ReFT save adapters; full training (LISA, GaLore) and LLaMA-Pro
    save whole models."""
    from swift_train.tuners import ADAPTER_TUNERS

    return args.train_type in ADAPTER_TUNERS


def whole_checkpoint(path: Path, args: Any) -> Path:
    """`path` if it is a whole checkpoint, else the newest whole one under it (a run or output directory)."""
    if not path.is_dir():
        raise ArgumentError(f"--resume_from_checkpoint {path}: no such directory")
    training_state = not args.resume_only_model  # weights only need nothing else to be intact
    if checkpoints.is_complete(path) or is_checkpoint_dir(path):  # a checkpoint named directly
        problem = refusal(path, "--resume_from_checkpoint", training_state)
        if problem is not None:
            raise ArgumentError(problem)
        return path
    found, skipped = newest_whole_checkpoint(path, training_state)
    for checkpoint, why in skipped:
        _say(f"skipping {checkpoint.relative_to(path)}: {why}"
             + (f"; resuming from {found.relative_to(path)}" if found is not None else ""))
    if found is None:
        held = "each checkpoint in it is damaged or unfinished" if skipped else "it holds no checkpoint"
        raise ArgumentError(f"--resume_from_checkpoint {path}: not a checkpoint, and {held} "
                            f"(a checkpoint is complete once it has {checkpoints.MARKER}); start again without it")
    return found


def continued_run(args: Any, resume: Path | None) -> Path | None:
    """The run directory a resumed run goes on in: its checkpoint's, when --output_dir is that run or its parent.

    Resumed elsewhere (a fork) or with --resume_only_model (a new schedule), the run gets a new directory.
    """
    if resume is None or args.resume_only_model or not (resume.parent / ARGS_FILE).is_file():
        return None
    output = Path(args.output_dir).resolve()
    run = resume.parent.resolve()
    return resume.parent if output in (run, run.parent) else None


def note_resumed(run_dir: Path, resume: Path) -> None:
    """Say where training goes on from: on stderr, and as a record in logging.jsonl before the new steps."""
    from swift_train.logging_jsonl import write_event

    if os.environ.get("RANK", "0") != "0":
        return
    step = checkpoints.step_of(resume)
    name = resume.name if resume.parent.resolve() == run_dir.resolve() else str(resume)
    write_event(run_dir / "logging.jsonl", "resumed", checkpoint=name, global_step=step)
    _say(f"resumed from {name} at step {step} in {run_dir}")


def model_source(args: Any, resume: Path | None) -> Any:
    """The arguments whose --model is loaded: a full checkpoint resumed weights-only is a whole
    model, loaded instead of the base rather than on top of it."""
    if resume is not None and args.resume_only_model and not saves_adapters(args):
        return dataclasses.replace(args, model=str(resume))
    return args


def prepare_model(args: Any, resume: Path | None, info: ModelInfo, tokenizer: Any, train_data: Any = None) -> Any:
    from swift_infer.loading import load_model

    from swift_train.tuners import HOOKED_TUNERS, prepare_full, prepare_hooked_tuner, prepare_lora, prepare_peft_tuner
    from swift_train.tuners.llamapro import prepare_llamapro

    loaded = load_model(model_source(args, resume), info=info, tokenizer=tokenizer)
    speed_up(loaded.model, args)
    if resume is not None and args.resume_only_model and saves_adapters(args):
        args.adapters = [str(resume)]
    if args.train_type == "full":
        loaded.model = prepare_full(loaded.model, args)
    elif args.train_type == "llamapro":
        loaded.model = prepare_llamapro(loaded.model, args)
    elif args.train_type in ("lora", "longlora"):
        if args.train_type == "longlora":
            from swift_train.tuners import longlora

            longlora.enable(loaded.model)
        loaded.model = prepare_lora(loaded.model, args, train_data)
    elif args.train_type in HOOKED_TUNERS:
        loaded.model = prepare_hooked_tuner(loaded.model, args)
    else:
        loaded.model = prepare_peft_tuner(loaded.model, args)
    if args.gradient_checkpointing:
        loaded.model.config.use_cache = False
    return loaded


def speed_up(model: Any, args: Any) -> None:
    """Kernels chosen for the loaded model, before PEFT wraps it: liger's, sequence parallelism's attention,
    and varlen attention for packed rows."""
    import torch

    if args.use_liger:
        from swift_train.liger import apply_liger

        _say(f"liger-kernel RMSNorm/SwiGLU/RoPE kernels applied to {apply_liger(model)}")
    if args.sequence_parallel_size > 1:  # its attention runs varlen itself, over the whole sequences
        from swift_train import sequence_parallel

        sequence_parallel.enable(model)
        _say(f"each sequence is split over {args.sequence_parallel_size} processes ({sequence_parallel.NAME} attention)")
        return
    packed = args.packing or getattr(args, "padding_free", False)
    # rlhf flattens its answers into one row wherever varlen attention runs (preference/batch.py), on CPUs too:
    # no linear layer then spends time on padding. rm scores padded rows.
    flattened = getattr(args, "rlhf_type", "rm") not in ("rm", *ONLINE_RL)  # online RL generates: plain sdpa
    if not ((packed and torch.cuda.is_available() or flattened) and args.attn_impl in (None, "sdpa")):
        return  # flex_attention, eager and flash_attn are the user's explicit choice
    from swift_train import varlen

    reason = varlen.unsupported(model.config)
    if reason is not None:
        _say(f"packed rows keep sdpa with a block-diagonal mask: varlen attention is off because {reason}")
        return
    varlen.enable(model)
    _say(f"packed rows use varlen attention ({varlen.NAME}: PyTorch's built-in FlashAttention-2, no 4D mask)")


def use_ddp_on_cpu() -> None:
    """Several processes without a GPU train as one DDP run, as they do on GPUs.

    Otherwise accelerate counts them as several processes (each reads its share of the data) but of
    no distributed kind: no DDP, gradients never averaged, the logged loss rank 0's alone; and a
    sequence-parallel group's gradients, which only make sense summed, never meet.
    """
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")


def _say(message: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(f"swift: {message}", file=sys.stderr)


def run_training(invocation: Invocation) -> int:
    """Check everything that can be checked cheaply, then create the run directory and train.

    Data, model files, module patterns and the output directory are checked before the run
    directory exists and before any weights load; a run that still fails before its first step
    removes its run directory again.
    """
    from swift_data.datasets.load import DataOptions, load_dataset_rows
    from swift_data.models import load_tokenizer, model_for_args
    from swift_data.pipeline import EncodedDataset, prepare_datasets

    from swift_train.launch import relaunch_under_torchrun

    args = invocation.args
    if not args.dataset:
        from swift_data.datasets import BUILTIN_DATASETS

        raise ArgumentError("--dataset is required: a local file or folder, a hub id, or a built-in dataset "
                            f"({', '.join(BUILTIN_DATASETS)})")
    preflight.check_optional_packages(args)
    if not os.environ.get(RUN_DIR_ENV):
        check_writable_dir(args.output_dir, "--output_dir")
        if args.logging_dir is not None:
            check_writable_dir(args.logging_dir, "--logging_dir")
    import_files(args.external_plugins, "--external_plugins")
    check_online_rl(args)  # grpo/ppo first: their own message for the offline arguments they do not read
    check_plugins(args)  # after both kinds of plugin file registered theirs
    resume = resume_source(args)
    if args.adapters and (mismatch := tuner_mismatch(adapter_path(args.adapters[0]), args.train_type, "--adapters")):
        raise ArgumentError(mismatch)
    continue_in = continued_run(args, resume)
    rows = load_dataset_rows(DataOptions.from_args(args))  # before the model: a hub model may be gigabytes away
    _, info = model_for_args(model_source(args, resume))
    reference = reference_model_info(args, info)
    preflight.check_sequence_parallel(args, info)
    exit_code = relaunch_under_torchrun(invocation, info.model_dir, resume, continue_in)
    if exit_code is not None:
        return exit_code
    use_ddp_on_cpu()
    tokenizer = load_tokenizer(info.model_dir)
    data = prepare_datasets(args, tokenizer, max_length=info.max_model_len, rows=rows)
    preflight.check_has_rows(data, args)
    if getattr(args, "rlhf_type", None) in ONLINE_RL:
        from swift_train.online.checks import check_columns

        check_columns(args, data)
    preflight.check_tuner_targets(args, info, resume)
    preflight.check_trainer_args(args, info, has_eval=data.val is not None and len(data.val) > 0)
    with started_run(args, invocation.command.name, info.model_dir, continue_in) as run_dir:  # args.json first
        if os.environ.get("RANK", "0") == "0":
            print(f"swift: run directory {run_dir}", file=sys.stderr)
        from transformers import set_seed  # imports peft and the trainer: seconds, only once checks passed

        set_seed(args.seed)
        loaded = prepare_model(args, resume, info, tokenizer, data.train)
        ref_model = load_reference_model(args, reference, tokenizer) if reference is not None else None
        trainer = build_trainer(args, run_dir, loaded, data, ref_model)
        start_swanlab(args, run_dir)
        checkpoints.clean_staging(run_dir)
        if resume is not None and not args.resume_only_model:
            note_resumed(run_dir, resume)
        try:
            trainer.train(resume_from_checkpoint=str(resume) if resume is not None and not args.resume_only_model else None)
        except RuntimeError as exc:
            if resume is None or "size mismatch" not in str(exc):
                raise
            raise ArgumentError(f"--resume_from_checkpoint {resume} was saved from another base model (size mismatch); "
                                "pass the --model it was trained from") from None
        check_trained(trainer, resume)
    if not isinstance(data.train, EncodedDataset):
        data.skips.print_report()  # lazy and streaming data count their skips while training
    return summarise(trainer, run_dir, args)


def reference_model_info(args: Any, info: ModelInfo) -> ModelInfo | None:
    """Full-parameter dpo and kto compare against a second, frozen model: its files, checked before any load."""
    if not getattr(args, "ref_model", None):
        return None
    if (args.ref_model, args.ref_model_type, args.ref_model_revision) == (args.model, args.model_type, args.model_revision):
        return info
    from swift_data.models import model_for_args

    reference = dataclasses.replace(args, model=args.ref_model, model_type=args.ref_model_type,
                                    model_revision=args.ref_model_revision, adapters=[])
    try:
        _, ref_info = model_for_args(reference)
    except ArgumentError as exc:  # its message names --model: the reference's files are the ones at fault
        raise ArgumentError(str(exc).replace(f"--model {args.ref_model}", f"--ref_model {args.ref_model}", 1)) from None
    return ref_info


def load_reference_model(args: Any, info: ModelInfo, tokenizer: Any) -> Any:
    """The reference model: loaded once in the training dtype, frozen, in eval mode."""
    from swift_infer.loading import load_model

    reference = dataclasses.replace(args, model=str(info.model_dir), model_type=args.ref_model_type,
                                    model_revision=args.ref_model_revision, adapters=[], quant_method=None)
    loaded = load_model(reference, info=info, tokenizer=tokenizer)
    speed_up(loaded.model, dataclasses.replace(args, use_liger=False))  # the policy's attention for the same batches
    return loaded.model.requires_grad_(False).eval()


def build_trainer(args: Any, run_dir: Path, loaded: Any, data: Any, ref_model: Any = None) -> Any:
    from swift_data.collator import Collator

    from swift_train.logging_jsonl import JsonlLogger
    from swift_train.trainer import SwiftTrainer
    from swift_train.training_args import hf_training_args

    has_eval = data.val is not None and len(data.val) > 0
    trainer_class, extra, collator = SwiftTrainer, {}, Collator(loaded.tokenizer.pad_token_id, args.padding_side,
                                                                args.packing)
    if getattr(args, "rlhf_type", None) in ONLINE_RL:
        from swift_train.online.trainers import online_trainer

        trainer_class, extra, collator = online_trainer(args, loaded, ref_model)
    elif getattr(args, "rlhf_type", None) is not None:
        from swift_train import varlen
        from swift_train.preference.batch import PreferenceCollator
        from swift_train.preference.trainer import PreferenceTrainer

        flatten = getattr(loaded.model.config, "_attn_implementation", None) == varlen.NAME
        trainer_class, extra = PreferenceTrainer, {"ref_model": ref_model}
        collator = PreferenceCollator(loaded.tokenizer.pad_token_id, args.rlhf_type, flatten=flatten)
    trainer = trainer_class(
        model=loaded.model,
        args=hf_training_args(args, run_dir, loaded.dtype, has_eval=has_eval),
        train_dataset=data.train,
        eval_dataset=data.val if has_eval else None,
        data_collator=collator,
        processing_class=loaded.tokenizer,
        swift_args=args,
        **extra,
    )
    trainer.add_callback(JsonlLogger(run_dir / "logging.jsonl", lambda: trainer.tokens_seen))
    if args.train_type == "adalora":
        from swift_train.tuners.peft_tuners import adalora_schedule

        trainer.add_callback(adalora_schedule())
    if args.lisa_activated_layers:
        from swift_train.tuners.lisa import LisaSwitcher

        trainer.add_callback(LisaSwitcher(loaded.model, args.lisa_activated_layers, args.lisa_step_interval, args.seed))
    if not trainer.args.disable_tqdm:
        from transformers.trainer_callback import ProgressCallback

        from swift_train.progress import TokensProgress

        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(TokensProgress(lambda: trainer.tokens_seen))
    if args.gradient_checkpointing and args.gradient_checkpointing_layers is not None:
        from swift_train.checkpointing import CheckpointOnlyFirstLayers

        trainer.add_callback(CheckpointOnlyFirstLayers(args.gradient_checkpointing_layers, _say))
    return trainer


def check_trained(trainer: Any, resume: Path | None) -> None:
    """A run that trained no step is an error, not a success with nothing in it."""
    start = checkpoints.step_of(resume) if resume is not None and not trainer.swift_args.resume_only_model else 0
    if trainer.state.global_step > start:
        return
    if resume is not None:
        raise ArgumentError(f"--resume_from_checkpoint {resume}: the run had already reached step {start} of "
                            f"{trainer.state.max_steps}; raise --max_steps or --num_train_epochs to train further")
    raise ArgumentError("no training step was run; check --max_steps, --num_train_epochs and the dataset size")


def summarise(trainer: Any, run_dir: Path, args: Any) -> int:
    if not trainer.is_world_process_zero():
        return 0
    last = checkpoints.latest_complete(run_dir)
    best = trainer.state.best_model_checkpoint
    flag = "--adapters" if saves_adapters(args) else "--model"
    next_command = f"{swift_command()} infer {flag} {last}" if last is not None else "(no checkpoint was saved: --save_strategy no)"
    print(f"swift: done. last checkpoint: {last}; best: {best or last}; next: {next_command}")
    return 0
