"""Ulysses sequence parallelism (`--sequence_parallel_size N`): one sequence split along its length over N ranks.

Consecutive ranks form a group of N; the groups are the data-parallel replicas (world = dp * N).
Every rank of a group reads the same batch and keeps 1/N of its positions, so activations, logits
and the loss cost 1/N of an unsplit run's memory. Attention is the one place positions meet: an
all-to-all turns [B, H, L/N, D] (all heads, a shard of positions) into [B, H/N, L, D] (a share of
the heads, all positions), attention runs over the whole sequence (varlen.attention_forward, with
sample bounds from the full position_ids and padding mask), and the reverse all-to-all brings the
output back to [B, L/N, H, D]. Labels are shifted before splitting, so no shard needs its
neighbour's first token for its own loss.

Gradients: each rank's backward runs through the all-to-alls into the other ranks' shards, so the
sum of a group's gradients is the gradient of the group's whole-sequence loss. DDP averages over
all dp * N ranks where an unsplit run averages over dp: the trainer multiplies each shard's loss by N.

Registered as the attention implementation "swift_ulysses"; a forward without the split's
arguments (evaluation, generation: each rank runs its own batch whole) is plain varlen/sdpa.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from swift_train import varlen

NAME = "swift_ulysses"
KWARG = "ulysses"  # the model-forward argument that carries a Split down to every attention layer
IGNORE = -100
SPLIT_KEYS = {"input_ids", "labels", "loss_scale", "attention_mask", "position_ids"}


@dataclass(frozen=True)
class Groups:
    """This rank's place: its sequence-parallel group and its data-parallel replica."""

    size: int  # N: ranks sharing one sequence
    rank: int  # this rank's shard within the group
    group: Any  # torch.distributed ProcessGroup of the N ranks
    dp_size: int
    dp_rank: int

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """`values` summed over the group (a copy; autograd does not see it)."""
        total = values.detach().clone()
        dist.all_reduce(total, group=self.group)
        return total


@dataclass(frozen=True)
class Split:
    """What every attention layer needs for one step, computed once from the whole batch."""

    group: Any
    cu_seqlens: torch.Tensor  # int32 bounds of the causal segments of the flattened full-length rows
    longest: int


def unsupported(config: Any, size: int) -> str | None:
    """Why a model cannot be split over `size` ranks, or None when it can."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = getattr(text, "num_attention_heads", None)
    if not heads or heads % size:
        return f"the model's {heads} attention heads do not split evenly over {size} ranks"
    reason = varlen.unsupported(config)
    return f"the whole-sequence attention it needs is off for this model: {reason}" if reason else None


def setup(size: int) -> Groups:
    """The process groups: ranks [0, N), [N, 2N), ... each share a sequence. Every rank must call this."""
    world, rank = dist.get_world_size(), dist.get_rank()
    if world % size:
        raise ValueError(f"--sequence_parallel_size {size} must divide the {world} processes")
    mine = None
    for start in range(0, world, size):  # new_group is collective: every rank creates every group, in order
        ranks = list(range(start, start + size))
        group = dist.new_group(ranks)
        if rank in ranks:
            mine = group
    return Groups(size=size, rank=rank % size, group=mine, dp_size=world // size, dp_rank=rank // size)


def enable(model: Any) -> None:
    """Register the implementation with transformers and switch `model` (a transformers model) to it."""
    varlen.register(model, NAME, attention_forward, _mask)


def _mask(*, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    # A split forward gets no attention_mask (its Split holds the bounds); an unsplit padded batch gets sdpa's mask.
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(attention_mask=attention_mask, **kwargs)


# -- the all-to-all --------------------------------------------------------------------------------


def _exchange(x: torch.Tensor, scatter_dim: int, gather_dim: int, group: Any) -> torch.Tensor:
    size = dist.get_world_size(group)
    send = torch.stack(x.chunk(size, dim=scatter_dim))  # [N, ...]: piece i goes to rank i
    received = torch.empty_like(send)
    dist.all_to_all_single(received, send, group=group)
    return torch.cat(received.unbind(0), dim=gather_dim)  # rank i's piece lands i-th along gather_dim


class _AllToAll(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scatter_dim: int, gather_dim: int, group: Any) -> torch.Tensor:
        ctx.dims, ctx.group = (scatter_dim, gather_dim), group
        return _exchange(x, scatter_dim, gather_dim, group)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        scatter_dim, gather_dim = ctx.dims
        # The forward only moves elements between ranks; its transpose moves them back.
        return _exchange(grad.contiguous(), gather_dim, scatter_dim, ctx.group), None, None, None


def all_to_all(x: torch.Tensor, scatter_dim: int, gather_dim: int, group: Any) -> torch.Tensor:
    """Split `x` into N pieces along `scatter_dim`, send piece i to rank i of `group`, and concatenate
    what arrives along `gather_dim`. Differentiable: the backward is the reverse exchange."""
    size = dist.get_world_size(group)
    if x.shape[scatter_dim] % size:
        raise ValueError(f"{x.shape[scatter_dim]} does not split over {size} ranks")
    return _AllToAll.apply(x, scatter_dim, gather_dim, group)


def _repeat_kv_heads(t: torch.Tensor, size: int) -> torch.Tensor:
    """Key/value heads repeated just enough to split over `size` ranks; each query head keeps its key/value head."""
    heads = t.shape[1]
    if heads % size == 0:
        return t
    return t.repeat_interleave(size // math.gcd(heads, size), dim=1)


def attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      ulysses: Split | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: q [B, H, L/N, D], k/v [B, Hkv, L/N, D] -> ([B, L/N, H, D], None)."""
    if ulysses is None:  # unsplit (evaluation, generation): this rank's batch as it is
        return varlen.attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                        **kwargs)
    group = ulysses.group
    size = dist.get_world_size(group)
    if query.shape[1] % size:
        raise ValueError(f"{NAME}: {query.shape[1]} attention heads do not split over {size} ranks")
    key, value = _repeat_kv_heads(key, size), _repeat_kv_heads(value, size)
    q, k, v = (all_to_all(t, 1, 2, group) for t in (query, key, value))  # [B, heads/N, L, D]
    out, _ = varlen.attention_forward(module, q, k, v, None, dropout=dropout, scaling=scaling,
                                      cu_seq_lens_q=ulysses.cu_seqlens, max_length_q=ulysses.longest)
    return all_to_all(out, 1, 2, group), None  # [B, L, H/N, D] -> [B, L/N, H, D]


# -- the batch ---------------------------------------------------------------------------------------


def split_batch(inputs: dict[str, torch.Tensor], groups: Groups) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This rank's shard of a batch, and the model-forward arguments its attention layers need.

    The length is padded to a multiple of N (labels -100). Labels and loss_scale are shifted first
    (position i's target is token i + 1) and given back behind one IGNORE column, the layout loss.py
    shifts again: the loss then takes `pad_position(hidden or logits)`. position_ids stay global.
    """
    unknown = set(inputs) - SPLIT_KEYS
    if unknown:
        raise ValueError(f"sequence parallelism cannot split the batch's {', '.join(sorted(unknown))}")
    ids = inputs["input_ids"]
    rows, length = ids.shape
    width = -(-length // groups.size) * groups.size
    pad = width - length
    position_ids = inputs.get("position_ids")
    if position_ids is None:  # what the model takes for an unsplit batch
        position_ids = torch.arange(length, device=ids.device).expand(rows, length)
    # The padding forms a causal segment of its own at each row's end (positions from 0): nothing real attends to it.
    position_ids = torch.cat([position_ids, torch.arange(pad, device=ids.device).expand(rows, pad)], dim=1)
    mask = inputs.get("attention_mask")
    valid = F.pad(mask, (0, pad), value=0) if mask is not None else None
    cu, longest = segment_bounds(position_ids, valid)
    piece = slice(groups.rank * width // groups.size, (groups.rank + 1) * width // groups.size)
    shard = {
        "input_ids": F.pad(ids, (0, pad), value=0)[:, piece],
        "position_ids": position_ids[:, piece],
        "labels": _shifted_shard(inputs["labels"], pad, piece, IGNORE),
    }
    if inputs.get("loss_scale") is not None:
        shard["loss_scale"] = _shifted_shard(inputs["loss_scale"], pad, piece, 0)
    return shard, {KWARG: Split(groups.group, cu.to(ids.device), longest)}


def _shifted_shard(values: torch.Tensor, pad: int, piece: slice, fill: float) -> torch.Tensor:
    shifted = F.pad(values[:, 1:], (0, 1 + pad), value=fill)[:, piece]
    return F.pad(shifted, (1, 0), value=fill)  # loss.py pairs position i with labels[:, i + 1]


def pad_position(hidden: torch.Tensor) -> torch.Tensor:
    """[B, L/N, ...] with one zero position appended, so loss.py's shift pairs position i with shard target i."""
    return torch.cat([hidden, hidden.new_zeros(hidden.shape[0], 1, *hidden.shape[2:])], dim=1)


def segment_bounds(position_ids: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """cu_seqlens and the longest segment of full-length rows: a segment starts at each row's start, where
    position_ids restart at 0 (packed samples), and where the padding mask changes (padded rows)."""
    starts = position_ids == 0
    if valid is not None:
        starts[:, 1:] |= valid[:, 1:] != valid[:, :-1]
    # seq_bounds starts a segment at every 0 and at each row's start.
    return varlen.seq_bounds((~starts).long())


def group_tokens(labels: torch.Tensor) -> torch.Tensor:
    """The trained tokens of the unsplit batch: what the group's loss is divided by."""
    return (labels[:, 1:] != IGNORE).sum()


def share_batches(loader: Any, groups: Groups) -> None:
    """Make an accelerate-prepared DataLoader give every rank of a group the same batches.

    accelerate hands batch i to process i % world; as a data-parallel run over dp replicas, every
    group gets batch i % dp instead. (transformers neutralises this shard the same way for its
    rank-aware samplers.)
    """
    from accelerate.data_loader import BatchSamplerShard

    for shard in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
        if isinstance(shard, BatchSamplerShard):
            shard.num_processes, shard.process_index = groups.dp_size, groups.dp_rank
            return
    raise ValueError("sequence parallelism needs a map-style training dataset sharded by accelerate's batch sampler")
