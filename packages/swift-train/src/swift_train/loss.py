"""Cross-entropy over the trained tokens, chunk by chunk, so the full [B, L, V] logits never exist.

For a 7B model at 8192 tokens the plain path holds bf16 logits, their float32 copy and both
gradients at once (about 7.5 GB). Here the model runs as usual (through whatever wraps it: DDP,
DeepSpeed, PEFT) but asks for the logits of one position only, a hook keeps the decoder's final
hidden states, and lm_head + float32 cross-entropy run on the trained positions (labels != -100)
a chunk at a time under activation checkpointing: the logits of one chunk exist at once, forward
and backward.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

IGNORE = -100
# Logit elements per chunk: 2**28 float32 values are 1 GiB, about 1.7k tokens of a 152k vocabulary.
CHUNK_LOGITS = 2**28
# Config fields that change logits after lm_head (Gemma's softcapping, Cohere's and Granite's
# scaling, Falcon-H1's multiplier): the head alone would give other logits, so those models keep
# the full-logits path.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "lm_head_multiplier",
                    "output_multiplier_scale")


@dataclass
class Head:
    """The two modules the chunked loss calls: the decoder body (hooked) and the output embedding."""

    decoder: torch.nn.Module
    output: torch.nn.Module
    chunk_tokens: int
    verified: bool = False  # the first step checks head(hidden) against the model's own logits


@dataclass
class TokenLoss:
    loss_sum: torch.Tensor  # sum over trained tokens of loss_scale * cross-entropy
    correct: torch.Tensor  # [B, L-1] bool: argmax == target at trained positions
    mask: torch.Tensor  # [B, L-1] bool: trained positions


def find_head(model: Any) -> Head | str:
    """The decoder and output embedding of a causal LM, or why the chunked loss is unsafe for it.

    `model` is the unwrapped model (PEFT's wrapper or a transformers model). LoRA layers are
    injected in place, so the hooked decoder still trains them; modules_to_save on lm_head is a
    wrapper module, called as it is, so the trainable copy is the one used.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if config is None or not hasattr(base, "get_output_embeddings") or not hasattr(base, "get_decoder"):
        return "not a transformers model"
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in LOGIT_TRANSFORMS:
        if getattr(text, name, None) not in (None, 1, 1.0):
            return f"the model applies {name} to its logits"
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return "its forward has no logits_to_keep"
    output, decoder = base.get_output_embeddings(), base.get_decoder()
    if output is None or decoder is None or decoder is base:
        return "no separate decoder and output embedding"
    inner = getattr(output, "original_module", None) or getattr(output, "base_layer", None) or output
    if not isinstance(inner, torch.nn.Linear):
        return f"its output embedding is a {type(inner).__name__}, not a linear layer"
    return Head(decoder, output, chunk_tokens=max(64, CHUNK_LOGITS // inner.out_features))


def hidden_states(model: Any, head: Head, inputs: dict[str, Any], **kwargs: Any) -> tuple[torch.Tensor, Any]:
    """Run `model` for the decoder's final hidden states; lm_head sees the last position only."""
    captured: list[Any] = []
    handle = head.decoder.register_forward_hook(lambda _module, _args, output: captured.append(output))
    try:
        outputs = model(**inputs, use_cache=False, logits_to_keep=1, **kwargs)
    finally:
        handle.remove()
    last = captured[-1]
    hidden = last.last_hidden_state if hasattr(last, "last_hidden_state") else last[0]
    return hidden, outputs


@torch.no_grad()
def matches_model(head: Head, hidden: torch.Tensor, outputs: Any) -> bool:
    """Whether lm_head on the hidden states gives the model's own logits (its last position).

    A safety net for heads `find_head` cannot see (a scaling in forward, a custom head).
    """
    ours = head.output(hidden[:, -1:]).float()
    theirs = outputs.logits[:, -1:].float()
    return ours.shape == theirs.shape and torch.allclose(ours, theirs, rtol=1e-3, atol=1e-3)


def chunked_token_loss(head: Head, hidden: torch.Tensor, labels: torch.Tensor,
                       loss_scale: torch.Tensor | None = None) -> TokenLoss:
    """Summed (weighted) float32 cross-entropy of the next-token targets, `head.chunk_tokens` at a time."""
    targets = labels[:, 1:].to(hidden.device)
    mask = targets != IGNORE
    selected = hidden[:, :-1][mask]  # [N, H]: only trained positions need logits
    wanted = targets[mask]
    weights = loss_scale[:, 1:].to(hidden.device)[mask].float() if loss_scale is not None else None
    total = selected[:0].float().sum()  # zero, but attached to the graph when nothing is trained
    argmax = []
    use_checkpoint = torch.is_grad_enabled()
    for start in range(0, len(wanted), head.chunk_tokens):
        piece = slice(start, start + head.chunk_tokens)
        args = (head.output, selected[piece], wanted[piece], weights[piece] if weights is not None else None)
        # Recomputed in backward, so a chunk's logits exist only while that chunk is processed.
        loss, best = checkpoint(_chunk_loss, *args, use_reentrant=False) if use_checkpoint else _chunk_loss(*args)
        total = total + loss
        argmax.append(best)
    correct = torch.zeros_like(mask)
    if argmax:
        correct[mask] = torch.cat(argmax) == wanted
    return TokenLoss(total, correct, mask)


def _chunk_loss(output: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor,
                weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    logits = output(hidden).float()
    per_token = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    if weights is not None:
        per_token = per_token * weights
    return per_token.sum(), logits.detach().argmax(-1)


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-token cross-entropy of already shifted logits (0 where the target is IGNORE), times `weights` if given."""
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE, reduction="none"
    ).view_as(targets)
    return per_token * weights.to(per_token) if weights is not None else per_token


def full_token_loss(logits: torch.Tensor, labels: torch.Tensor, loss_scale: torch.Tensor | None = None) -> TokenLoss:
    """The same sums from full logits: the fallback, and the reference the chunked path is tested against."""
    logits = logits[:, :-1]
    targets = labels[:, 1:].to(logits.device)
    per_token = token_cross_entropy(logits, targets, loss_scale[:, 1:] if loss_scale is not None else None)
    mask = targets != IGNORE
    with torch.no_grad():
        correct = (logits.argmax(-1) == targets) & mask
    return TokenLoss(per_token.sum(), correct, mask)


def sequence_logps(head: Head | None, hidden_or_logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor,
                   count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: the summed float32 log-probability of its trained tokens, and how many there are.

    `index` [rows, length] says which of the `count` sequences each position belongs to (a padded
    row is one sequence; a flattened row holds several). With a head, `hidden_or_logits` are the
    decoder's hidden states and lm_head runs chunk by chunk on the trained positions, as in
    chunked_token_loss; without one, they are the model's full logits.
    """
    targets = labels[:, 1:].to(hidden_or_logits.device)
    index = index.to(hidden_or_logits.device)
    # A flattened row: a sequence's first token is never predicted from the previous sequence's last one.
    mask = (targets != IGNORE) & (index[:, 1:] == index[:, :-1])
    owner = index[:, 1:][mask]
    selected = hidden_or_logits[:, :-1][mask]
    wanted = targets[mask]
    if head is None:
        token_logps = _logps(None, selected, wanted)
    else:
        pieces = []
        for start in range(0, len(wanted), head.chunk_tokens):
            piece = slice(start, start + head.chunk_tokens)
            args = (head.output, selected[piece], wanted[piece])
            pieces.append(checkpoint(_logps, *args, use_reentrant=False) if torch.is_grad_enabled() else _logps(*args))
        token_logps = torch.cat(pieces) if pieces else selected[:0, 0].float()
    sums = torch.zeros(count, device=token_logps.device, dtype=torch.float32).index_add(0, owner, token_logps)
    tokens = torch.bincount(owner, minlength=count)
    return sums, tokens


def _logps(output: torch.nn.Module | None, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = (output(hidden) if output is not None else hidden).float()
    return -torch.nn.functional.cross_entropy(logits, targets, reduction="none")  # no [N, V] log_softmax copy
