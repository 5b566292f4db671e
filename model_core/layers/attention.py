"""The Transformer layer of JambaTalk: Low-Rank Learned RoPE and grouped-query attention, post-norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model_core.config import JambaTalkConfig


class LowRankLearnedRoPE(nn.Module):
    """Algorithm 1 of the JambaTalk poster: rotary embedding whose sin/cos get a learned low-rank delta.

    Pairs (x[2j], x[2j+1]) of the last dimension are rotated by pos * base**(-2j/dim); the time axis is
    the second-to-last dimension, so the same module serves (batch, time, dim) and (batch, heads, time, dim).
    """

    def __init__(self, dim: int, rank: int = 16, base: float = 10000.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError("Rotary embeddings need an even dimension.")
        self.dim = dim
        self.base = base
        self.proj = nn.Sequential(nn.Linear(dim, rank, bias=False), nn.Linear(rank, dim, bias=False))

    def sin_cos(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        theta = 1.0 / (self.base ** (torch.arange(0, self.dim, 2, device=device).float() / self.dim))
        angles = torch.arange(length, device=device).float()[:, None] * theta[None, :]
        sin, cos = angles.sin(), angles.cos()
        delta_sin, delta_cos = self.proj(torch.cat([sin, cos], dim=-1).to(self.proj[0].weight.dtype)).chunk(2, -1)
        return (sin + delta_sin).to(dtype), (cos + delta_cos).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sin, cos = self.sin_cos(x.shape[-2], x.device, x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]
        rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
        return rotated.flatten(-2)


class GQATransformerLayer(nn.Module):
    """Post-norm self-attention + ReLU FFN, with n_kv key/value heads shared by groups of query heads.

    With n_kv == n_q (the official presets) the rotary embedding runs over the full model width before the
    heads are split, exactly as the official code. With real GQA (n_kv < n_q) keys are narrower than queries,
    so the rotation runs per head (head_dim wide), which keeps the relative-position property for every group.
    """

    def __init__(self, config: JambaTalkConfig) -> None:
        super().__init__()
        d_model = config.feature_dim
        self.n_q = config.n_query_heads
        self.n_kv = config.n_kv_heads
        self.head_dim = d_model // self.n_q
        self.causal = config.causal_attention
        self.rope_per_head = self.n_kv != self.n_q
        kv_dim = self.head_dim * self.n_kv
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, kv_dim)
        self.v_proj = nn.Linear(d_model, kv_dim)
        self.out_proj = nn.Linear(d_model, d_model)
        self.lrl_rope = LowRankLearnedRoPE(self.head_dim if self.rope_per_head else d_model, config.rope_rank,
                                           config.rope_base)
        self.linear1 = nn.Linear(d_model, config.ffn_dim)
        self.linear2 = nn.Linear(config.ffn_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout_p = config.dropout
        self.dropout = nn.Dropout(config.dropout)

    def _heads(self, x: torch.Tensor, n_heads: int) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, n_heads, self.head_dim).transpose(1, 2)

    def attention(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """`key_mask` (batch, time), True where a frame is real: right-padded frames are never attended to."""
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if not self.rope_per_head:
            q, k = self.lrl_rope(q), self.lrl_rope(k)
        q, k, v = self._heads(q, self.n_q), self._heads(k, self.n_kv), self._heads(v, self.n_kv)
        if self.rope_per_head:
            q, k = self.lrl_rope(q), self.lrl_rope(k)
        # A causal layer never looks right, so right padding cannot reach a real frame: no mask needed.
        mask = None if key_mask is None or self.causal else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=mask,
            dropout_p=self.dropout_p if self.training else 0.0,
            is_causal=self.causal,
            enable_gqa=self.n_kv != self.n_q,
        )
        return self.out_proj(out.transpose(1, 2).reshape(x.shape))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x, key_mask)))
        ff = self.linear2(self.dropout(torch.relu(self.linear1(x))))
        return self.norm2(x + self.dropout(ff))
