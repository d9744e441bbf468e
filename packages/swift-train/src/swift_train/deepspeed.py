"""Built-in DeepSpeed configs for --deepspeed zero0 | zero1 | zero2 | zero3 | zero2_offload | zero3_offload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

_COMMON: dict[str, Any] = {
    "fp16": {"enabled": "auto"},
    "bf16": {"enabled": "auto"},
    "train_micro_batch_size_per_gpu": "auto",
    "train_batch_size": "auto",
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "steps_per_print": 2000,
    "wall_clock_breakdown": False,
}
_ZERO3_EXTRA = {"stage3_gather_16bit_weights_on_model_save": True, "stage3_prefetch_bucket_size": "auto",
                "stage3_param_persistence_threshold": "auto", "reduce_bucket_size": "auto", "sub_group_size": 1e9}
_OFFLOAD = {"device": "cpu", "pin_memory": True}


def preset(name: str) -> dict[str, Any]:
    stage = int(name[4])
    zero: dict[str, Any] = {"stage": stage}
    if stage in (1, 2):
        zero.update(overlap_comm=True, contiguous_gradients=True, reduce_bucket_size="auto")
    if stage == 3:
        zero.update(overlap_comm=True, contiguous_gradients=True, **_ZERO3_EXTRA)
    if name.endswith("_offload"):
        zero["offload_optimizer"] = dict(_OFFLOAD)
        if stage == 3:
            zero["offload_param"] = dict(_OFFLOAD)
    return {**_COMMON, "zero_optimization": zero}


def deepspeed_config(value: str | dict | None) -> dict[str, Any] | None:
    """The config dict for --deepspeed (a preset name, a JSON file or an inline object)."""
    if value is None:
        return None
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise ArgumentError("--deepspeed needs DeepSpeed: pip install 'swift-train[deepspeed]'") from None
    if isinstance(value, dict):
        return value
    if value.startswith("zero"):
        return preset(value)
    try:
        return json.loads(Path(value).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArgumentError(f"--deepspeed {value}: cannot read the config ({exc})") from None
