"""The preference losses, written from their papers, on per-sequence log-probabilities.

Inputs are float32 tensors with one value per pair (or per KTO sequence):
  policy_chosen / policy_rejected   sum of the trained tokens' log-probabilities under the trained model
  reference_chosen / ...            the same under the reference model (dpo, kto)
  *_mean                            the per-token mean instead of the sum (orpo, simpo)

Each function returns (loss per pair, chosen reward, rejected reward); the rewards are what the
logs call rewards/chosen and rewards/rejected. The tests compare each against its formula written
out by hand, so neither a refactor nor a library update can change one silently.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from swift_args.schema.training import CPO_LOSS_TYPES, DPO_LOSS_TYPES

Tensor = torch.Tensor
__all__ = ["CPO_LOSS_TYPES", "DPO_LOSS_TYPES", "cpo", "dpo", "kto", "orpo", "reward_model", "simpo", "uses_mean"]


def dpo(policy_chosen: Tensor, policy_rejected: Tensor, reference_chosen: Tensor, reference_rejected: Tensor, *,
        beta: float, label_smoothing: float = 0.0, loss_type: str = "sigmoid") -> tuple[Tensor, Tensor, Tensor]:
    """Direct Preference Optimization (Rafailov et al. 2023) and its variants."""
    chosen_ratio = policy_chosen - reference_chosen
    rejected_ratio = policy_rejected - reference_rejected
    logits = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":  # conservative DPO when label_smoothing > 0 (Mitchell 2023)
        loss = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "robust":  # Chowdhury et al. 2024: unbiased under label noise
        loss = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
                + F.logsigmoid(-beta * logits) * label_smoothing) / (1 - 2 * label_smoothing)
    elif loss_type == "hinge":  # SLiC (Zhao et al. 2023)
        loss = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":  # Azar et al. 2023; the log-ratios are per-token means there (see uses_mean)
        loss = (logits - 1 / (2 * beta)) ** 2
    elif loss_type == "apo_zero":  # D'Oosterlinck et al. 2024: chosen up, rejected down
        loss = 1 - torch.sigmoid(beta * chosen_ratio) + torch.sigmoid(beta * rejected_ratio)
    elif loss_type == "apo_down":  # both down, chosen less
        loss = torch.sigmoid(beta * chosen_ratio) + 1 - torch.sigmoid(beta * logits)
    elif loss_type == "sppo_hard":  # Wu et al. 2024, with the hard preference label
        loss = (chosen_ratio - 0.5 / beta) ** 2 + (rejected_ratio + 0.5 / beta) ** 2
    elif loss_type == "nca_pair":  # Chen et al. 2024
        loss = (-F.logsigmoid(beta * chosen_ratio) - 0.5 * F.logsigmoid(-beta * chosen_ratio)
                - 0.5 * F.logsigmoid(-beta * rejected_ratio))
    elif loss_type == "exo_pair":  # Ji et al. 2024, eq. 16: KL(p_theta || p_label), label_smoothing = epsilon > 0
        eps = label_smoothing
        loss = (torch.sigmoid(beta * logits) * (F.logsigmoid(beta * logits) - math.log1p(-eps))
                + torch.sigmoid(-beta * logits) * (F.logsigmoid(-beta * logits) - math.log(eps)))
    elif loss_type in ("aot", "aot_unpaired"):  # Melnyk et al. 2024: sigmoid DPO on the batch's sorted margins
        if loss_type == "aot":
            delta = ((policy_chosen - policy_rejected).sort(dim=0).values
                     - (reference_chosen - reference_rejected).sort(dim=0).values)
        else:
            delta = chosen_ratio.sort(dim=0).values - rejected_ratio.sort(dim=0).values
        loss = -F.logsigmoid(beta * delta) * (1 - label_smoothing) - F.logsigmoid(-beta * delta) * label_smoothing
    elif loss_type == "sigmoid_norm":  # sigmoid DPO on length-normalised log-ratios (see uses_mean)
        loss = -F.logsigmoid(beta * logits)
    else:
        raise ValueError(f"unknown DPO loss_type {loss_type!r}")
    return loss, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def uses_mean(rlhf_type: str, loss_type: str | None) -> bool:
    """Whether the algorithm compares per-token mean log-probabilities rather than sums."""
    return rlhf_type in ("orpo", "simpo") or loss_type in ("ipo", "sigmoid_norm")


def cpo(policy_chosen: Tensor, policy_rejected: Tensor, *, beta: float, label_smoothing: float = 0.0,
        loss_type: str = "sigmoid") -> tuple[Tensor, Tensor, Tensor]:
    """Contrastive Preference Optimization (Xu et al. 2024): DPO without a reference model.

    The NLL term (cpo_alpha) is added by the caller, as for rpo_alpha.
    """
    logits = policy_chosen - policy_rejected
    if loss_type == "sigmoid":
        loss = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "hinge":
        loss = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        loss = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown CPO loss_type {loss_type!r}")
    return loss, beta * policy_chosen.detach(), beta * policy_rejected.detach()


def simpo(policy_chosen_mean: Tensor, policy_rejected_mean: Tensor, *, beta: float, gamma: float,
          label_smoothing: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """SimPO (Meng et al. 2024): length-normalised log-probabilities, a target margin gamma, no reference."""
    logits = beta * (policy_chosen_mean - policy_rejected_mean) - gamma
    loss = -F.logsigmoid(logits) * (1 - label_smoothing) - F.logsigmoid(-logits) * label_smoothing
    return loss, beta * policy_chosen_mean.detach(), beta * policy_rejected_mean.detach()


def orpo(policy_chosen_mean: Tensor, policy_rejected_mean: Tensor, *, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """ORPO's odds-ratio term (Hong et al. 2024), weighted by beta (the paper's lambda).

    log odds(y) = log p - log(1 - p) with p the per-token mean probability; the caller adds the
    chosen answer's NLL, the paper's L_SFT.
    """
    log_odds = (policy_chosen_mean - policy_rejected_mean) - (
        torch.log1p(-torch.exp(policy_chosen_mean)) - torch.log1p(-torch.exp(policy_rejected_mean)))
    loss = -beta * F.logsigmoid(log_odds)
    return loss, beta * policy_chosen_mean.detach(), beta * policy_rejected_mean.detach()


def kto(policy: Tensor, reference: Tensor, desirable: Tensor, kl: Tensor, *, beta: float, desirable_weight: float,
        undesirable_weight: float) -> tuple[Tensor, Tensor]:
    """Kahneman-Tversky Optimization (Ethayarajh et al. 2024), one loss per sequence.

    `kl` is the batch's estimate of KL(policy || reference) from mismatched prompt/answer pairs,
    clipped at 0 and without gradient, the reference point of the value function. Returns
    (loss per sequence, reward per sequence).
    """
    ratio = policy - reference
    kl = kl.detach().clamp(min=0)
    desirable_loss = desirable_weight * (1 - torch.sigmoid(beta * (ratio - kl)))
    undesirable_loss = undesirable_weight * (1 - torch.sigmoid(beta * (kl - ratio)))
    return torch.where(desirable, desirable_loss, undesirable_loss), beta * ratio.detach()


def reward_model(chosen_score: Tensor, rejected_score: Tensor) -> Tensor:
    """Bradley-Terry loss of a reward model (Ouyang et al. 2022): the chosen answer scores higher."""
    return -F.logsigmoid(chosen_score - rejected_score)
