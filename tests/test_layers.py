"""Decoder layers against independent, hand-written references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model_core.config import JambaTalkConfig
from model_core.layers.attention import GQATransformerLayer, LowRankLearnedRoPE
from model_core.layers.mamba import MambaLayer
from model_core.layers.moe_mamba import MoEMambaLayer, Top2Gating, expert_capacity, simple_rms_norm


def mamba_by_recurrence(layer: MambaLayer, x: torch.Tensor) -> torch.Tensor:
    """Token-by-token Mamba (the `step` recurrence of mamba_ssm) written from the paper's equations."""
    batch, length, _ = x.shape
    conv_state = torch.zeros(batch, layer.d_inner, layer.d_conv)
    ssm_state = torch.zeros(batch, layer.d_inner, layer.d_state)
    a = -torch.exp(layer.A_log)
    outputs = []
    for t in range(length):
        xz = layer.in_proj(x[:, t])
        xi, z = xz.chunk(2, dim=-1)
        conv_state = torch.cat([conv_state[:, :, 1:], xi[:, :, None]], dim=-1)
        xi = F.silu((conv_state * layer.conv1d.weight[:, 0]).sum(-1) + layer.conv1d.bias)
        dt, b, c = layer.x_proj(xi).split([layer.dt_rank, layer.d_state, layer.d_state], dim=-1)
        dt = F.softplus(layer.dt_proj(dt))
        ssm_state = ssm_state * torch.exp(dt[:, :, None] * a) + (dt * xi)[:, :, None] * b[:, None, :]
        y = (ssm_state * c[:, None, :]).sum(-1) + layer.D * xi
        outputs.append(layer.out_proj(y * F.silu(z)))
    return torch.stack(outputs, dim=1)


@pytest.mark.parametrize("dt_init", ["mamba_ssm", "default"])
def test_mamba_layer_equals_token_recurrence(dt_init):
    torch.manual_seed(0)
    layer = MambaLayer(24, d_state=8, d_conv=4, dt_init=dt_init)
    x = torch.randn(2, 37, 24)
    with torch.no_grad():
        assert torch.allclose(layer(x), mamba_by_recurrence(layer, x), atol=1e-5, rtol=1e-4)


def test_mamba_parameters_follow_mamba_ssm():
    torch.manual_seed(0)
    layer = MambaLayer(512)
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {
        "A_log": (1024, 16), "D": (1024,), "in_proj.weight": (2048, 512), "conv1d.weight": (1024, 1, 4),
        "conv1d.bias": (1024,), "x_proj.weight": (64, 1024), "dt_proj.weight": (1024, 32),
        "dt_proj.bias": (1024,), "out_proj.weight": (512, 1024),
    }
    assert torch.equal(layer.A_log[3], torch.log(torch.arange(1, 17, dtype=torch.float32)))
    assert torch.equal(layer.D, torch.ones(1024))
    dt = F.softplus(layer.dt_proj.bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    assert layer.dt_proj.weight.abs().max() <= 32**-0.5


def test_mamba_is_causal():
    torch.manual_seed(1)
    layer = MambaLayer(16, d_state=4)
    x = torch.randn(1, 20, 16)
    y = x.clone()
    y[:, 12:] += torch.randn(1, 8, 16)
    with torch.no_grad():
        assert torch.allclose(layer(x)[:, :12], layer(y)[:, :12], atol=1e-6)


def test_simple_rms_norm_scales_to_inverse_root_dim():
    x = torch.randn(3, 5, 64) * 7
    assert torch.allclose(simple_rms_norm(x).norm(dim=-1), torch.full((3, 5), 64**-0.5), atol=1e-6)


def gates(x, gate, policy, training=False, cf=2.0):
    return gate(x, policy=policy, threshold=0.2, capacity_factor=cf, min_capacity=4)


def test_top2_gating_policies():
    torch.manual_seed(0)
    gate = Top2Gating(8, 2)
    with torch.no_grad():
        gate.w_gating.mul_(4)
    x = torch.randn(1, 50, 8)
    probs = torch.softmax(x @ gate.w_gating, -1)
    g1, g2 = probs.max(-1).values, probs.min(-1).values
    w_all, aux = gates(x, gate, "all")
    assert torch.allclose(w_all, probs, atol=1e-6)
    w_exp, _ = gates(x, gate, "expected")
    assert torch.allclose(w_exp.max(-1).values, g1, atol=1e-6)
    assert torch.allclose(w_exp.min(-1).values, g2 * torch.clamp(g2 / 0.2, max=1), atol=1e-6)
    torch.manual_seed(1)
    draws = torch.stack([gates(x, gate, "random")[0] for _ in range(4000)])
    assert torch.allclose(draws.mean(0), w_exp, atol=0.02)
    # Load-balancing loss: fraction routed first to each expert times mean gate, times E^2.
    top1 = F.one_hot(probs.argmax(-1), 2).float()
    assert torch.allclose(aux, (probs.mean(1) * top1.mean(1)).mean() * 4)


def test_top2_gating_capacity_drops_like_official():
    """Training capacity: max(4, min(T, int(T*1.25/2))); overflowing first choices are dropped in order."""
    gate = Top2Gating(2, 2)
    with torch.no_grad():
        gate.w_gating.copy_(torch.tensor([[3.0, 0.0], [0.0, 3.0]]))
    x = torch.zeros(1, 16, 2)
    x[0, :, 0] = 1.0  # every token prefers expert 0
    assert expert_capacity(16, 1.25, 2, 4) == 10
    weights, _ = gates(x, gate, "all", cf=1.25)
    # Tokens 0-9 fill expert 0; tokens 10-15 keep nothing from expert 0. Their second choice (expert 1)
    # queues behind expert 1's first choices (none), so all 16 second choices fit only up to capacity 10.
    assert torch.all(weights[0, :10, 0] > 0) and torch.all(weights[0, 10:, 0] == 0)
    assert torch.all(weights[0, :10, 1] > 0) and torch.all(weights[0, 10:, 1] == 0)


def test_moe_mamba_layer_structure():
    torch.manual_seed(0)
    layer = MoEMambaLayer(JambaTalkConfig(feature_dim=32)).eval()
    x = torch.randn(2, 9, 32)
    h = simple_rms_norm(x)
    h = simple_rms_norm(layer.mamba(h) + h)
    weights, _ = layer.moe.gate(h, **layer.routing())
    experts = [torch.relu(h @ layer.moe.experts.w1[e]) @ layer.moe.experts.w2[e] for e in range(2)]
    expected = x + weights[..., :1] * experts[0] + weights[..., 1:] * experts[1]
    with torch.no_grad():
        assert torch.allclose(layer(x), expected, atol=1e-6)
    assert layer.aux_loss is not None and layer.aux_loss.ndim == 0


def test_lrl_rope_matches_algorithm_one():
    torch.manual_seed(0)
    rope = LowRankLearnedRoPE(8, rank=2)
    x = torch.randn(1, 5, 8)
    theta = 1 / (10000 ** (torch.arange(0, 8, 2).float() / 8))
    angles = torch.arange(5).float()[:, None] * theta[None]
    base = torch.cat([angles.sin(), angles.cos()], -1)
    learned = base @ rope.proj[0].weight.T @ rope.proj[1].weight.T
    sin, cos = angles.sin() + learned[:, :4], angles.cos() + learned[:, 4:]
    even, odd = x[..., 0::2], x[..., 1::2]
    expected = torch.empty_like(x)
    expected[..., 0::2] = even * cos - odd * sin
    expected[..., 1::2] = even * sin + odd * cos
    with torch.no_grad():
        assert torch.allclose(rope(x), expected, atol=1e-6)


def test_rope_without_learned_delta_is_relative():
    rope = LowRankLearnedRoPE(16)
    with torch.no_grad():
        rope.proj[1].weight.zero_()
    q, k = torch.randn(16), torch.randn(16)
    seq_q = q.expand(1, 12, 16)
    seq_k = k.expand(1, 12, 16)
    with torch.no_grad():
        rq, rk = rope(seq_q)[0], rope(seq_k)[0]
    assert math.isclose(float(rq[7] @ rk[4]), float(rq[5] @ rk[2]), rel_tol=1e-4)


def reference_attention(layer: GQATransformerLayer, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
    q, k, v = layer.q_proj(x), layer.k_proj(x), layer.v_proj(x)
    b, t, d = x.shape
    hd = layer.head_dim
    q = q.view(b, t, layer.n_q, hd).transpose(1, 2)
    k = k.view(b, t, layer.n_kv, hd).transpose(1, 2)
    v = v.view(b, t, layer.n_kv, hd).transpose(1, 2)
    q, k = layer.lrl_rope(q), layer.lrl_rope(k)
    k = k.repeat_interleave(layer.n_q // layer.n_kv, dim=1)
    v = v.repeat_interleave(layer.n_q // layer.n_kv, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if causal:
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    attn = torch.softmax(scores, -1) @ v
    x = layer.norm1(x + layer.out_proj(attn.transpose(1, 2).reshape(b, t, d)))
    return layer.norm2(x + layer.linear2(torch.relu(layer.linear1(x))))


@pytest.mark.parametrize("causal", [False, True])
def test_grouped_query_attention_is_real(causal):
    torch.manual_seed(0)
    config = JambaTalkConfig(feature_dim=32, n_query_heads=8, n_kv_heads=2, ffn_dim=64, causal_attention=causal)
    layer = GQATransformerLayer(config).eval()
    assert layer.k_proj.weight.shape == (8, 32) and layer.v_proj.weight.shape == (8, 32)
    x = torch.randn(2, 11, 32)
    with torch.no_grad():
        assert torch.allclose(layer(x), reference_attention(layer, x, causal), atol=1e-5)
        if causal:
            y = x.clone()
            y[:, 6:] += 1.0
            assert torch.allclose(layer(x)[:, :6], layer(y)[:, :6], atol=1e-5)
