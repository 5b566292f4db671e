"""Tests for jambatalk_blender.core.keyframes: reduction keeps the mesh within the tolerance everywhere."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jambatalk_blender.core.bake_math import shape_scales
from jambatalk_blender.core.keyframes import (
    KeyCurve,
    evaluate_linear,
    reduce_curves,
    reduce_keyframes,
    total_keys,
    weight_tolerances,
)


def mesh_error(weights, curves, shapes):
    """Largest vertex distance (metres) between the unreduced and the reduced shape-key mesh, all frames."""
    reduced = np.stack([evaluate_linear(c.indices, c.values, weights.shape[0]) for c in curves], axis=1)
    diff = np.einsum("fk,kvc->fvc", reduced - weights.astype(np.float64), shapes.astype(np.float64))
    return float(np.sqrt(np.square(diff).sum(axis=2)).max())


def smooth_curves(frames, count, seed, cutoff_hz=4.0, fps=30.0):
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(frames, 1 / fps)
    spectrum = (rng.standard_normal((count, freqs.size)) + 1j * rng.standard_normal((count, freqs.size)))
    curves = np.fft.irfft(spectrum * (freqs <= cutoff_hz), n=frames, axis=1).T
    return curves / np.abs(curves).max(axis=0)


def random_shapes(count, verts, seed, size=5e-3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((count, verts, 3)) * size * 0.8 ** np.arange(count)[:, None, None]).astype(np.float32)


def check_curves(curves, frames):
    for c in curves:
        assert isinstance(c, KeyCurve)
        assert c.indices.dtype == np.int64 and c.values.dtype == np.float32
        assert c.indices[0] == 0 and c.indices[-1] == frames - 1
        assert (np.diff(c.indices) > 0).all()


@pytest.mark.parametrize("with_shapes", [False, True])
@pytest.mark.parametrize("split", ["equal", "adaptive"])
def test_guarantee_on_smooth_random_curves(with_shapes, split):
    weights = smooth_curves(600, 8, seed=1, cutoff_hz=1.0).astype(np.float32)
    shapes = random_shapes(8, 30, seed=2)
    curves = reduce_keyframes(weights, shape_scales(shapes), 1e-4, shapes=shapes if with_shapes else None,
                              split=split)
    check_curves(curves, 600)
    assert mesh_error(weights, curves, shapes) <= 1e-4
    assert total_keys(curves) < 0.8 * weights.size


def test_guarantee_on_step_like_curves():
    rng = np.random.default_rng(3)
    levels = rng.uniform(-1, 1, (12, 5))
    weights = np.repeat(levels, 25, axis=0).astype(np.float32)  # hard steps every 25 frames
    weights[100:110] += np.linspace(0, 0.5, 10, dtype=np.float32)[:, None]
    shapes = random_shapes(5, 20, seed=4)
    curves = reduce_keyframes(weights, shape_scales(shapes), 1e-4)
    check_curves(curves, weights.shape[0])
    assert mesh_error(weights, curves, shapes) <= 1e-4
    # A step between frames i and i+1 needs both as keys; flat runs need nothing in between.
    assert max(c.indices.size for c in curves) <= 2 * 12 + 12


def test_straight_line_and_constant_need_two_keys():
    frames = 500
    line = np.linspace(-0.7, 0.9, frames)
    weights = np.stack([line, np.full(frames, 0.3), np.zeros(frames)], axis=1)
    curves = reduce_keyframes(weights, np.array([0.01, 0.01, 0.01]), 1e-6)
    assert [c.indices.tolist() for c in curves] == [[0, frames - 1]] * 3
    np.testing.assert_allclose(curves[0].values, [-0.7, 0.9], rtol=1e-6)


def test_smoother_curves_need_fewer_keys():
    shapes = random_shapes(4, 10, seed=5)
    counts = []
    for cutoff in (8.0, 3.0, 1.0):
        weights = smooth_curves(900, 4, seed=6, cutoff_hz=cutoff)
        counts.append(total_keys(reduce_keyframes(weights, shape_scales(shapes), 1e-4)))
    assert counts[0] > counts[1] > counts[2]


def test_looser_tolerance_needs_fewer_keys():
    weights = smooth_curves(900, 4, seed=7)
    scales = np.full(4, 5e-3)
    counts = [total_keys(reduce_keyframes(weights, scales, tol)) for tol in (1e-5, 1e-4, 1e-3)]
    assert counts[0] > counts[1] > counts[2]


def test_keys_hold_the_curves_own_values():
    weights = smooth_curves(300, 3, seed=8).astype(np.float32)
    for k, c in enumerate(reduce_keyframes(weights, np.full(3, 1e-2), 1e-4)):
        np.testing.assert_array_equal(c.values, weights[c.indices, k])


def test_tiny_takes():
    one = reduce_keyframes(np.array([[0.5, -0.25]]), np.array([1e-3, 1e-3]))
    assert [c.indices.tolist() for c in one] == [[0], [0]]
    two = reduce_curves(np.array([[0.0], [1.0]]), np.array([1e-9]))
    assert two[0].indices.tolist() == [0, 1]
    np.testing.assert_array_equal(evaluate_linear([0], [0.5], 3), [0.5, 0.5, 0.5])


def test_no_curves_gives_no_keys():
    assert reduce_keyframes(np.zeros((10, 0)), np.zeros(0)) == []


def test_a_key_that_moves_nothing_gets_two_keys():
    weights = smooth_curves(200, 2, seed=9)
    curves = reduce_keyframes(weights, np.array([5e-3, 0.0]), 1e-4)
    assert curves[1].indices.tolist() == [0, 199]
    assert curves[0].indices.size > 2


def test_weight_tolerances_rules():
    scales = np.array([1e-2, 5e-3, 0.0, 2e-3])
    eps = weight_tolerances(scales, 1e-4)
    assert eps[2] == np.inf
    # Equal shares over the three moving keys: each may cost tolerance / 3 at its worst vertex.
    np.testing.assert_allclose(eps[[0, 1, 3]] * scales[[0, 1, 3]], 1e-4 / 3, rtol=2e-3)
    assert (eps[[0, 1, 3]] * scales[[0, 1, 3]]).sum() <= 1e-4
    # Knowing the shapes: keys peaking on different vertices may each use the whole budget.
    shapes = np.zeros((4, 3, 3))
    shapes[0, 0, 0], shapes[1, 1, 1], shapes[3, 2, 2] = 1e-2, 5e-3, 2e-3
    tight = weight_tolerances(scales, 1e-4, shapes=shapes)
    np.testing.assert_allclose(tight[[0, 1, 3]] * scales[[0, 1, 3]], 1e-4, rtol=2e-3)


def reference_rdp(y, eps):
    """Keys of one curve by textbook recursive Ramer-Douglas-Peucker (split each segment at its first worst
    frame while that frame is off by more than eps), keys holding float32 values: the one-curve-at-a-time
    definition the vectorised reduction must reproduce exactly."""
    stored = y.astype(np.float32).astype(np.float64)
    keys = {0, y.size - 1}
    todo = [(0, y.size - 1)]
    while todo:
        left, right = todo.pop()
        if right - left < 2:
            continue
        frames = np.arange(left + 1, right)
        approx = stored[left] + (stored[right] - stored[left]) * ((frames - left) / (right - left))
        err = np.abs(y[left + 1:right] - approx) / eps
        worst = int(np.argmax(err))
        if err[worst] > 1.0:
            keys.add(left + 1 + worst)
            todo += [(left, left + 1 + worst), (left + 1 + worst, right)]
    return np.array(sorted(keys))


@pytest.mark.parametrize("kind", ["smooth", "noise", "steps"])
def test_vectorised_reduction_matches_one_curve_rdp(kind):
    rng = np.random.default_rng(3)
    frames, count = 700, 5
    if kind == "smooth":
        weights = smooth_curves(frames, count, seed=4)
    elif kind == "noise":  # deep recursion: ~60 passes on the benchmark's noise keys
        weights = smooth_curves(frames, count, seed=4) + rng.normal(0.0, 0.05, (frames, count))
    else:
        weights = np.repeat(rng.uniform(-1, 1, (frames // 20 + 1, count)), 20, axis=0)[:frames]
    eps = np.array([1e-3, 1e-2, 3e-2, 0.1, np.inf])
    curves = reduce_curves(weights, eps)
    for k, curve in enumerate(curves):
        expected = reference_rdp(weights[:, k], eps[k]) if np.isfinite(eps[k]) else np.array([0, frames - 1])
        np.testing.assert_array_equal(curve.indices, expected)
        np.testing.assert_array_equal(curve.values, weights[curve.indices, k].astype(np.float32))


def test_bad_arguments():
    weights = np.zeros((10, 2))
    with pytest.raises(ValueError, match="tolerance"):
        reduce_keyframes(weights, np.ones(2), 0.0)
    with pytest.raises(ValueError, match="scales"):
        reduce_keyframes(weights, np.ones(3))
    with pytest.raises(ValueError, match="split"):
        reduce_keyframes(weights, np.ones(2), split="greedy")
    with pytest.raises(ValueError, match="weights"):
        reduce_keyframes(np.zeros((10,)), np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        reduce_keyframes(np.full((10, 2), np.nan), np.ones(2))
    with pytest.raises(ValueError, match="max_errors"):
        reduce_curves(weights, np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="increasing"):
        evaluate_linear([0, 0], [1.0, 2.0], 3)


curve_kinds = st.sampled_from(["smooth", "steps", "noise", "mixed"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.integers(2, 160),
    count=st.integers(1, 6),
    verts=st.integers(1, 12),
    kind=curve_kinds,
    tolerance=st.floats(1e-6, 1e-3),
    use_shapes=st.booleans(),
    split=st.sampled_from(["equal", "adaptive"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_reduced_mesh_stays_within_tolerance(frames, count, verts, kind, tolerance, use_shapes, split,
                                                       seed):
    rng = np.random.default_rng(seed)
    if kind == "smooth":
        weights = smooth_curves(max(frames, 2), count, seed)[:frames]
    elif kind == "steps":
        weights = np.repeat(rng.uniform(-1, 1, (frames // 7 + 1, count)), 7, axis=0)[:frames]
    elif kind == "noise":
        weights = rng.uniform(-1, 1, (frames, count))
    else:
        weights = smooth_curves(max(frames, 2), count, seed)[:frames] + (rng.random((frames, count)) < 0.05)
    weights = weights.astype(np.float32)
    shapes = random_shapes(count, verts, seed, size=rng.uniform(1e-4, 2e-2))
    curves = reduce_keyframes(weights, shape_scales(shapes), tolerance, shapes=shapes if use_shapes else None,
                              split=split)
    check_curves(curves, frames)
    assert mesh_error(weights, curves, shapes) <= tolerance
