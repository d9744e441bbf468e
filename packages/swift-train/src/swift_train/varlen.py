"""Varlen attention for packed rows, without the flash-attn package.

A packed row (samples back to back, position_ids restarting at 0, no attention_mask) makes
transformers build a [B, 1, L, L] block-diagonal mask for sdpa, which is slow and O(L^2) in memory.
Registered as the attention implementation "swift_varlen", this instead runs PyTorch's own varlen
FlashAttention-2 kernel (`aten._flash_attention_forward`, differentiable) once over all samples,
with their bounds as cu_seqlens. On CPU, and for dtypes flash does not take, it runs SDPA per
sample: the reference the tests compare the CUDA path with. Padded batches (evaluation) and
generation with a cache are handed to transformers' sdpa unchanged.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

NAME = "swift_varlen"


def unsupported(config: Any) -> str | None:
    """Why a model cannot use varlen attention, or None when it can."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(text, "attn_logit_softcapping", None):
        return "it softcaps attention logits"
    if getattr(text, "use_sliding_window", True) and getattr(text, "sliding_window", None):
        return "it uses sliding-window attention"
    if not getattr(text, "is_causal", True) or getattr(text, "is_encoder_decoder", False):
        return "it is not a causal decoder"
    return None


def enable(model: Any) -> None:
    """Register the implementation with transformers and switch `model` (a transformers model) to it."""
    register(model, NAME, attention_forward, _mask)


def register(model: Any, name: str, forward: Any, mask: Any) -> None:
    """Register an attention implementation and the mask builder it takes; switch `model` to it."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(name, forward)
    AttentionMaskInterface.register(name, mask)
    model.set_attn_implementation(name)


def seq_bounds(position_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """cu_seqlens (int32, [samples + 1]) and the longest sample of flattened rows.

    A sample starts where position_ids == 0 and at the start of every row.
    """
    rows, length = position_ids.shape[0], position_ids.shape[-1]
    starts = position_ids.reshape(rows, length) == 0
    starts[:, 0] = True
    flat = starts.reshape(-1).nonzero().flatten()
    cu = torch.cat([flat, flat.new_tensor([rows * length])]).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def batch_kwargs(model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """Sample bounds for the model's forward, computed once a step rather than in every layer.

    Empty unless `model` uses varlen attention and the batch is packed (position_ids, no attention_mask).
    """
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) != NAME:
        return {}
    position_ids = inputs.get("position_ids")
    if position_ids is None or inputs.get("attention_mask") is not None:
        return {}
    cu, longest = seq_bounds(position_ids)
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def _mask(*, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    # Packed and unpadded rows need no mask (attention_forward reads the sample bounds); padded
    # rows get sdpa's mask, and attention_forward hands them to sdpa.
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(attention_mask=attention_mask, **kwargs)


def attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: q [B, H, L, D], k/v [B, Hkv, L, D] -> ([B, L, H, D], None)."""
    if attention_mask is not None or query.shape[2] != key.shape[2]:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if getattr(module, "sliding_window", None) or not getattr(module, "is_causal", True):
        raise ValueError(f"{NAME} attention supports causal attention without a sliding window only")
    batch, heads, length, dim = query.shape
    cu, longest = kwargs.get("cu_seq_lens_q"), kwargs.get("max_length_q")
    if cu is None:
        position_ids = kwargs.get("position_ids")
        if position_ids is None or position_ids.dim() != 2:
            position_ids = torch.arange(length, device=query.device).expand(batch, length)
        cu, longest = seq_bounds(position_ids.expand(batch, length))
    # [B, H, L, D] -> [B * L, H, D]: the token-major layout varlen kernels take.
    q, k, v = (t.transpose(1, 2).reshape(batch * length, t.shape[1], dim) for t in (query, key, value))
    scale = scaling if scaling is not None else dim**-0.5
    if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        out = flash_varlen(q, k, v, cu.to(q.device, torch.int32), int(longest), dropout, scale)
    else:
        out = sdpa_varlen(q, k, v, cu, dropout, scale)
    return out.view(batch, length, heads, dim), None


def flash_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, longest: int,
                 dropout: float, scale: float) -> torch.Tensor:
    """PyTorch's built-in FlashAttention-2, causal within each sample (CUDA, fp16/bf16 only).

    Like flash-attn, it takes fewer key/value heads than query heads (GQA) as they are.
    """
    out, *_ = torch.ops.aten._flash_attention_forward(
        q, k, v, cu, cu, longest, longest, dropout, True, False, scale=scale
    )
    return out


def sdpa_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, dropout: float,
                scale: float) -> torch.Tensor:
    """The same attention, one SDPA call per sample: any device and dtype, and the tests' reference."""
    groups = q.shape[1] // k.shape[1]
    pieces = []
    bounds = cu.tolist()
    for start, end in itertools.pairwise(bounds):
        qs, ks, vs = (t[start:end].transpose(0, 1) for t in (q, k, v))  # [H, n, D]
        if groups > 1:
            ks, vs = ks.repeat_interleave(groups, dim=0), vs.repeat_interleave(groups, dim=0)
        out = torch.nn.functional.scaled_dot_product_attention(qs, ks, vs, dropout_p=dropout, is_causal=True,
                                                               scale=scale)
        pieces.append(out.transpose(0, 1))
    return torch.cat(pieces)
