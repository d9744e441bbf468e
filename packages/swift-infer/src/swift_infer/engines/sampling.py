"""Choosing the next token for many requests at once, each with its own sampling settings.

Temperature, top_k and top_p are applied as one batched tensor operation; repetition penalty
(rare) row by row. Log-probabilities are those of the model's own distribution (before
temperature and truncation), as OpenAI-compatible servers report them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


# Below this a temperature picks the most likely token anyway (vLLM's rule too); dividing by it
# only risks overflow.
GREEDY_BELOW = 1e-5


@dataclass
class SamplingParams:
    """What one request asks for. temperature 0 (or None, or below GREEDY_BELOW) means greedy."""

    max_new_tokens: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    stop_words: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return not self.temperature or self.temperature < GREEDY_BELOW


@dataclass
class TokenChoice:
    token: int
    logprob: float | None = None
    top: list[tuple[int, float]] = field(default_factory=list)


def _penalise_repeats(logits: torch.Tensor, history: torch.Tensor, penalty: float) -> None:
    """transformers' rule: seen tokens' positive logits are divided by the penalty, negative ones multiplied."""
    seen = logits[history]
    logits[history] = torch.where(seen > 0, seen / penalty, seen * penalty)


def _truncate(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Mask out everything outside each row's top_k and top_p (nucleus); at least one token survives."""
    sorted_logits, order = scaled.sort(dim=-1, descending=True)
    ranks = torch.arange(scaled.shape[-1], device=scaled.device).expand_as(sorted_logits)
    outside = ranks >= top_k[:, None]
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs  # probability mass strictly above each token
    outside |= before > top_p[:, None]
    outside[:, 0] = False
    sorted_logits = sorted_logits.masked_fill(outside, float("-inf"))
    return torch.empty_like(scaled).scatter_(-1, order, sorted_logits)


def _check_finite(bad_rows: torch.Tensor, what: str) -> None:
    if bool(bad_rows.any()):
        raise ValueError(f"{what} in row(s) {bad_rows.nonzero().flatten().tolist()}")


def choose_tokens(
    logits: torch.Tensor,
    params: list[SamplingParams],
    histories: list[list[int]],
    generators: list[torch.Generator | None],
) -> list[TokenChoice]:
    """One next token per row of `logits` [rows, vocab].

    Raises ValueError when a row's logits or probabilities are NaN, before torch.multinomial
    sees them: on CUDA it would fail with a device-side assert, which ends every later kernel
    of the process, not just this request.
    """
    # Penalties change the rows in place: a float32 model's own logits are copied first (.float() copies the rest).
    logits = logits.clone() if logits.dtype == torch.float32 else logits.float()
    _check_finite((torch.isnan(logits) | (logits == float("inf"))).any(-1), "the model's logits are NaN or +inf")
    logprobs = logits.log_softmax(-1) if any(p.logprobs for p in params) else None
    for row, (p, history) in enumerate(zip(params, histories)):
        if p.repetition_penalty not in (None, 1.0) and history:
            _penalise_repeats(logits[row], torch.tensor(history, device=logits.device), p.repetition_penalty)
    tokens = logits.argmax(-1)
    sampled = [row for row, p in enumerate(params) if not p.greedy]
    if sampled:
        vocab = logits.shape[-1]
        rows = torch.tensor(sampled, device=logits.device)
        temperature = torch.tensor([params[r].temperature for r in sampled], device=logits.device)
        top_k = torch.tensor([min(params[r].top_k or vocab, vocab) for r in sampled], device=logits.device)
        top_p = torch.tensor([params[r].top_p if params[r].top_p is not None else 1.0 for r in sampled], device=logits.device)
        # Relative to each row's best logit: the best scales to 0, the rest to at most 0, so no
        # temperature can overflow into inf (and NaN probabilities).
        chosen = logits[rows]
        scaled = (chosen - chosen.max(-1, keepdim=True).values) / temperature[:, None]
        probs = _truncate(scaled, top_k, top_p).softmax(-1)
        _check_finite(~torch.isfinite(probs).all(-1), "the sampling probabilities are not finite (temperature or "
                      "penalties out of range)")
        # Rows without a seed of their own draw together, in one call; seeded rows each from their generator.
        shared = [i for i, row in enumerate(sampled) if generators[row] is None]
        if shared:
            picked = torch.multinomial(probs[shared], 1).squeeze(-1)
            tokens[rows[shared]] = picked
        for i, row in enumerate(sampled):
            if generators[row] is not None:
                tokens[row] = torch.multinomial(probs[i], 1, generator=generators[row])[0]
    token_ids = tokens.tolist()  # one copy from the device, not one per row
    choices = []
    for row, p in enumerate(params):
        choice = TokenChoice(token_ids[row])
        if p.logprobs and logprobs is not None:
            choice.logprob = float(logprobs[row, choice.token])
            if p.top_logprobs:
                values, ids = logprobs[row].topk(p.top_logprobs)
                choice.top = list(zip(ids.tolist(), values.tolist()))
        choices.append(choice)
    return choices
