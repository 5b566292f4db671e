"""Tests for the pure-PyTorch Mamba-1 selective scan.

The chunked/segmented ``selective_scan`` is checked against ``selective_scan_reference`` (the plain
per-step loop), and the reference itself is checked against an independent scalar Python recurrence,
so a wrong scan in either function makes these tests fail.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from model_core.layers.selective_scan import selective_scan, selective_scan_reference

REL_TOL_FP32 = 1e-5


@pytest.fixture(autouse=True)
def _single_thread():
    # These problems are small; with intra-op threads a busy machine (other test processes on 2 cores)
    # made single tests take 10+ s from thread hand-off stalls.  Restored afterwards.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    """max |got - ref| / max |ref|, in float64."""
    got, ref = got.double(), ref.double()
    scale = ref.abs().max().clamp_min(1e-30)
    return ((got - ref).abs().max() / scale).item()


def _make_inputs(batch: int, d_inner: int, n: int, length: int, *, seed: int = 0, a_kind: str = "s4d",
                 big_delta: bool = False, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Random mamba-style inputs. ``a_kind``: "s4d" -> A[d, n] = -(n+1); "wide" -> A in [-30, -0.5]."""
    g = torch.Generator().manual_seed(seed)
    if a_kind == "s4d":
        A = -torch.exp(torch.log(torch.arange(1, n + 1, dtype=torch.float32))).repeat(d_inner, 1)
    else:
        A = -(0.5 + 29.5 * torch.rand(d_inner, n, generator=g))
    delta = torch.randn(batch, d_inner, length, generator=g)
    if big_delta:
        # About a fifth of the steps get raw delta in [5, 10] (softplus(5..10) ~ 5..10): with A down to
        # -30 these steps wipe the state almost completely (decay ~ exp(-300)).
        mask = torch.rand(batch, d_inner, length, generator=g) < 0.2
        delta = torch.where(mask, 5 + 5 * torch.rand(batch, d_inner, length, generator=g), delta)
    t = {
        "u": torch.randn(batch, d_inner, length, generator=g),
        "delta": delta,
        "A": A,
        "B": torch.randn(batch, n, length, generator=g),
        "C": torch.randn(batch, n, length, generator=g),
        "D": torch.randn(d_inner, generator=g),
        "z": torch.randn(batch, d_inner, length, generator=g),
        "delta_bias": 0.5 * torch.randn(d_inner, generator=g),
    }
    return {k: v.to(dtype) for k, v in t.items()}


def _call(fn, inp: dict[str, torch.Tensor], *, use_d: bool, use_z: bool, use_bias: bool, softplus: bool,
          **kwargs) -> torch.Tensor:
    return fn(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"],
              D=inp["D"] if use_d else None, z=inp["z"] if use_z else None,
              delta_bias=inp["delta_bias"] if use_bias else None, delta_softplus=softplus, **kwargs)


def _scalar_scan(u, delta, A, B, C):
    """Independent ground truth in plain Python floats (float64) for tiny problems, no torch maths."""
    batch, d_inner, length = u.shape
    n = A.shape[1]
    y = torch.zeros(batch, d_inner, length, dtype=torch.float64)
    for b, d in itertools.product(range(batch), range(d_inner)):
        h = [0.0] * n
        for t in range(length):
            dt = float(delta[b, d, t])
            h = [math.exp(dt * float(A[d, k])) * h[k] + dt * float(B[b, k, t]) * float(u[b, d, t])
                 for k in range(n)]
            y[b, d, t] = sum(float(C[b, k, t]) * h[k] for k in range(n))
    return y


def test_reference_matches_scalar_recurrence():
    inp = _make_inputs(2, 3, 4, 9, seed=1, a_kind="wide")
    delta = F.softplus(inp["delta"] + inp["delta_bias"][:, None])
    expected = _scalar_scan(inp["u"], delta, inp["A"], inp["B"], inp["C"])
    expected = (expected + inp["D"].double()[:, None] * inp["u"].double()) * F.silu(inp["z"].double())
    got = _call(selective_scan_reference, inp, use_d=True, use_z=True, use_bias=True, softplus=True)
    assert _rel_err(got, expected) < 1e-6
    fast = _call(selective_scan, inp, use_d=True, use_z=True, use_bias=True, softplus=True, chunk_size=4)
    assert _rel_err(fast, expected) < 1e-5


# (batch, d_inner, N, L): every L from the brief, both batch sizes, d_inner 16..64, N 8 and 16.
SHAPES = [
    (1, 16, 8, 1), (2, 16, 16, 1),
    (1, 32, 16, 7), (2, 16, 8, 7),
    (1, 16, 8, 32), (2, 64, 16, 32),
    (1, 32, 16, 33), (2, 16, 8, 33),
    (1, 64, 16, 300), (2, 32, 8, 300),
    (1, 48, 16, 1000), (2, 16, 8, 1000),
]
# (use_d, use_z, use_bias, softplus, a_kind, big_delta)
FLAG_SETS = [
    (False, False, False, False, "s4d", False),
    (True, True, True, True, "s4d", True),
    (True, False, True, True, "wide", True),
    (False, True, False, True, "wide", False),
]


@pytest.mark.parametrize("flags", FLAG_SETS, ids=lambda f: "D{}z{}bias{}sp{}-{}-big{}".format(*map(int, f[:4]),
                                                                                        *f[4:]))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}d{}N{}L{}".format(*s))
def test_fast_matches_reference(shape, flags):
    batch, d_inner, n, length = shape
    use_d, use_z, use_bias, softplus, a_kind, big_delta = flags
    # Without softplus a raw randn delta can be negative, which makes exp(delta * A) grow without bound;
    # real Mamba always feeds a positive delta, so use |delta| there.
    inp = _make_inputs(batch, d_inner, n, length, seed=hash(shape) % 1000, a_kind=a_kind, big_delta=big_delta)
    if not softplus:
        inp["delta"] = inp["delta"].abs()
    opts = dict(use_d=use_d, use_z=use_z, use_bias=use_bias, softplus=softplus)
    ref = _call(selective_scan_reference, inp, **opts)
    assert ref.shape == (batch, d_inner, length) and torch.isfinite(ref).all()
    # Defaults, plus small chunks/segments so that short sequences also cross chunk and segment edges.
    for kwargs in ({}, {"chunk_size": 8, "segment_len": 24}, {"chunk_size": 5, "segment_len": 1000}):
        got = _call(selective_scan, inp, **opts, **kwargs)
        assert got.shape == ref.shape and got.dtype == ref.dtype
        assert _rel_err(got, ref) <= REL_TOL_FP32, kwargs


@pytest.mark.parametrize("chunk_size, segment_len", [(32, 64), (16, 64), (7, 64), (64, 64), (1, 64), (300, 64)])
def test_segment_boundaries(chunk_size, segment_len):
    inp = _make_inputs(2, 32, 16, 300, seed=3, a_kind="wide", big_delta=True)
    opts = dict(use_d=True, use_z=True, use_bias=True, softplus=True)
    ref = _call(selective_scan_reference, inp, **opts)
    one_segment = _call(selective_scan, inp, **opts, chunk_size=chunk_size, segment_len=10_000)
    segmented = _call(selective_scan, inp, **opts, chunk_size=chunk_size, segment_len=segment_len)
    assert _rel_err(one_segment, ref) <= REL_TOL_FP32
    assert _rel_err(segmented, ref) <= REL_TOL_FP32
    assert _rel_err(segmented, one_segment) <= REL_TOL_FP32


def test_state_is_carried_across_segments():
    # Slow decay (A = -0.01) and inputs only in the first segment: every later output comes purely from
    # the carried state, so dropping or mis-decaying the carry would be obvious.
    inp = _make_inputs(1, 8, 4, 200, seed=4)
    inp["A"] = torch.full((8, 4), -0.01)
    inp["delta"] = torch.full((1, 8, 200), 0.5)
    inp["u"][:, :, 20:] = 0.0
    opts = dict(use_d=False, use_z=False, use_bias=False, softplus=False)
    ref = _call(selective_scan_reference, inp, **opts)
    got = _call(selective_scan, inp, **opts, chunk_size=8, segment_len=16)
    assert ref[:, :, 150:].abs().max() > 0.1  # the carried state still matters at the end
    assert _rel_err(got, ref) <= REL_TOL_FP32


@pytest.mark.parametrize("chunk_size, segment_len", [(None, None), (32, 2048), (8, 16), (7, 14), (40, 40)])
def test_gradients_match_reference(chunk_size, segment_len):
    inp = _make_inputs(2, 16, 8, 40, seed=5, a_kind="wide", big_delta=True)
    inp["A"] = inp["A"] / 10  # milder decays so that long-range gradient paths are not all zero
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    g = torch.randn(2, 16, 40, generator=torch.Generator().manual_seed(6))
    opts = dict(use_d=True, use_z=True, use_bias=True, softplus=True)

    def grads(fn, **kwargs):
        leaves = {k: v.clone().requires_grad_(True) for k, v in inp.items()}
        out = _call(fn, leaves, **opts, **kwargs)
        return out, torch.autograd.grad((out * g).sum(), [leaves[k] for k in names])

    ref, ref_grads = grads(selective_scan_reference)
    got, got_grads = grads(selective_scan, chunk_size=chunk_size, segment_len=segment_len)
    assert _rel_err(got, ref) <= REL_TOL_FP32
    for name, gr, gf in zip(names, ref_grads, got_grads, strict=True):
        assert gr.abs().max() > 0, name
        assert _rel_err(gf, gr) <= 1e-4, name


@pytest.mark.parametrize("sizes", [{}, {"chunk_size": 16, "segment_len": 48}], ids=["defaults", "16-48"])
def test_grad_and_no_grad_paths_agree(sizes):
    # The two paths are separate code (in-place vs out-of-place) with different default sizes.
    inp = _make_inputs(2, 24, 8, 301, seed=7, a_kind="wide", big_delta=True)
    opts = dict(use_d=True, use_z=True, use_bias=True, softplus=True, **sizes)
    with torch.no_grad():
        plain = _call(selective_scan, inp, **opts)
    leaves = {k: v.clone().requires_grad_(True) for k, v in inp.items()}
    tracked = _call(selective_scan, leaves, **opts)
    assert tracked.requires_grad
    assert _rel_err(tracked.detach(), plain) <= REL_TOL_FP32


@pytest.mark.parametrize("decay_per_step", [-200.0, -1000.0])
def test_stable_for_very_negative_delta_a(decay_per_step):
    # delta * A ~ decay_per_step at every step: a scan that divides by a cumulative decay
    # (exp(-cumsum(delta * A))) overflows to inf/nan here within a couple of steps.
    batch, d_inner, n, length = 1, 16, 8, 300
    inp = _make_inputs(batch, d_inner, n, length, seed=8)
    inp["delta"] = 10.0 + torch.rand(batch, d_inner, length)
    inp["A"] = torch.full((d_inner, n), decay_per_step / 10.5)
    inp["A"][:, 0] = -0.001  # one slow channel keeps a long memory so the output is not trivial
    opts = dict(use_d=False, use_z=False, use_bias=False, softplus=False)
    ref = _call(selective_scan_reference, inp, **opts)
    assert torch.isfinite(ref).all()
    for kwargs in ({}, {"chunk_size": 16, "segment_len": 64}):
        got = _call(selective_scan, inp, **opts, **kwargs)
        assert torch.isfinite(got).all()
        assert _rel_err(got, ref) <= REL_TOL_FP32


def test_stable_gradients_for_very_negative_delta_a():
    inp = _make_inputs(1, 8, 4, 40, seed=9)
    inp["delta"] = 10.0 + torch.rand(1, 8, 40)
    inp["A"] = torch.full((8, 4), -20.0)
    leaves = {k: v.clone().requires_grad_(True) for k, v in inp.items()}
    out = _call(selective_scan, leaves, use_d=True, use_z=True, use_bias=False, softplus=False,
                chunk_size=8, segment_len=16)
    out.sum().backward()
    for k in ("u", "delta", "A", "B", "C"):
        assert torch.isfinite(leaves[k].grad).all(), k


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_half_precision_inputs(dtype, tol):
    inp = _make_inputs(2, 32, 16, 100, seed=10, a_kind="wide", big_delta=True, dtype=dtype)
    opts = dict(use_d=True, use_z=True, use_bias=True, softplus=True)
    ref32 = _call(selective_scan_reference, {k: v.float() for k, v in inp.items()}, **opts)
    got = _call(selective_scan, inp, **opts, chunk_size=16, segment_len=48)
    assert got.dtype == dtype
    # The same half inputs upcast to fp32: only the final rounding to half differs.
    assert _rel_err(got, ref32) <= tol
    ref_half = _call(selective_scan_reference, inp, **opts)
    assert ref_half.dtype == dtype
    assert _rel_err(got, ref_half) <= tol
    # With a graph being recorded (training with autocast-style half activations).
    leaves = {k: v.clone().requires_grad_(True) for k, v in inp.items()}
    tracked = _call(selective_scan, leaves, **opts, chunk_size=16, segment_len=48)
    assert tracked.dtype == dtype
    tracked.float().sum().backward()
    assert leaves["u"].grad.dtype == dtype and torch.isfinite(leaves["u"].grad.float()).all()


def test_float64_is_computed_in_float64():
    inp = _make_inputs(1, 16, 8, 70, seed=11, a_kind="wide", big_delta=True, dtype=torch.float64)
    opts = dict(use_d=True, use_z=True, use_bias=True, softplus=True)
    ref = _call(selective_scan_reference, inp, **opts)
    got = _call(selective_scan, inp, **opts, chunk_size=16, segment_len=32)
    assert got.dtype == torch.float64
    assert _rel_err(got, ref) <= 1e-12


def test_inputs_are_not_modified():
    inp = _make_inputs(2, 16, 8, 50, seed=12, big_delta=True)
    before = {k: v.clone() for k, v in inp.items()}
    with torch.no_grad():
        _call(selective_scan, inp, use_d=True, use_z=True, use_bias=True, softplus=True, chunk_size=8,
              segment_len=16)
    for k, v in inp.items():
        assert torch.equal(v, before[k]), k


def test_non_contiguous_inputs():
    inp = _make_inputs(2, 16, 8, 45, seed=13, big_delta=True)
    opts = dict(use_d=True, use_z=True, use_bias=True, softplus=True)
    ref = _call(selective_scan_reference, inp, **opts)
    # Same values, transposed storage (as produced by x.transpose(1, 2) in a Mamba block).
    strided = {k: (v.transpose(1, 2).contiguous().transpose(1, 2) if v.dim() == 3 else v) for k, v in inp.items()}
    assert not strided["u"].is_contiguous()
    assert _rel_err(_call(selective_scan, strided, **opts, chunk_size=8, segment_len=16), ref) <= REL_TOL_FP32


def test_shape_errors():
    inp = _make_inputs(1, 8, 4, 10)
    with pytest.raises(ValueError):
        selective_scan(inp["u"], inp["delta"][:, :, :5], inp["A"], inp["B"], inp["C"])
    with pytest.raises(ValueError):
        selective_scan(inp["u"], inp["delta"], inp["A"][:, :3], inp["B"], inp["C"])
    with pytest.raises(ValueError):
        selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], D=torch.zeros(3))
    with pytest.raises(ValueError):
        selective_scan(inp["u"], inp["delta"], inp["A"], inp["B"], inp["C"], chunk_size=0)
