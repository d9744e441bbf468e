"""Trainer arguments (reference: "Seq2SeqTrainer Arguments").

These mirror transformers' `Seq2SeqTrainingArguments` with the reference's defaults; the training
package passes them through by name, and its tests check that every name here exists there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swift_args.fields import arg, range_problems

DEEPSPEED_PRESETS = ("zero0", "zero1", "zero2", "zero3", "zero2_offload", "zero3_offload")
STRATEGIES = Literal["no", "steps", "epoch"]
# The values transformers' Trainer can run with; outside them it fails late or trains nothing.
_RANGES = {
    "per_device_train_batch_size": "[1, inf)", "per_device_eval_batch_size": "[1, inf)",
    "gradient_accumulation_steps": "[1, inf)", "save_steps": "[1, inf)", "logging_steps": "[1, inf)",
    "eval_steps": "[1, inf)", "save_total_limit": "[1, inf)", "gradient_checkpointing_layers": "[0, inf)",
    "learning_rate": "(0, inf)", "warmup_ratio": "[0, 1)", "warmup_steps": "[0, inf)", "weight_decay": "[0, inf)",
    "adam_beta1": "[0, 1)", "adam_beta2": "[0, 1)", "adam_epsilon": "[0, inf)", "max_grad_norm": "[0, inf)",
    "dataloader_num_workers": "[0, inf)", "neftune_noise_alpha": "[0, inf)", "label_smoothing_factor": "[0, 1)",
    "ddp_timeout": "[1, inf)", "eval_accumulation_steps": "[1, inf)", "torch_empty_cache_steps": "[1, inf)",
}  # fmt: skip


@dataclass(kw_only=True)
class TrainerArguments:
    GROUP = "trainer"

    output_dir: str | None = arg(None, hot=True, help="Where runs are written. None: output/<model name>.")
    overwrite_output_dir: bool = arg(False, help="Allow writing into an existing output_dir.")
    gradient_checkpointing: bool = arg(True, hot=True, help="Recompute activations in backward to save memory.")
    gradient_checkpointing_layers: int | None = arg(
        None, help="Recompute only the first N decoder layers in backward; the rest keep their activations "
        "(faster, more memory). None: all layers. Not in the reference."
    )
    gradient_checkpointing_kwargs: dict | None = arg(
        None, hot=True, help="torch.utils.checkpoint options, e.g. '{\"use_reentrant\": false}'."
    )
    deepspeed: str | dict | None = arg(
        None,
        hot=True,
        help="DeepSpeed: " + ", ".join(DEEPSPEED_PRESETS) + " (built-in configs), a JSON file or a JSON object.",
    )
    fsdp: str = arg("", help="FSDP options passed to accelerate, e.g. 'full_shard auto_wrap'.")
    fsdp_config: str | dict | None = arg(None, help="FSDP config file or JSON object.")
    per_device_train_batch_size: int = arg(1, hot=True, help="Training batch size per device.")
    per_device_eval_batch_size: int = arg(1, hot=True, help="Evaluation batch size per device.")
    gradient_accumulation_steps: int = arg(1, hot=True, help="Gradient accumulation steps.")
    learning_rate: float | None = arg(
        None, hot=True, help="Learning rate. None: 1e-5 for full training, 1e-4 for LoRA and other tuners."
    )
    weight_decay: float = arg(0.1, help="Weight decay.")
    optim: str = arg("adamw_torch", help="Optimizer name as transformers knows it.")
    adam_beta1: float = arg(0.9, help="AdamW beta1.")
    adam_beta2: float = arg(0.999, help="AdamW beta2.")
    adam_epsilon: float = arg(1e-8, help="AdamW epsilon.")
    max_grad_norm: float = arg(1.0, help="Gradient clipping norm.")
    lr_scheduler_type: str = arg("cosine", help="LR scheduler (cosine, linear, constant, ...).")
    lr_scheduler_kwargs: dict | None = arg(None, help="Extra LR scheduler options as JSON.")
    warmup_ratio: float = arg(0.0, hot=True, help="Share of steps used for LR warmup.")
    warmup_steps: int = arg(0, help="Warmup steps; overrides warmup_ratio when > 0.")
    num_train_epochs: float = arg(3.0, hot=True, help="Training epochs.")
    max_steps: int = arg(-1, help="Total training steps; overrides epochs when > 0 (needed with streaming).")
    logging_strategy: STRATEGIES = arg("steps", help="When to log.")
    logging_steps: int = arg(5, help="Log every N steps.")
    logging_first_step: bool = arg(True, help="Log the first step.")
    logging_dir: str | None = arg(None, help="Tensorboard directory. None: <run dir>/runs.")
    report_to: list[str] = arg(
        factory=lambda: ["tensorboard"],
        split_commas=True,
        help="Where to report: tensorboard, wandb, swanlab, all, none.",
    )
    run_name: str | None = arg(None, help="Run name for trackers.")
    disable_tqdm: bool | None = arg(None, help="Disable the progress bar.")
    save_strategy: STRATEGIES = arg("steps", hot=True, help="When to save checkpoints: no, steps or epoch.")
    save_steps: int = arg(500, hot=True, help="Save every N steps.")
    save_total_limit: int | None = arg(
        None, hot=True, help="Keep at most N checkpoints (never deleting the best). None: keep all."
    )
    save_on_each_node: bool = arg(False, help="Save on every node in multi-node training.")
    save_only_model: bool = arg(False, help="Save only weights (no optimizer, scheduler or RNG state).")
    save_safetensors: bool = arg(True, help="Save weights as safetensors.")
    eval_strategy: STRATEGIES | None = arg(None, hot=True, help="When to evaluate. None: follows save_strategy.")
    eval_steps: int | None = arg(None, hot=True, help="Evaluate every N steps. None: follows save_steps.")
    eval_on_start: bool = arg(False, help="Evaluate before the first training step.")
    eval_accumulation_steps: int | None = arg(None, help="Move eval predictions to CPU every N steps.")
    predict_with_generate: bool = arg(False, help="Evaluate by generating instead of by loss.")
    metric_for_best_model: str | None = arg(
        None, help="Metric that picks the best checkpoint. None: loss; with predict_with_generate, rouge-l "
        "(--metric nlg) or acc (--metric acc), and loss for a metric plugin."
    )
    greater_is_better: bool | None = arg(
        None, help="Whether a larger metric is better. None: false for loss metrics, else true."
    )
    load_best_model_at_end: bool = arg(False, help="Load the best checkpoint when training ends.")
    resume_from_checkpoint: str | None = arg(
        None, hot=True, help="Checkpoint to resume from (weights, optimizer, scheduler, RNG, data position)."
    )
    ignore_data_skip: bool = arg(False, help="On resume, do not skip the batches already seen.")
    ddp_backend: Literal["nccl", "gloo", "mpi", "ccl", "hccl", "cncl", "mccl"] | None = arg(
        None, hot=True, help="Distributed backend. None: nccl on GPU, gloo on CPU."
    )
    ddp_find_unused_parameters: bool | None = arg(None, hot=True, help="DDP find_unused_parameters.")
    ddp_timeout: int = arg(1800, help="Distributed timeout in seconds.")
    dataloader_num_workers: int = arg(0, hot=True, help="Data loader worker processes.")
    dataloader_pin_memory: bool = arg(True, help="Pin data loader memory.")
    dataloader_persistent_workers: bool = arg(False, help="Keep data loader workers between epochs.")
    dataloader_prefetch_factor: int | None = arg(None, help="Batches prefetched per worker.")
    neftune_noise_alpha: float = arg(0.0, hot=True, help="NEFTune noise; 0 disables it (5, 10, 15 are usual).")
    average_tokens_across_devices: bool = arg(
        False, help="All-reduce the token count so the loss is averaged over all devices' tokens."
    )
    bf16: bool | None = arg(None, help="bf16 mixed precision. None: from torch_dtype.")
    fp16: bool | None = arg(None, help="fp16 mixed precision. None: from torch_dtype.")
    tf32: bool | None = arg(None, help="Allow TF32 matmuls on Ampere and newer GPUs.")
    torch_compile: bool = arg(False, help="Compile the model with torch.compile.")
    group_by_length: bool = arg(False, help="Batch samples of similar length together.")
    label_smoothing_factor: float = arg(0.0, help="Label smoothing.")
    full_determinism: bool = arg(False, help="Make training fully deterministic (slower).")
    auto_find_batch_size: bool = arg(False, help="Halve the batch size on out-of-memory and retry.")
    torch_empty_cache_steps: int | None = arg(None, help="Empty the CUDA cache every N steps.")
    push_to_hub: bool = arg(False, help="Push checkpoints to the hub.")
    hub_model_id: str | None = arg(None, help="Hub repo to push to.")
    hub_private_repo: bool = arg(False, help="Make the hub repo private.")
    hub_strategy: Literal["end", "every_save", "checkpoint", "all_checkpoints"] = arg(
        "every_save", help="What to push and when."
    )

    def _resolve(self, passed: set[str]) -> None:
        if self.eval_strategy is None:
            self.eval_strategy = self.save_strategy
        if self.eval_steps is None:
            self.eval_steps = self.save_steps
        if self.metric_for_best_model is None:
            # Generated answers are scored by --metric: rouge-l for nlg (the default), acc for acc; a metric
            # plugin's keys are its own, so the loss decides the best checkpoint unless told otherwise.
            metric = getattr(self, "metric", None)
            by_metric = {None: "rouge-l", "nlg": "rouge-l", "acc": "acc"}
            self.metric_for_best_model = by_metric.get(metric, "loss") if self.predict_with_generate else "loss"
        if self.greater_is_better is None:
            self.greater_is_better = "loss" not in self.metric_for_best_model

    def _check(self) -> list[str]:
        problems = range_problems(self, _RANGES)
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append(f"--max_steps must be at least 1, or -1 to train --num_train_epochs, got {self.max_steps}")
        if self.max_steps <= 0 and not self.num_train_epochs > 0:  # `not >` refuses NaN too
            problems.append(f"--num_train_epochs must be positive (or set --max_steps), got {self.num_train_epochs}")
        if isinstance(self.deepspeed, str) and not (
            self.deepspeed in DEEPSPEED_PRESETS or self.deepspeed.endswith(".json")
        ):
            problems.append(
                f"--deepspeed '{self.deepspeed}' is neither a built-in config ("
                + ", ".join(DEEPSPEED_PRESETS)
                + ") nor a .json file"
            )
        if self.deepspeed and self.fsdp:
            problems.append("--deepspeed and --fsdp cannot be used together; choose one")
        return problems
