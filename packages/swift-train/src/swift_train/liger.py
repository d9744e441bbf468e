"""--use_liger: liger-kernel's Triton RMSNorm, SwiGLU and RoPE kernels patched into a loaded model.

Its fused linear cross-entropy stays off: it replaces the model's forward, and swift's chunked
loss (loss.py) already keeps full logits from existing. liger-kernel is the optional extra
`swift-train[liger]`, imported here only.
"""

from __future__ import annotations

from typing import Any

import torch
from swift_args import ArgumentError

INSTALL = "pip install 'swift-train[liger]'"


def apply_liger(model: Any) -> str:
    """Patch `model` (a transformers model, before PEFT wraps it) in place; returns its model type.

    Raises ArgumentError without the package, without CUDA (Triton kernels), or for a model family
    liger-kernel does not know.
    """
    try:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except ImportError:
        raise ArgumentError(f"--use_liger true needs liger-kernel: {INSTALL}") from None
    if not torch.cuda.is_available():
        raise ArgumentError("--use_liger true needs a CUDA GPU: liger-kernel's kernels are Triton GPU kernels")
    model_type = getattr(model.config, "model_type", None)
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        raise ArgumentError(f"--use_liger true: liger-kernel has no kernels for model type {model_type!r}")
    _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False)
    return model_type
