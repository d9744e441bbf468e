"""--train_type longlora: LoRA trained with shifted sparse attention (S²-Attn, Chen et al., LongLoRA).

While training, each sequence is cut into 4 groups (the paper's group size ratio 1/4) and attention
runs within a group only, which costs a quarter of full attention. Half of the heads see the groups
shifted by half a group, so information still flows between neighbouring groups. Evaluation and
inference use full attention: the trained LoRA adapter is a plain one, served and merged like any other.
The context itself is extended with --rope_scaling and --max_length, as the paper does.
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "swift_s2attn"
GROUPS = 4  # LongLoRA's group_size_ratio = 1/4
FAMILIES = ("llama", "mistral", "qwen2", "qwen3")  # decoders whose attention goes through transformers' registry


def unsupported(config: Any) -> str | None:
    """Why a model cannot train with S²-Attn, or None."""
    from swift_train import varlen

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if text.model_type not in FAMILIES:
        return f"it is a {text.model_type} model; longlora supports {', '.join(FAMILIES)}"
    return varlen.unsupported(config)  # sliding windows and soft-capped logits: groups of full attention


def enable(model: Any) -> None:
    """Register S²-Attn with transformers and switch `model` to it (padded batches get sdpa's masks)."""
    from transformers.masking_utils import sdpa_mask

    from swift_train import varlen

    varlen.register(model, NAME, attention_forward, sdpa_mask)


def attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: q [B, H, L, D], k/v [B, Hkv, L, D] -> ([B, L, H, D], None)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    length = query.shape[2]
    if not module.training or key.shape[2] != length or length < 2 * GROUPS:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    out = shifted_group_attention(query, key, value, _valid_keys(attention_mask, query), dropout,
                                  scaling if scaling is not None else query.shape[-1] ** -0.5)
    return out, None


def shifted_group_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, valid: torch.Tensor,
                            dropout: float, scale: float) -> torch.Tensor:
    """S²-Attn over q [B, H, L, D], k/v [B, Hkv, L, D] and key validity [B, L] (False: padding) -> [B, L, H, D].

    The length is padded to a multiple of GROUPS (the padding is invalid as keys); the second half of
    the heads is rolled back by half a group before grouping and forward again after, as in the paper.
    Work happens in the [B, L, H, D] layout the projections produced, so grouping is a view, not a copy.
    """
    from transformers.integrations.sdpa_attention import repeat_kv

    batch, heads, length, dim = query.shape
    if key.shape[1] % 2:  # the key/value heads must split into the same halves as the query heads
        key, value = repeat_kv(key, heads // key.shape[1]), repeat_kv(value, heads // key.shape[1])
    q, k, v = (t.transpose(1, 2) for t in (query, key, value))  # [B, L, H, D]
    padded = -(-length // GROUPS) * GROUPS
    if padded > length:
        q, k, v = (torch.nn.functional.pad(t, (0, 0, 0, 0, 0, padded - length)) for t in (q, k, v))
        valid = torch.nn.functional.pad(valid, (0, padded - length), value=False)
    size = padded // GROUPS
    halves = []
    for half, shift in ((0, 0), (1, size // 2)):
        parts = [t[:, :, half * t.shape[2] // 2:(half + 1) * t.shape[2] // 2] for t in (q, k, v)]
        if shift:
            parts = [t.roll(-shift, dims=1) for t in parts]
        out = _group_attention(*parts, valid.roll(-shift, dims=1), size, dropout, scale, wrapped=bool(shift))
        halves.append(out.roll(shift, dims=1) if shift else out)
    return torch.cat(halves, dim=2)[:, :length]


def _group_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor, size: int,
                     dropout: float, scale: float, wrapped: bool = False) -> torch.Tensor:
    """Causal attention within consecutive groups of `size` positions: [B, L, h, D] -> [B, L, h, D].

    `wrapped`: the rows were rolled, so the last group holds the sequence's last size/2 tokens followed by
    its first size/2; those first tokens must not see the last ones (the original LongLoRA lets them: a
    look at the future). That group is computed again with a mask that forbids it.
    """
    batch, length, heads, dim = q.shape
    groups = length // size
    # [B, L, h, D] -> [B * G, h, S, D]: 4-D views the fused (flash / memory-efficient) kernels take.
    flat = [t.reshape(batch * groups, size, t.shape[2], dim).transpose(1, 2) for t in (q, k, v)]
    causal = torch.ones(size, size, dtype=torch.bool, device=q.device).tril()
    if bool(valid.all()):  # no padding: the plain causal kernel (flash on GPU, GQA native), no mask in memory
        out = _sdpa(*flat, None, dropout, scale)
    else:
        out = _sdpa(*flat, causal & valid.reshape(batch * groups, 1, 1, size), dropout, scale)
    out = out.reshape(batch, groups, heads, size, dim)
    if wrapped:
        last = [t.reshape(batch, groups, size, t.shape[2], dim)[:, -1].transpose(1, 2) for t in (q, k, v)]
        head_after_tail = causal.clone()
        head_after_tail[size // 2:, :size // 2] = False
        mask = head_after_tail & valid.reshape(batch, groups, size)[:, -1][:, None, None, :]
        out = torch.cat([out[:, :-1], _sdpa(*last, mask, dropout, scale)[:, None]], dim=1)
    return out.transpose(2, 3).reshape(batch, length, heads, dim)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dropout: float,
          scale: float) -> torch.Tensor:
    """Causal sdpa over [N, h, S, D] (k/v may have fewer heads), or with a boolean mask of allowed keys."""
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if mask is None:
        return sdpa(q, k, v, dropout_p=dropout, is_causal=True, scale=scale, enable_gqa=k.shape[1] != q.shape[1])
    repeat = q.shape[1] // k.shape[1]
    if repeat > 1:
        k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
    mask = mask | torch.eye(q.shape[2], dtype=torch.bool, device=q.device)  # padding sees itself: no empty row
    return sdpa(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale)


def _valid_keys(attention_mask: torch.Tensor | None, query: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: which positions are tokens rather than padding.

    sdpa's mask is [B, 1, L, L] (True: attend) or None when nothing is padded; the last query row of
    a causal mask over right-padded rows attends to exactly the row's tokens.
    """
    batch, _, length, _ = query.shape
    if attention_mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=query.device)
    last = attention_mask[:, 0, -1, :length]
    return last if last.dtype == torch.bool else last == 0  # an additive float mask: 0 where allowed
