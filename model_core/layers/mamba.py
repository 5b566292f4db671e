"""The selective state-space block of Mamba, with mamba_ssm's parameter names, shapes and initialisation.

One class serves both Mamba blocks of JambaTalk: the bare "M" block (mamba_ssm's `Mamba`, special dt init)
and the inner block of the MoE-Mamba layer (zeta's `MambaBlock`: the same maths, default PyTorch init,
dt bias inside `dt_proj`). Both compute softplus(dt_proj.weight @ dt + dt_proj.bias), so their state
dicts and forward passes are interchangeable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model_core.layers.kernels import causal_conv1d_kernel, kernels_usable, selective_scan_kernel
from model_core.layers.selective_scan import selective_scan


class MambaLayer(nn.Module):
    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        *,
        dt_init: str = "mamba_ssm",
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16)
        # Set by JambaTalk.set_backend: False forces the pure-PyTorch path even on CUDA.
        self.use_kernels = True

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, kernel_size=d_conv, groups=self.d_inner, padding=d_conv - 1,
            bias=conv_bias,
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        if dt_init == "mamba_ssm":
            self._init_dt_like_mamba_ssm(dt_min, dt_max, dt_init_floor)
        elif dt_init != "default":
            raise ValueError(f"Unknown dt_init {dt_init!r}.")
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    @torch.no_grad()
    def _init_dt_like_mamba_ssm(self, dt_min: float, dt_max: float, floor: float) -> None:
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=floor)
        # Inverse of softplus, so that softplus(bias) starts in [dt_min, dt_max].
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(batch, length, d_model) -> (batch, length, d_model)."""
        length = hidden.shape[1]
        xz = self.in_proj(hidden).transpose(1, 2)
        x, z = xz.chunk(2, dim=1)
        fast = kernels_usable(hidden, self.use_kernels)
        conv = causal_conv1d_kernel() if fast else None
        if conv is not None:
            x = conv(x.contiguous(), self.conv1d.weight.squeeze(1), self.conv1d.bias, activation="silu")
        else:
            x = F.conv1d(x, self.conv1d.weight, self.conv1d.bias, padding=self.d_conv - 1, groups=self.d_inner)
            x = F.silu(x[..., :length])
        dt, b, c = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)
        b = b.transpose(1, 2).contiguous()
        c = c.transpose(1, 2).contiguous()
        a = -torch.exp(self.A_log.float())
        scan = selective_scan_kernel() if fast else selective_scan
        y = scan(
            x.contiguous(), dt.contiguous(), a, b, c, self.D.float(), z=z.contiguous(),
            delta_bias=self.dt_proj.bias.float(), delta_softplus=True,
        )
        return self.out_proj(y.transpose(1, 2))
