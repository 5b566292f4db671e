"""jambatalk_blender.core.solve: per-frame shape-key weights that reproduce per-vertex motion, within the sliders."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from jambatalk_blender.core import solve
from jambatalk_blender.core.solve import SolveResult, solve_weights


def smooth_rig(keys: int, vertices: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Vertices on a 10 cm sphere and keys that each push two soft blobs by 2-10 mm: overlapping, smooth keys."""
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((vertices, 3))
    points *= 0.1 / np.linalg.norm(points, axis=1, keepdims=True)
    deltas = np.zeros((keys, vertices, 3))
    for k in range(keys):
        for _ in range(2):
            centre = points[rng.integers(vertices)]
            radius = rng.uniform(0.02, 0.05)
            direction = rng.standard_normal(3)
            direction *= rng.uniform(0.002, 0.01) / np.linalg.norm(direction)
            deltas[k] += np.exp(-((points - centre) ** 2).sum(1) / radius**2)[:, None] * direction
    return points, deltas.astype(np.float32)


def wave_weights(frames: int, keys: int, seed: int = 1, low: float = -0.2, high: float = 1.2) -> np.ndarray:
    """Smooth per-key weight curves spanning [low, high]: clipped to [0, 1] some sit exactly on the bounds."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    phase = 2 * np.pi * t / rng.uniform(20, 90, keys) + rng.uniform(0, 2 * np.pi, keys)
    return (low + high) / 2 + (high - low) / 2 * np.sin(phase)


def blend(weights: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    return np.einsum("tk,kvc->tvc", weights, deltas.astype(np.float64)).astype(np.float32)


def vertex_errors(weights: np.ndarray, deltas: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(T, V) distances, computed the plain way, to check the solver's blocked measurement."""
    residual = np.einsum("tk,kvc->tvc", weights.astype(np.float64), deltas.astype(np.float64)) - offsets
    return np.linalg.norm(residual, axis=2)


def objective(weights: np.ndarray, deltas: np.ndarray, offsets: np.ndarray, smoothness: float) -> float:
    """The documented objective: squared fit error plus smoothness * (mean key Gram diagonal) * squared steps."""
    flat = deltas.reshape(len(deltas), -1).astype(np.float64)
    sizes = (flat * flat).sum(1)
    scale = sizes[sizes > 0].mean()
    fit = (vertex_errors(weights, deltas, offsets) ** 2).sum()
    return float(fit + smoothness * scale * (np.diff(weights.astype(np.float64), axis=0) ** 2).sum())


def reference_weights(offsets: np.ndarray, deltas: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                      smoothness: float) -> np.ndarray:
    """The same problem through scipy's bounded least squares on the stacked (T*K) system: slow, small only.
    Keys fixed by their range (lower == upper) are moved into the target (scipy wants strict bounds)."""
    frames, count = len(offsets), len(deltas)
    flat = deltas.reshape(count, -1).astype(np.float64)
    sizes = (flat * flat).sum(1)
    scale = sizes[sizes > 1e-12 * sizes.max()].mean()  # the smoothness scale counts every moving key
    fixed = lower == upper
    target = offsets.reshape(frames, -1).astype(np.float64) - lower[fixed] @ flat[fixed]
    flat, free = flat[~fixed], int((~fixed).sum())
    gram = flat @ flat.T
    laplacian = np.diag(np.r_[1.0, 2 * np.ones(frames - 2), 1.0]) - np.eye(frames, k=1) - np.eye(frames, k=-1)
    hessian = np.kron(np.eye(frames), gram) + smoothness * scale * np.kron(laplacian, np.eye(free))
    hessian += 1e-12 * np.trace(hessian) / len(hessian) * np.eye(len(hessian))
    factor = np.linalg.cholesky(hessian).T  # |factor w - c|^2 = w H w - 2 b w + const
    rhs = np.linalg.solve(factor.T, (target @ flat.T).ravel())
    bounds = (np.tile(lower[~fixed], frames), np.tile(upper[~fixed], frames))
    result = lsq_linear(factor, rhs, bounds=bounds, method="bvls", tol=1e-14)
    weights = np.tile(lower, (frames, 1))
    weights[:, ~fixed] = result.x.reshape(frames, free)
    return weights


@pytest.fixture(scope="module")
def rig52() -> tuple[np.ndarray, np.ndarray]:
    return smooth_rig(52, 5000)


def assert_in_range(weights: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
    w = weights.astype(np.float64)
    assert (w >= lower).all() and (w <= upper).all()


def test_recovers_weights_in_range_to_a_thousandth(rig52):
    _, deltas = rig52
    truth = np.clip(wave_weights(120, 52), 0, 1)
    assert (truth == 0).any() and (truth == 1).any()  # some weights sit on the bounds
    offsets = blend(truth, deltas)
    lower, upper = np.zeros(52), np.ones(52)
    result = solve_weights(offsets, deltas, lower, upper)
    assert isinstance(result, SolveResult) and result.converged
    assert result.weights.dtype == np.float32 and result.weights.shape == (120, 52)
    assert np.abs(result.weights - truth).max() < 1e-3
    assert result.error_max_m < 1e-5  # 0.01 mm
    assert_in_range(result.weights, lower, upper)
    errors = vertex_errors(result.weights, deltas, offsets)
    assert result.error_max_m == pytest.approx(errors.max(), rel=1e-6, abs=1e-12)
    assert result.error_rms_m == pytest.approx(np.sqrt((errors**2).mean()), rel=1e-6, abs=1e-12)
    np.testing.assert_allclose(result.frame_error_max_m, errors.max(axis=1), rtol=1e-6, atol=1e-12)
    assert result.motion_max_m == pytest.approx(np.linalg.norm(offsets, axis=2).max(), rel=1e-6)
    assert result.expressible()
    assert result.sentence() == "The 52 keys reproduce the motion within 0.1 mm."


def test_out_of_range_motion_keeps_the_sliders_and_reports_the_miss(rig52):
    _, deltas = rig52
    truth = wave_weights(90, 52, seed=4, low=-0.5, high=1.5)
    offsets = blend(truth, deltas)
    lower, upper = np.zeros(52), np.ones(52)
    result = solve_weights(offsets, deltas, lower, upper)
    assert result.converged
    assert_in_range(result.weights, lower, upper)
    assert (result.weights == 0).any() and (result.weights == 1).any()  # exactly on the bounds, not near
    errors = vertex_errors(result.weights, deltas, offsets)
    assert result.error_max_m == pytest.approx(errors.max(), rel=1e-6)
    assert result.error_max_m > 1e-4  # the clipped weights cannot reach the motion, and it says so
    # Optimal, not just feasible: each frame matches scipy's bounded least squares (frames are independent).
    flat = deltas.reshape(52, -1).astype(np.float64).T
    for t in (0, 37, 89):
        best = lsq_linear(flat, offsets[t].ravel().astype(np.float64), bounds=(0, 1), method="bvls", tol=1e-14).x
        fit = np.linalg.norm(flat @ result.weights[t] - offsets[t].ravel())
        assert fit <= np.linalg.norm(flat @ best - offsets[t].ravel()) * (1 + 1e-5) + 1e-9


def test_a_missing_key_is_not_expressible_and_the_sentence_says_so(rig52):
    _, deltas = rig52
    truth = np.clip(wave_weights(60, 52, seed=7), 0, 1)
    offsets = blend(truth, deltas)
    result = solve_weights(offsets, deltas[1:], np.zeros(51), np.ones(51))
    assert not result.expressible()
    assert result.error_max_m > 1e-3
    sentence = result.sentence()
    assert sentence.startswith("These keys cannot express the motion: up to ")
    off, moves = (float(x) for x in re.findall(r"([\d.]+) mm", sentence))
    assert off == pytest.approx(result.error_max_m * 1e3, abs=0.051)
    assert moves == pytest.approx(result.motion_max_m * 1e3, abs=0.051)
    assert "add keys that move the lips, or use Mesh Cache." in sentence


def test_smoothness_reduces_frame_to_frame_jitter(rig52):
    _, deltas = rig52
    truth = np.clip(wave_weights(150, 52, seed=2), 0, 1)
    rng = np.random.default_rng(3)
    offsets = blend(truth, deltas) + rng.normal(0, 2e-3, (150, 5000, 3)).astype(np.float32)  # 2 mm noise
    lower, upper = np.zeros(52), np.ones(52)
    sharp, smooth, smoother = (solve_weights(offsets, deltas, lower, upper, smoothness=s) for s in (0, 0.1, 1))
    assert sharp.converged and smooth.converged and smoother.converged
    assert_in_range(smoother.weights, lower, upper)

    def jitter(result):
        return float(np.abs(np.diff(result.weights, n=2, axis=0)).mean())

    assert jitter(smoother) < jitter(smooth) < 0.7 * jitter(sharp)
    assert np.abs(smooth.weights - truth).mean() < np.abs(sharp.weights - truth).mean()  # closer to the truth
    assert sharp.error_rms_m < smooth.error_rms_m < smoother.error_rms_m  # smoothing trades a little fit


@pytest.mark.parametrize("smoothness", [0.0, 0.05, 1.0])
def test_matches_a_reference_bounded_least_squares(smoothness):
    _, deltas = smooth_rig(8, 300, seed=5)
    truth = wave_weights(24, 8, seed=6, low=-0.6, high=1.4)
    offsets = blend(truth, deltas) + np.random.default_rng(1).normal(0, 2e-4, (24, 300, 3)).astype(np.float32)
    lower = np.r_[0.0, -1.0, 0.25, np.zeros(5)]
    upper = np.r_[1.0, 0.2, 0.25, np.ones(5)]  # includes a fixed key and a negative range
    result = solve_weights(offsets, deltas, lower, upper, smoothness=smoothness)
    assert result.converged
    assert_in_range(result.weights, lower, upper)
    best = reference_weights(offsets, deltas, lower, upper, smoothness)
    mine, theirs = objective(result.weights, deltas, offsets, smoothness), objective(best, deltas, offsets, smoothness)
    assert mine <= theirs * (1 + 1e-6)
    assert np.abs(result.weights - best).max() < 1e-4


@pytest.mark.parametrize("smoothness", [0.0, 0.05])
def test_duplicate_and_collinear_keys_still_converge_within_the_sliders(smoothness):
    _, deltas = smooth_rig(8, 400, seed=8)
    truth = np.clip(wave_weights(24, 8, seed=9), 0, 1)
    offsets = blend(truth, deltas)
    rig = np.concatenate([deltas, deltas[:3], 0.5 * deltas[3:5], -deltas[5:6]])  # copies, halves, a mirror
    lower, upper = np.zeros(len(rig)), np.ones(len(rig))
    result = solve_weights(offsets, rig, lower, upper, smoothness=smoothness)
    assert result.converged
    assert_in_range(result.weights, lower, upper)
    best = reference_weights(offsets, rig, lower, upper, smoothness)
    mine, theirs = objective(result.weights, rig, offsets, smoothness), objective(best, rig, offsets, smoothness)
    assert mine <= theirs * (1 + 1e-6) + 1e-12
    if smoothness == 0:
        assert result.error_max_m < 1e-5 and result.expressible()


def test_keys_that_move_nothing_get_weight_zero_or_their_nearest_bound():
    _, deltas = smooth_rig(4, 200, seed=10)
    rig = np.concatenate([deltas, np.zeros((2, 200, 3), np.float32)])
    truth = np.clip(wave_weights(20, 4, seed=11), 0, 1)
    offsets = blend(truth, deltas)
    lower, upper = np.r_[np.zeros(4), 0.0, 0.2], np.r_[np.ones(4), 1.0, 1.0]
    result = solve_weights(offsets, rig, lower, upper, smoothness=0.01)
    assert (result.weights[:, 4] == 0).all()
    assert (result.weights[:, 5] == np.float32(0.2)).all()
    assert result.error_max_m < 1e-4

    nothing = solve_weights(offsets, np.zeros((2, 200, 3)), np.zeros(2), np.ones(2))
    assert (nothing.weights == 0).all()
    assert nothing.error_max_m == pytest.approx(nothing.motion_max_m) and not nothing.expressible()


def test_one_key_and_one_frame():
    _, deltas = smooth_rig(1, 100, seed=12)
    offsets = blend(np.array([[0.7], [0.2], [1.3]]), deltas)
    result = solve_weights(offsets, deltas, [0.0], [1.0], smoothness=0.5)
    assert result.weights.shape == (3, 1)
    assert_in_range(result.weights, np.zeros(1), np.ones(1))
    single = solve_weights(offsets[:1], deltas, [0.0], [1.0], smoothness=0.5)
    assert single.weights.shape == (1, 1) and single.weights[0, 0] == pytest.approx(0.7, abs=1e-5)
    assert single.sentence() == "The key reproduces the motion within 0.1 mm."
    far = solve_weights(offsets[2:] * 10, deltas, [0.0], [1.0])
    assert far.sentence().startswith("This key cannot express the motion: up to ")


def test_slider_ranges_hold_after_rounding_to_float32():
    _, deltas = smooth_rig(4, 100, seed=13)
    offsets = blend(np.array([[2.0, -2.0, 0.5, 0.5]] * 4), deltas)
    lower, upper = np.array([0.1, -0.3, 0.1, 0.1]), np.array([0.7, 0.9, 0.4, 0.1])  # none exact in float32
    result = solve_weights(offsets, deltas, lower, upper)
    assert_in_range(result.weights[:, :3], lower[:3], upper[:3])
    # On the bound: the float32 nearest to it from inside the range.
    bound = np.array([0.7, -0.3, 0.4])
    outward = np.float32([np.inf, -np.inf, np.inf])
    on = result.weights[0, :3]
    assert (np.abs(on.astype(np.float64) - bound) < 1e-7).all()
    assert not ((np.nextafter(on, outward) >= lower[:3]) & (np.nextafter(on, outward) <= upper[:3])).any()
    assert (result.weights[:, 3] == np.float32(0.1)).all()  # no float32 lies in [0.1, 0.1]: the nearest one
    wide = solve_weights(offsets[:, :, :] * 4, deltas[:3], np.full(3, -10.0), np.full(3, 10.0))
    assert wide.converged and -10 <= wide.weights.min() and wide.weights.max() <= 10


def test_vertex_weights_leave_out_vertices_from_the_fit_and_the_errors():
    _, deltas = smooth_rig(6, 300, seed=14)
    truth = np.clip(wave_weights(30, 6, seed=15), 0, 1)
    offsets = blend(truth, deltas)
    offsets[:, :50] += 0.01  # 1 cm of motion no key makes, on vertices the user masks out
    mask = np.r_[np.zeros(50), np.ones(250)]
    masked = solve_weights(offsets, deltas, np.zeros(6), np.ones(6), vertex_weights=mask)
    assert np.abs(masked.weights - truth).max() < 1e-3
    assert masked.error_max_m < 1e-5 and masked.expressible()
    assert masked.motion_max_m == pytest.approx(np.linalg.norm(offsets[:, 50:], axis=2).max(), rel=1e-6)
    unmasked = solve_weights(offsets, deltas, np.zeros(6), np.ones(6))
    assert unmasked.error_max_m > 5e-3


def test_measurement_in_small_blocks_matches(monkeypatch, rig52):
    _, deltas = rig52
    truth = np.clip(wave_weights(40, 52, seed=16), 0, 1)
    offsets = blend(truth, deltas) + np.float32(1e-4)
    whole = solve_weights(offsets, deltas, np.zeros(52), np.ones(52))
    monkeypatch.setattr(solve, "_BLOCK_BYTES", 5000 * 3 * 8 * 3)  # three frames per block, a ragged last one
    blocked = solve_weights(offsets, deltas, np.zeros(52), np.ones(52))
    np.testing.assert_allclose(blocked.frame_error_max_m, whole.frame_error_max_m, rtol=1e-12)
    np.testing.assert_allclose(blocked.weights, whole.weights, atol=1e-6)
    assert blocked.error_rms_m == pytest.approx(whole.error_rms_m, rel=1e-9)


@pytest.mark.parametrize("frames", [1, 2, 5, 8, 1801])
def test_the_fft_dct_matches_the_cosine_basis_and_inverts(frames):
    values = np.random.default_rng(frames).standard_normal((frames, 3))
    n = np.arange(frames)
    basis = 2 * np.cos(np.pi * np.outer(n, n + 0.5) / frames)  # X_k = 2 sum_n x_n cos(pi k (n + 1/2) / T)
    dct = solve._Dct(frames)
    np.testing.assert_allclose(dct.forward(values), basis @ values, atol=1e-9 * frames)
    np.testing.assert_allclose(dct.inverse(dct.forward(values)), values, atol=1e-12)


def bad(match: str):
    return pytest.raises(ValueError, match=match)


def test_bad_input_raises_a_sentence():
    _, deltas = smooth_rig(2, 20, seed=17)
    offsets = blend(np.full((3, 2), 0.5), deltas)
    lo, hi = np.zeros(2), np.ones(2)
    nan = offsets.copy()
    nan[1, 3, 2] = np.nan
    inf = offsets.copy()
    inf[2, 0, 0] = np.inf
    with bad("NaN or infinite offsets"):
        solve_weights(nan, deltas, lo, hi)
    with bad("NaN or infinite offsets"):
        solve_weights(inf, deltas, lo, hi)
    broken = deltas.copy()
    broken[0, 0, 0] = np.nan
    with bad("shape keys contain NaN"):
        solve_weights(offsets, broken, lo, hi)
    with bad("lower limits contain NaN"):
        solve_weights(offsets, deltas, [np.nan, 0], hi)
    with bad(r"shape \(frames, vertices, 3\)"):
        solve_weights(offsets[..., :2], deltas, lo, hi)
    with bad(r"shape \(keys, vertices, 3\)"):
        solve_weights(offsets, deltas[0], lo, hi)
    with bad("20 vertices but the motion has 19"):
        solve_weights(offsets[:, :19], deltas, lo, hi)
    with bad("at least one shape key"):
        solve_weights(offsets, deltas[:0], lo[:0], hi[:0])
    with bad("at least one frame"):
        solve_weights(offsets[:0], deltas, lo, hi)
    with bad("2 keys but 3 upper limits"):
        solve_weights(offsets, deltas, lo, np.ones(3))
    with bad("Key 1 has its lower limit 2 above its upper limit 1"):
        solve_weights(offsets, deltas, [0, 2], hi)
    with bad("smoothness must be zero or positive"):
        solve_weights(offsets, deltas, lo, hi, smoothness=-1)
    with bad("smoothness must be a finite number"):
        solve_weights(offsets, deltas, lo, hi, smoothness=float("nan"))
    with bad("20 vertices but 3 vertex weights"):
        solve_weights(offsets, deltas, lo, hi, vertex_weights=np.ones(3))
    with bad("vertex weights must be finite and zero or positive"):
        solve_weights(offsets, deltas, lo, hi, vertex_weights=-np.ones(20))
    with bad("Every vertex weight is zero"):
        solve_weights(offsets, deltas, lo, hi, vertex_weights=np.zeros(20))
    with bad("must be real numbers"):
        solve_weights(offsets.astype(np.complex64), deltas, lo, hi)
    with bad("max_iterations must be a positive integer"):
        solve_weights(offsets, deltas, lo, hi, max_iterations=0)
    with bad("tolerance must be positive"):
        solve_weights(offsets, deltas, lo, hi, tolerance=0)


def test_running_out_of_iterations_is_reported_and_stays_in_range(rig52):
    _, deltas = rig52
    offsets = blend(wave_weights(30, 52, seed=18), deltas)
    result = solve_weights(offsets, deltas, np.zeros(52), np.ones(52), smoothness=0.1, max_iterations=2)
    assert not result.converged and result.iterations == 2
    assert_in_range(result.weights, np.zeros(52), np.ones(52))
    assert result.error_max_m == pytest.approx(vertex_errors(result.weights, deltas, offsets).max(), rel=1e-6)
