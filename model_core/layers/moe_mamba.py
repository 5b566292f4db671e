"""The MoE-Mamba layer of the official code: RMS-scaled Mamba block, then a 2-expert ReLU mixture.

Routing follows the official Top2Gating (top-1 expert, then the best other one, gates renormalised,
per-expert capacity) with three policies for the second expert:
- "random": the official rule, kept when uniform() < g2 / threshold (stochastic; used in training);
- "expected": its expectation, g1*E1 + min(1, g2/threshold)*g2*E2 (deterministic; default at inference);
- "all": the second expert always kept, g1*E1 + g2*E2 (what the golden numbers use).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model_core.config import JambaTalkConfig
from model_core.layers.mamba import MambaLayer

GATE_EPS = 1e-9


def simple_rms_norm(x: torch.Tensor) -> torch.Tensor:
    """Parameter-free scaling to norm dim**-0.5 (the official SimpleRMSNorm; note the negative power)."""
    return F.normalize(x, dim=-1) * x.shape[-1] ** -0.5


def expert_capacity(tokens: int, capacity_factor: float, num_experts: int, minimum: int) -> int:
    return max(minimum, min(tokens, int(tokens * capacity_factor / num_experts)))


class Top2Gating(nn.Module):
    def __init__(self, dim: int, num_experts: int) -> None:
        super().__init__()
        self.num_experts = num_experts
        self.w_gating = nn.Parameter(torch.randn(dim, num_experts))

    def forward(
        self,
        x: torch.Tensor,
        policy: str,
        threshold: float,
        capacity_factor: float,
        min_capacity: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return per-token expert weights (batch, tokens, experts) and the load-balancing loss."""
        n_exp = self.num_experts
        probs = torch.softmax(x @ self.w_gating.to(x.dtype), dim=-1)
        gate_1, index_1 = probs.max(dim=-1)
        mask_1 = F.one_hot(index_1, n_exp).to(probs.dtype)
        gate_2, index_2 = (probs * (1.0 - mask_1)).max(dim=-1)
        mask_2 = F.one_hot(index_2, n_exp).to(probs.dtype)
        denom = gate_1 + gate_2 + GATE_EPS
        gate_1, gate_2 = gate_1 / denom, gate_2 / denom
        aux_loss = (probs.mean(dim=-2) * mask_1.mean(dim=-2)).mean() * float(n_exp**2)

        keep_2 = torch.ones_like(gate_2)
        if policy == "random":
            keep_2 = (torch.rand_like(gate_2) < gate_2 / max(threshold, GATE_EPS)).to(gate_2.dtype)
            mask_2 = mask_2 * keep_2.unsqueeze(-1)
        elif policy == "expected":
            keep_2 = torch.clamp(gate_2 / max(threshold, GATE_EPS), max=1.0)
        elif policy != "all":
            raise ValueError(f"Unknown MoE policy {policy!r}.")

        capacity = float(expert_capacity(x.shape[-2], capacity_factor, n_exp, min_capacity))
        # Each expert takes tokens in order until it is full; second choices queue behind first choices.
        position_1 = (torch.cumsum(mask_1, dim=-2) - mask_1) * mask_1
        mask_1 = mask_1 * (position_1 < capacity).to(mask_1.dtype)
        count_1 = mask_1.sum(dim=-2, keepdim=True)
        position_2 = (torch.cumsum(mask_2, dim=-2) - mask_2 + count_1) * mask_2
        mask_2 = mask_2 * (position_2 < capacity).to(mask_2.dtype)

        weights = gate_1.unsqueeze(-1) * mask_1 + (gate_2 * keep_2).unsqueeze(-1) * mask_2
        return weights, aux_loss


class Experts(nn.Module):
    """Bias-free ReLU feed-forward experts stored as stacked weights (official layout)."""

    def __init__(self, dim: int, hidden_dim: int, num_experts: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(num_experts, dim, hidden_dim))
        self.w2 = nn.Parameter(torch.empty(num_experts, hidden_dim, dim))
        for weight in (self.w1, self.w2):
            bound = 1.0 / math.sqrt(weight.shape[-1])
            nn.init.uniform_(weight, -bound, bound)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Weighted sum of expert outputs; `weights` is (..., tokens, experts)."""
        out = torch.zeros_like(x)
        for e in range(self.w1.shape[0]):
            w = weights[..., e : e + 1]
            if not bool((w != 0).any()):
                continue
            out = out + w * (torch.relu(x @ self.w1[e]) @ self.w2[e])
        return out


class MixtureOfExperts(nn.Module):
    def __init__(self, dim: int, num_experts: int, hidden_dim: int) -> None:
        super().__init__()
        self.gate = Top2Gating(dim, num_experts)
        self.experts = Experts(dim, hidden_dim, num_experts)

    def forward(self, x: torch.Tensor, **routing: float | str) -> tuple[torch.Tensor, torch.Tensor]:
        weights, aux_loss = self.gate(x, **routing)
        return self.experts(x, weights), aux_loss


class MoEMambaLayer(nn.Module):
    """skip + MoE(SRN(SRN(x) + Mamba(SRN(x)))): the official MambaMoELayer."""

    def __init__(self, config: JambaTalkConfig) -> None:
        super().__init__()
        dim = config.feature_dim
        self.mamba = MambaLayer(dim, d_state=config.moe_d_state, d_conv=config.moe_d_conv, expand=config.moe_expand,
                                dt_init="default")
        self.moe = MixtureOfExperts(dim, config.moe_num_experts, dim * config.moe_hidden_mult)
        self.second_threshold = config.moe_second_threshold
        self.capacity_factor_train = config.moe_capacity_factor_train
        self.capacity_factor_eval = config.moe_capacity_factor_eval
        self.min_capacity = config.moe_min_capacity
        self.policy_eval = config.moe_policy_eval
        self.policy_train = "random"
        self.loss_coef = config.moe_loss_coef
        # The scaled load-balancing loss of the last forward pass (training may add it; the official run does not).
        self.aux_loss: torch.Tensor | None = None

    def routing(self) -> dict[str, float | str]:
        training = self.training
        return {
            "policy": self.policy_train if training else self.policy_eval,
            "threshold": self.second_threshold,
            "capacity_factor": self.capacity_factor_train if training else self.capacity_factor_eval,
            "min_capacity": self.min_capacity,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = simple_rms_norm(x)
        h = simple_rms_norm(self.mamba(h) + h)
        out, aux_loss = self.moe(h, **self.routing())
        self.aux_loss = aux_loss * self.loss_coef
        return out + x
