"""--train_type reft: representation fine-tuning (Wu et al., 2024), the interventions of pyreft.

Each chosen decoder layer's output h (every position) is edited in a rank-r subspace:

  LoreftIntervention     h + R^T (act(W h + b) - R h)   R: orthonormal rows
  NoreftIntervention     h + P^T (act(W h + b) - P h)   P: unconstrained
  ConsreftIntervention   h + R^T (b - R h)
  LobireftIntervention   h + R^T b
  DireftIntervention     h + R^T act(W h + b)
  NodireftIntervention   h + P^T act(W h + b)

followed by dropout. --reft_args may set "dropout" (0.0), "act_fn" (None: linear) and, for the
unconstrained P, "add_bias" (false). pyreft itself pins an older transformers, so this is our own
implementation of the same formulas and initialisation.
"""

from __future__ import annotations

from typing import Any

import torch

TYPES = ("LoreftIntervention", "NoreftIntervention", "ConsreftIntervention", "LobireftIntervention",
         "DireftIntervention", "NodireftIntervention")
ORTHONORMAL = ("LoreftIntervention", "ConsreftIntervention", "LobireftIntervention", "DireftIntervention")
LEARNED_SOURCE = ("LoreftIntervention", "NoreftIntervention", "DireftIntervention", "NodireftIntervention")
SUBTRACTS_PROJECTION = ("LoreftIntervention", "NoreftIntervention", "ConsreftIntervention")



class Intervention(torch.nn.Module):
    def __init__(self, kind: str, hidden_size: int, rank: int, dropout: float = 0.0, act_fn: str | None = None,
                 add_bias: bool = False):
        from transformers.activations import ACT2FN

        super().__init__()
        self.kind = kind
        if kind in ORTHONORMAL:
            rotation = _Rotation(hidden_size, rank)
            # Without the trivialization's [hidden, hidden] base buffer (saved, and broadcast by DDP every step,
            # for a [hidden, rank] weight); the Householder map keeps the columns orthonormal by itself.
            self.projection = torch.nn.utils.parametrizations.orthogonal(rotation, use_trivialization=False)
        else:
            self.projection = torch.nn.Linear(hidden_size, rank, bias=add_bias)
        if kind in LEARNED_SOURCE:
            self.source = torch.nn.Linear(hidden_size, rank)
        else:
            self.source_bias = torch.nn.Parameter(torch.rand(rank))
        self.act = ACT2FN[act_fn] if act_fn else torch.nn.Identity()
        self.dropout = torch.nn.Dropout(dropout)

    def _basis(self) -> torch.Tensor:
        """[rank, hidden]: the subspace's directions (rows)."""
        if isinstance(self.projection, torch.nn.Linear):
            return self.projection.weight
        return self.projection.weight.T

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = hidden.to(torch.float32)
        basis = self._basis()
        target = self.act(self.source(x)) if hasattr(self, "source") else self.source_bias.expand(*x.shape[:-1], -1)
        if self.kind in SUBTRACTS_PROJECTION:
            target = target - self.projection(x) if isinstance(self.projection, torch.nn.Linear) else target - x @ basis.T
        return self.dropout((x + target @ basis).to(hidden.dtype))


class _Rotation(torch.nn.Module):
    """A [hidden, rank] matrix; `orthogonal` keeps its columns orthonormal (pyreft's LowRankRotateLayer)."""

    def __init__(self, hidden_size: int, rank: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(hidden_size, rank))
        torch.nn.init.orthogonal_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight


def build(hidden_size: int, settings: dict[str, Any]) -> Intervention:
    extra = settings.get("reft_args") or {}
    return Intervention(settings["intervention_type"], hidden_size, int(settings["rank"]),
                        dropout=float(extra.get("dropout", 0.0)), act_fn=extra.get("act_fn"),
                        add_bias=bool(extra.get("add_bias", False)))
