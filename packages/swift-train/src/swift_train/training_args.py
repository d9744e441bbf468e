"""Our trainer arguments -> transformers' Seq2SeqTrainingArguments (names differ across versions)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from swift_args.fields import specs
from swift_args.schema.trainer import TrainerArguments
from swift_infer.loading import default_ddp_backend
from transformers import Seq2SeqTrainingArguments

from swift_train.deepspeed import deepspeed_config


def hf_training_args(args: Any, run_dir: Path, dtype: torch.dtype, has_eval: bool) -> Seq2SeqTrainingArguments:
    known = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    values = {name: getattr(args, name) for name in specs(TrainerArguments) if name in known}
    values.update(
        output_dir=str(run_dir),
        remove_unused_columns=False,  # our collator needs input_ids, labels, loss_scale, position_ids
        label_names=["labels"],
        seed=args.seed,
        data_seed=args.data_seed,
        bf16=dtype == torch.bfloat16 if args.bf16 is None else args.bf16,
        fp16=dtype == torch.float16 if args.fp16 is None else args.fp16,
        report_to=[] if args.report_to in (["none"], []) else args.report_to,
        gradient_checkpointing_kwargs=args.gradient_checkpointing_kwargs or {"use_reentrant": False},
        neftune_noise_alpha=args.neftune_noise_alpha or None,
        deepspeed=deepspeed_config(args.deepspeed),
        eval_strategy=args.eval_strategy if has_eval else "no",
        load_best_model_at_end=args.load_best_model_at_end and has_eval,
        predict_with_generate=args.predict_with_generate,
        # --use_liger is applied in sft.speed_up, with liger's fused cross-entropy off (our loss chunks).
        use_liger_kernel=False,
    )
    if "activation_checkpointing" in known:  # transformers 5 renamed these
        values["activation_checkpointing"] = values.pop("gradient_checkpointing")
        values["activation_checkpointing_kwargs"] = values.pop("gradient_checkpointing_kwargs")
    if not torch.cuda.is_available():
        values["dataloader_pin_memory"] = False  # nothing to pin for
    if args.ddp_backend is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # transformers leaves CPU processes unconnected unless told: gloo there, nccl on GPUs, hccl on NPUs.
        values["ddp_backend"] = default_ddp_backend()
    if "warmup_ratio" in known:
        values["warmup_ratio"] = args.warmup_ratio
    elif args.warmup_ratio and not args.warmup_steps:
        values["warmup_steps"] = args.warmup_ratio  # transformers 5 reads a value below 1 as a ratio
    if args.group_by_length and "train_sampling_strategy" in known:
        values["train_sampling_strategy"] = "group_by_length"
    if args.use_galore:
        values.update(galore_settings(args))
    if args.lisa_activated_layers and args.ddp_find_unused_parameters is None:
        values["ddp_find_unused_parameters"] = True  # LISA's frozen layers get no gradient in a step
    if args.logging_dir:
        os.environ["TENSORBOARD_LOGGING_DIR"] = args.logging_dir  # transformers 5 reads it from there
    return Seq2SeqTrainingArguments(**{k: v for k, v in values.items() if k in known})


def galore_settings(args: Any) -> dict[str, Any]:
    """GaLore through transformers' own optimizer (galore_torch): gradients of the targeted linear layers
    are projected to --galore_rank, re-projected every --galore_update_proj_gap steps."""
    optim_args = (f"rank={args.galore_rank},update_proj_gap={args.galore_update_proj_gap},"
                  f"scale={args.galore_scale},proj_type={args.galore_proj_type}")
    return {
        "optim": "galore_adamw_layerwise" if args.galore_optim_per_parameter else "galore_adamw",
        # The reference's default: the attention and MLP linear layers.
        "optim_target_modules": args.galore_target_modules or [r".*attn.*", r".*mlp.*"],
        "optim_args": optim_args,
    }


def project_embeddings_too(optimizer_kwargs: dict[str, Any], model: Any) -> dict[str, Any]:
    """--galore_with_embedding: transformers projects linear layers only; move the trainable embedding
    weights from the plain group into the projected one (their gradients are 2-D like a linear layer's)."""
    import torch

    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.weight.requires_grad}
    plain, projected = optimizer_kwargs["params"]
    moved = [p for p in plain["params"] if id(p) in embeddings]
    groups = [{**plain, "params": [p for p in plain["params"] if id(p) not in embeddings]},
              {**projected, "params": [*projected["params"], *moved]}]
    return {**optimizer_kwargs, "params": groups}
