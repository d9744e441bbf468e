"""The online RL objectives on plain tensors: GRPO's group advantages and clipped loss, PPO's GAE and losses.

Shapes: n sequences, T completion tokens; `mask` [n, T] is 1 on real completion tokens. Log-probs are
per token, [n, T]. Conventions follow the papers and TRL's trainers: GRPO (Shao et al. 2024, DeepSeekMath)
with the k3 KL estimator and each sequence's loss averaged over its tokens; PPO (Ouyang et al. 2022, as
TRL's PPOTrainer had it) with a per-token KL penalty folded into the rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Added to the group's standard deviation: a group whose rewards barely differ gets advantages near 0
# instead of noise blown up to +-1.
STD_EPSILON = 1e-4


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def group_advantages(rewards: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each completion's reward relative to its group's (the other completions of its prompt).

    Returns the advantages [n] and each group's reward standard deviation [n / group_size]; a group
    whose std is 0 got the same reward everywhere and contributes no gradient.
    """
    grouped = rewards.view(-1, group_size)
    mean = grouped.mean(1, keepdim=True)
    std = grouped.std(1, keepdim=True) if group_size > 1 else torch.zeros_like(mean)
    return ((grouped - mean) / (std + STD_EPSILON)).view(-1), std.view(-1)


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || reference) estimate exp(r - p) - (r - p) - 1: unbiased, never negative."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


@dataclass
class GrpoLoss:
    loss: torch.Tensor
    kl: torch.Tensor  # mean per-token KL to the reference (0 with beta 0)
    clip_ratio: torch.Tensor  # share of tokens whose clipped objective was the smaller one


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor | None, ref_logps: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, beta: float, epsilon: float) -> GrpoLoss:
    """The clipped surrogate with a KL penalty, averaged over each sequence's tokens, then over sequences.

    `old_logps` None means the completions were sampled by these very weights (num_iterations 1): the
    ratio is exactly 1 in value and only its gradient matters.
    """
    old = logps.detach() if old_logps is None else old_logps
    ratio = torch.exp(logps - old)
    unclipped = ratio * advantages[:, None]
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * advantages[:, None]
    per_token = -torch.min(unclipped, clipped)
    kl = torch.zeros((), device=logps.device)
    if beta and ref_logps is not None:
        token_kl = k3_kl(logps, ref_logps)
        per_token = per_token + beta * token_kl
        kl = masked_mean(token_kl.detach(), mask)
    loss = masked_mean(per_token, mask, dim=1).mean()
    clip_ratio = masked_mean((clipped < unclipped).float(), mask)
    return GrpoLoss(loss, kl, clip_ratio)


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    return whitened if shift_mean else whitened + mean


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each completion's tokens; returns (advantages, returns).

    Tokens past a completion's end (mask 0) have value and reward 0, so the last real token bootstraps
    from nothing.
    """
    values, rewards = values * mask, rewards * mask  # past the end: nothing to earn, nothing to bootstrap from
    last = torch.zeros_like(values[:, 0])
    advantages = torch.zeros_like(values)
    for t in reversed(range(values.shape[1])):
        next_value = values[:, t + 1] if t + 1 < values.shape[1] else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        advantages[:, t] = last
    advantages = advantages * mask
    return advantages, advantages + values


def ppo_rewards(score: torch.Tensor, logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor,
                kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: -kl_coef * (logp - ref_logp) everywhere, plus the sequence's score on its last token.

    Returns (rewards, per-token KL) [n, T].
    """
    kl = (logps - ref_logps) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(1) - 1).clamp(min=0).long()
    rewards[torch.arange(len(score)), last] += score
    return rewards * mask, kl


@dataclass
class PpoLoss:
    loss: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    clip_ratio: torch.Tensor
    value_clip_ratio: torch.Tensor
    approx_kl: torch.Tensor


def ppo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, values: torch.Tensor,
             old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, cliprange: float,
             cliprange_value: float, vf_coef: float) -> PpoLoss:
    """Clipped policy loss plus vf_coef times the clipped value loss (both token means over `mask`)."""
    ratio = torch.exp(logps - old_logps)
    policy_losses = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - cliprange, 1 + cliprange))
    policy_loss = masked_mean(policy_losses, mask)
    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    value_losses = torch.max((values - returns) ** 2, (clipped_values - returns) ** 2)
    value_loss = 0.5 * masked_mean(value_losses, mask)
    return PpoLoss(
        loss=policy_loss + vf_coef * value_loss,
        policy_loss=policy_loss.detach(),
        value_loss=value_loss.detach(),
        clip_ratio=masked_mean((policy_losses > -advantages * ratio).float(), mask).detach(),
        value_clip_ratio=masked_mean(((clipped_values - returns) ** 2 > (values - returns) ** 2).float(), mask).detach(),
        approx_kl=(0.5 * masked_mean((logps - old_logps) ** 2, mask)).detach(),
    )
