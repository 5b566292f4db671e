"""Keyframe reduction for shape-key weight curves under a vertex-error tolerance in metres.

Pure module (stdlib + numpy) so it runs inside Blender's bundled Python.

The guarantee: with LINEAR F-curve interpolation between the kept keys, the mesh differs from the unreduced
``weights @ shapes`` by at most ``tolerance`` metres at every vertex and frame. The tolerance split rule:
if curve k is off by e_k(f) weight units, vertex v moves by |sum_k e_k(f) shapes[k, v]| <= sum_k |e_k(f)| n_kv,
with n_kv = |shapes[k, v]| (triangle inequality). We let curve k be off by at most
``eps_k = c * share_k / scale_k`` where scale_k = max_v n_kv and ``share_k`` is the curve's share of the budget,
and pick the largest c with ``max_v sum_k eps_k n_kv <= tolerance``. Knowing only the scales (not which vertices
each key moves), the worst case is that every key peaks on the same vertex: c = tolerance / sum_k share_k,
i.e. ``tolerance / K`` per curve for equal shares. With the shapes themselves, keys that move different
vertices share the budget less pessimistically and every eps_k grows by the same factor.
Shares: "equal" (default), or "adaptive", which reduces twice: the first pass measures how many keys each curve
needs, then the budget is split to minimise the total (for a linear fit of a smooth curve, keys ~ 1/sqrt(eps),
so the optimum is share_k ~ (keys_k * sqrt(eps_k) / scale_k) ** (2/3) * scale_k), keeping the better of the two.
It saves ~5-10 % of the keys on smooth curves and nothing on speech-rate curves keyed on most frames, for twice
the time, hence not the default. Either way the bound holds.
The bound is a worst case (every curve off by its full eps, all pushing one vertex the same way): on the
benchmark take the reduced mesh is typically 5-8x closer than ``tolerance``.

Between frames (fractional timing offsets, subframes) both the reduced and the unreduced curves are linear,
so the bound holds there too. Reduce the weights at the scene rate (after `timing.resample_to_scene`).

The reduction itself is Ramer-Douglas-Peucker run on all curves at once with numpy: every pass splits each
segment whose worst frame is out of tolerance at that frame, until none is. Keys sit on the curve's own
(float32) values, first and last frame always included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import real_array, require_finite

DEFAULT_TOLERANCE_M = 1e-4  # 0.1 mm: well below what a viewer can see on a life-size head
# Keep this share of the budget in reserve for float32 rounding in Blender's F-curve evaluation and in the
# shape-key sum, so the bound also holds for what Blender actually shows.
_SAFETY = 1e-3


@dataclass(frozen=True, eq=False)
class KeyCurve:
    """The keys of one weight curve: 0-based frame ``indices`` (int64, increasing) and float32 ``values``."""

    indices: np.ndarray
    values: np.ndarray


def evaluate_linear(indices: np.ndarray, values: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames,) float64 curve of LINEAR interpolation through the keys, held flat outside them."""
    indices = np.asarray(indices)
    values = np.asarray(values, dtype=np.float64)
    if indices.ndim != 1 or indices.shape != values.shape or indices.size == 0:
        raise ValueError(f"need matching non-empty 1-D indices and values, got {indices.shape} and {values.shape}")
    if indices.size > 1 and not (np.diff(indices) > 0).all():
        raise ValueError("key indices must be strictly increasing")
    return np.interp(np.arange(int(n_frames), dtype=np.float64), indices.astype(np.float64), values)


def weight_tolerances(
    scales: np.ndarray,
    tolerance: float = DEFAULT_TOLERANCE_M,
    shares: np.ndarray | None = None,
    shapes: np.ndarray | None = None,
) -> np.ndarray:
    """(K,) largest error each weight curve may have so the mesh stays within ``tolerance`` (module note).

    ``scales`` (K,) is max_v |shapes[k, v]| in metres per unit weight; ``shares`` (K,) the split of the
    budget (equal when None); ``shapes`` (K, V, 3), when given, tightens the split by using where each key
    moves the mesh. Curves whose key moves nothing get an infinite tolerance.
    """
    scales = np.asarray(scales, dtype=np.float64)
    if scales.ndim != 1 or not np.isfinite(scales).all() or (scales < 0).any():
        raise ValueError(f"scales must be a 1-D array of finite non-negative metres, got shape {scales.shape}")
    tolerance = float(tolerance)
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number of metres, got {tolerance!r}")
    shares = np.ones_like(scales) if shares is None else np.asarray(shares, dtype=np.float64)
    if shares.shape != scales.shape or not np.isfinite(shares).all() or (shares < 0).any():
        raise ValueError(f"shares must be {scales.shape[0]} finite non-negative numbers, got shape {shares.shape}")
    moving = scales > 0
    shares = np.where(moving, shares, 0.0)
    if not shares.any():
        shares = moving.astype(np.float64)
    eps = np.full(scales.shape, np.inf)
    if not moving.any():
        return eps
    per_unit = np.where(moving, shares / np.where(moving, scales, 1.0), 0.0)  # eps_k / c
    if shapes is None:
        worst = float(shares.sum())  # = max_v sum_k per_unit_k * n_kv when every key peaks on one vertex
    else:
        shapes = np.asarray(shapes)
        if shapes.ndim != 3 or shapes.shape[0] != scales.shape[0] or shapes.shape[2] != 3:
            raise ValueError(f"shapes must have shape ({scales.shape[0]}, V, 3), got {shapes.shape}")
        norms = np.sqrt(np.square(shapes, dtype=np.float64).sum(axis=2))  # (K, V)
        worst = float((per_unit @ norms).max())
    c = tolerance * (1.0 - _SAFETY) / worst
    eps[moving] = c * per_unit[moving]
    return eps


def _validated_weights(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[0] < 1:
        raise ValueError(f"weights must have shape (F, K) with F >= 1, got {w.shape}")
    w = real_array(w, "weights").astype(np.float64)
    return require_finite(w, "weights contain NaN or infinite values")


def reduce_curves(weights: np.ndarray, max_errors: np.ndarray) -> list[KeyCurve]:
    """Keys for each column of ``weights`` (F, K) so LINEAR interpolation stays within ``max_errors[k]``.

    Errors are measured against the given weights, from keys holding their float32 values (what Blender
    stores). A max error of inf keeps only the first and last frame.
    """
    y = _validated_weights(weights).T.copy()  # (K, F): each curve contiguous
    n_curves, n_frames = y.shape
    eps = np.asarray(max_errors, dtype=np.float64)
    if eps.shape != (n_curves,) or np.isnan(eps).any() or (eps <= 0).any():
        raise ValueError(f"max_errors must be {n_curves} positive numbers, got {np.asarray(max_errors)!r}")
    stored = y.astype(np.float32).astype(np.float64)
    keys = np.zeros((n_curves, n_frames), dtype=bool)
    keys[:, 0] = keys[:, -1] = True
    if n_frames > 2:
        _split_until_within(y, stored, keys, eps)
    out = []
    for k in range(n_curves):
        idx = np.flatnonzero(keys[k])
        out.append(KeyCurve(indices=idx.astype(np.int64), values=stored[k, idx].astype(np.float32)))
    return out


def _split_until_within(y: np.ndarray, stored: np.ndarray, keys: np.ndarray, eps: np.ndarray) -> None:
    """Vectorised Ramer-Douglas-Peucker on all curves at once: add each out-of-tolerance segment's worst frame.

    Each pass looks only at the inner frames of the segments still pending (out of tolerance or not yet
    checked), all curves in one flat array: a segment found within tolerance never changes again, and noisy
    curves need ~60 passes, so re-scanning whole curves every pass cost 3-5x more.
    """
    n_frames = y.shape[1]
    flat_y, flat_stored = y.ravel(), stored.ravel()
    inv_eps = 1.0 / eps
    curve = np.flatnonzero(np.isfinite(eps))  # pending segments: curve, left key, right key
    left = np.zeros(curve.size, dtype=np.int64)
    right = np.full(curve.size, n_frames - 1, dtype=np.int64)
    while curve.size:
        inner = right - left - 1
        if not inner.all():  # adjacent keys: nothing in between to check
            has = inner > 0
            curve, left, right, inner = curve[has], left[has], right[has], inner[has]
            if not curve.size:
                break
        starts = np.cumsum(inner) - inner  # where each segment's frames begin in the flat arrays
        # Per-frame copies of per-segment values by np.repeat (a sequential write, cheaper than gathers).
        offset = np.arange(1, int(inner.sum()) + 1, dtype=np.int64) - np.repeat(starts, inner)  # frame - left
        base = curve * n_frames
        y_left, y_right = flat_stored[base + left], flat_stored[base + right]
        # Same arithmetic as interpolating between the two keys frame by frame (LINEAR F-curve).
        approx = offset / np.repeat((right - left).astype(np.float64), inner)
        approx *= np.repeat(y_right - y_left, inner)
        approx += np.repeat(y_left, inner)
        err = flat_y[offset + np.repeat(base + left, inner)]
        err -= approx
        np.abs(err, out=err)
        err *= np.repeat(inv_eps[curve], inner)
        seg_max = np.maximum.reduceat(err, starts)
        bad = seg_max > 1.0
        if not bad.any():
            break
        at_max = np.flatnonzero((err == np.repeat(seg_max, inner)) & np.repeat(bad, inner))
        seg = np.searchsorted(starts, at_max, side="right") - 1
        first = np.r_[True, seg[1:] != seg[:-1]]  # the earliest worst frame of each bad segment
        split = offset[at_max[first]] + left[seg[first]]
        curve, left, right = curve[bad], left[bad], right[bad]
        keys[curve, split] = True
        # Both halves of every split segment are pending, kept in curve and frame order.
        curve = np.repeat(curve, 2)
        left, right = np.stack([left, split], axis=1).ravel(), np.stack([split, right], axis=1).ravel()


def reduce_keyframes(
    weights: np.ndarray,
    scales: np.ndarray,
    tolerance: float = DEFAULT_TOLERANCE_M,
    *,
    shapes: np.ndarray | None = None,
    split: str = "equal",
) -> list[KeyCurve]:
    """Reduce (F, K) weight curves so the reconstructed mesh stays within ``tolerance`` metres of
    ``weights @ shapes`` at every vertex and frame (module note for the rule).

    ``scales`` (K,) = max vertex displacement per unit weight of each key (`bake_math.shape_scales`);
    ``shapes`` (K, V, 3) optionally tightens the bound; ``split`` is "equal" or "adaptive".
    """
    if split not in ("adaptive", "equal"):
        raise ValueError(f"split must be 'adaptive' or 'equal', got {split!r}")
    w = _validated_weights(weights)
    scales = np.asarray(scales, dtype=np.float64)
    if scales.shape != (w.shape[1],):
        raise ValueError(f"scales must have one entry per weight curve ({w.shape[1]}), got shape {scales.shape}")
    eps = weight_tolerances(scales, tolerance, shapes=shapes)
    curves = reduce_curves(w, eps)
    if split == "equal" or w.shape[0] <= 2:
        return curves
    # Curves that needed many keys get a bigger share: keys_k ~ A_k / sqrt(eps_k), minimise sum_k keys_k
    # subject to the same bound (Lagrange: eps_k ~ (A_k / scale_k) ** (2/3)).
    moving = np.isfinite(eps)
    n_keys = np.array([c.indices.size for c in curves], dtype=np.float64)
    effort = np.where(moving, (n_keys - 1.0) * np.sqrt(np.where(moving, eps, 0.0)), 0.0)
    shares = np.where(moving, (effort / np.where(moving, scales, 1.0)) ** (2.0 / 3.0) * scales, 0.0)
    if not (shares > 0).any():
        return curves
    adaptive_eps = weight_tolerances(scales, tolerance, shares=shares, shapes=shapes)
    adaptive = reduce_curves(w, adaptive_eps)
    # Keep whichever split needed fewer keys in total (the key-count model is only approximate).
    if sum(c.indices.size for c in adaptive) < sum(c.indices.size for c in curves):
        return adaptive
    return curves


def total_keys(curves: list[KeyCurve]) -> int:
    """Keys written over all curves."""
    return int(sum(c.indices.size for c in curves))
