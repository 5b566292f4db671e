"""Compress a take of per-frame vertex offsets into K shape keys plus one weight curve per key.

Pure module (stdlib + numpy) so it runs inside Blender's bundled Python.

The take is the (F, V*3) matrix A of offsets from the neutral face. We keep its top right singular vectors
(PCA **without mean-centring**): offsets are already deltas from the Basis shape key, so the neutral face is
the origin of the space. Without centring a silent frame (all-zero offsets) projects to exactly zero weights,
and every key can be keyed to 0 for rest. Centring would make the take's average face a hidden extra key at
constant weight 1 that animators would have to keep, and would put silence at non-zero weights on every curve.
"Variance" therefore means energy (the sum of squared offsets), and ``explained`` is each key's share of it.

Speed: a 5-minute take is 9000 x 15069 float32 values (517 MiB). An exact SVD is out (LAPACK needed ~60 s
for just 1500 of those frames on the 2-core test machine) and so are both Gram matrices (9000^2 or 15069^2).
`decompose` finds the subspace with a randomized range finder (one power iteration) on a strided subset of
<= 2048 frames (speech shapes recur many times per minute, so every 5th frame sees them), then projects *all*
frames onto it and rotates within it (Rayleigh-Ritz), so ``explained``, the choice of K and ``error_max_m``
are exact for the whole take. If the subset missed energy, the frames fitting worst are added and the search
repeats. The whole take is read about three times (energies, projection, error): ~1 s for 5 minutes.
Small matrices (K x K Gram matrices) go through eigh rather than QR/SVD of tall ones, and products are done
in few large BLAS calls: each call wakes BLAS threads, which costs milliseconds on a busy machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_OVERSAMPLE = 10  # extra sketch columns beyond the keys we expect to keep: the usual randomized-SVD margin
_FIRST_WIDTH = 32  # first sketch width; doubles (up to max_keys + oversample) when the take needs more keys
_POWER_ITERATIONS = 1  # speech spectra fall fast; one pass of subspace iteration is plenty with oversampling
_ENRICH_ROUNDS = 2  # times the worst-fit frames may be added to the subset when it missed energy
_ENRICH_FRAMES = 256
_EXACT_MAX_VALUES = 500_000  # below this many matrix entries a full LAPACK SVD is cheaper than being clever
_BLOCK_FRAMES = 64  # frames per element-wise block when measuring errors: small buffers stay in cache
_PRODUCT_FRAMES = 1024  # frames per matrix product when measuring errors


@dataclass(frozen=True, eq=False)
class Basis:
    """K shape keys and their weight curves: ``reconstruct(basis)[f] == weights[f] @ shapes``.

    ``shapes`` (K, V, 3) float32 metres per unit weight; ``weights`` (F, K) float32, scaled so each key's peak
    |weight| over the take is exactly +1 (min >= -1): sliders stay in [-1, 1]. ``explained`` (K,) is each key's
    share of the take's energy (sum of squared offsets); ``error_max_m`` is the largest distance, over every
    frame and vertex, between the take and its K-key reconstruction (NaN when not measured).
    """

    shapes: np.ndarray
    weights: np.ndarray
    explained: np.ndarray
    error_max_m: float

    @property
    def n_keys(self) -> int:
        return int(self.shapes.shape[0])

    @property
    def explained_total(self) -> float:
        return float(self.explained.sum())

    @property
    def weight_min(self) -> np.ndarray:
        """(K,) smallest weight of each key: the slider_min it needs (Blender clamps to the slider range)."""
        return self.weights.min(axis=0) if self.weights.shape[0] else np.zeros(self.n_keys, np.float32)

    @property
    def weight_max(self) -> np.ndarray:
        """(K,) largest weight of each key (1.0 unless the key is unused): the slider_max it needs."""
        return self.weights.max(axis=0) if self.weights.shape[0] else np.zeros(self.n_keys, np.float32)

    @property
    def scales(self) -> np.ndarray:
        """(K,) metres the farthest-moving vertex of each key travels per unit weight (for keyframe tolerance)."""
        return shape_scales(self.shapes)


def shape_scales(shapes: np.ndarray) -> np.ndarray:
    """(K,) float64 ``max_v |shapes[k, v]|``: the largest vertex displacement per unit weight of each key."""
    shapes = np.asarray(shapes)
    if shapes.ndim != 3 or shapes.shape[2] != 3:
        raise ValueError(f"shapes must have shape (K, V, 3), got {shapes.shape}")
    if shapes.shape[1] == 0:
        return np.zeros(shapes.shape[0])
    return np.sqrt(np.square(shapes, dtype=np.float64).sum(axis=2).max(axis=1))


def _validated_take(offsets: np.ndarray) -> np.ndarray:
    data = np.asarray(offsets)
    if data.ndim != 3 or data.shape[2] != 3:
        raise ValueError(f"offsets must have shape (F, V, 3), got {data.shape}")
    if data.shape[0] < 1 or data.shape[1] < 1:
        raise ValueError(f"offsets need at least one frame and one vertex, got shape {data.shape}")
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise ValueError(f"offsets must be real numbers, got dtype {data.dtype}")
    # float32 halves memory traffic, which is what the big products are bound by; metres need no more digits.
    return np.ascontiguousarray(data, dtype=np.float32).reshape(data.shape[0], -1)


def _orthonormal(m: np.ndarray, floor: float = 1e-14) -> np.ndarray:
    """Orthonormal float64 basis of m's column space, via the eigenvectors of its small Gram matrix.

    LAPACK QR/SVD of a 15069 x 32 matrix took 0.3-0.6 s here; the 32 x 32 Gram route takes milliseconds. It
    squares the condition number, so directions below ``floor`` of the top energy are dropped (float32 data
    cannot resolve them anyway) and the result is cleaned with a second pass.
    """
    m = m.astype(np.float64, copy=False)
    for _ in range(2):
        energies, vectors = np.linalg.eigh(m.T @ m)
        keep = energies > energies[-1] * floor if energies.size and energies[-1] > 0 else energies < 0
        m = m @ (vectors[:, keep] / np.sqrt(energies[keep]))
    return m


def _principal(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate m's columns into its principal directions, best first: (rotation (c, r), energies (r,)).

    ``m @ rotation`` has orthogonal columns whose squared norms are the energies (the SVD's s**2).
    """
    energies, vectors = np.linalg.eigh(m.T @ m)
    order = np.argsort(energies)[::-1]
    energies, vectors = energies[order], vectors[:, order]
    keep = energies > energies[0] * 1e-14 if energies.size and energies[0] > 0 else energies < 0
    return vectors[:, keep], energies[keep]


def _sketch(rows: np.ndarray, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dominant row space of ``rows`` (S, D): ((D, r <= width) orthonormal float64 basis, best first; energies).

    Randomized range finder with subspace iteration (Halko, Martinsson & Tropp 2011, alg. 4.4). The energies
    are those of ``rows`` along each direction (slight underestimates of its top squared singular values).
    """
    dims = rows.shape[1]
    q = _orthonormal(rows @ rng.standard_normal((dims, width), dtype=np.float32))
    for _ in range(_POWER_ITERATIONS):
        z = _orthonormal(rows.T @ q.astype(np.float32))
        q = _orthonormal(rows @ z.astype(np.float32))
    # rows ~= q q^T rows, so the principal directions of z = rows^T q (D, r) are those of rows, by energy.
    z = (rows.T @ q.astype(np.float32)).astype(np.float64)
    rotation, energies = _principal(z)
    return _orthonormal(z @ rotation), energies


def _first_reaching(cumulative: np.ndarray, target: float) -> int | None:
    """Smallest k with cumulative[k - 1] >= target, or None."""
    hit = np.flatnonzero(cumulative >= target)
    return int(hit[0]) + 1 if hit.size else None


def _rayleigh_ritz(a: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best directions for the whole take inside span(v): (weights (F, m), directions (D, m), energies (m,))."""
    w = (a @ v.astype(np.float32)).astype(np.float64)
    rotation, energies = _principal(w)
    return w @ rotation, v @ rotation, energies


def _randomized(a: np.ndarray, row_energy: np.ndarray, target: float, max_keys: int, sample_frames: int,
                seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights, directions, energies) of the take's best <= max_keys + oversample directions (module note)."""
    frames, dims = a.shape
    total = float(row_energy.sum())
    rng = np.random.default_rng(seed)
    stride = max(1, math.ceil(frames / sample_frames))
    picked = np.arange(0, frames, stride)
    rows = a[::stride]  # a view: BLAS reads every stride-th row in place
    width_cap = min(max_keys + _OVERSAMPLE, frames, dims)
    width = min(width_cap, _FIRST_WIDTH)
    for round_ in range(_ENRICH_ROUNDS + 1):
        sub_total = float(row_energy[picked].sum())
        # Widen the sketch until the subset reaches the target with the oversampling margin to spare.
        while True:
            v, sub_energies = _sketch(rows, width, rng)
            k_sub = _first_reaching(np.cumsum(sub_energies), target * sub_total)
            if width >= width_cap or (k_sub is not None and k_sub + _OVERSAMPLE <= width):
                break
            width = min(width_cap, 2 * width)
        weights, directions, energies = _rayleigh_ritz(a, v)
        keep = min(max_keys, energies.shape[0])
        full_share = float(energies[:keep].sum()) / total
        if full_share >= target or round_ == _ENRICH_ROUNDS:
            return weights, directions, energies
        sub_share = float(sub_energies[:keep].sum()) / sub_total if sub_total > 0 else 0.0
        if width >= width_cap and full_share >= sub_share - 0.5 * (1.0 - target):
            return weights, directions, energies  # the subset is representative: the take needs > max_keys keys
        # The subset missed part of the take: add the frames the current keys fit worst, widen, and retry.
        residual = row_energy - np.square(weights[:, :keep]).sum(axis=1)
        residual[picked] = -np.inf
        worst = np.argsort(residual)[-_ENRICH_FRAMES:]
        worst = worst[residual[worst] > 0]
        if worst.size == 0:
            return weights, directions, energies
        picked = np.union1d(picked, worst)
        rows = a[picked]
        width = min(width_cap, 2 * width)
    raise AssertionError("unreachable")


def _exact(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(a.astype(np.float64), full_matrices=False)
    return u * s, vt.T, s * s


def decompose(
    offsets: np.ndarray,
    variance_target: float = 0.995,
    max_keys: int = 64,
    min_keys: int = 1,
    *,
    method: str = "auto",
    sample_frames: int = 2048,
    seed: int = 0,
    measure_error: bool = True,
) -> Basis:
    """Shape keys + weights for a take of (F, V, 3) offsets from the neutral face.

    K is the smallest number of keys whose share of the take's energy reaches ``variance_target``, clamped to
    [min_keys, max_keys]. ``method``: "exact" (LAPACK SVD of the whole take), "randomized" (see the module
    note; ``sample_frames`` bounds the subset, ``seed`` makes it reproducible) or "auto" (exact for tiny takes).
    Keys beyond the take's rank (e.g. ``min_keys`` on a silent take) are all-zero shapes with zero weights.
    ``measure_error=False`` skips one pass over the take and leaves ``error_max_m`` NaN.
    """
    if not 0.0 < float(variance_target) <= 1.0:
        raise ValueError(f"variance_target must be in (0, 1], got {variance_target!r}")
    if int(max_keys) < 1:
        raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
    if not 0 <= int(min_keys) <= int(max_keys):
        raise ValueError(f"min_keys must be between 0 and max_keys ({max_keys}), got {min_keys!r}")
    if method not in ("auto", "exact", "randomized"):
        raise ValueError(f"method must be 'auto', 'exact' or 'randomized', got {method!r}")
    if int(sample_frames) < 1:
        raise ValueError(f"sample_frames must be at least 1, got {sample_frames!r}")
    max_keys, min_keys = int(max_keys), int(min_keys)
    a = _validated_take(offsets)
    frames, dims = a.shape
    row_energy = np.einsum("ij,ij->i", a, a).astype(np.float64)
    total = float(row_energy.sum())
    if not math.isfinite(total):
        raise ValueError("offsets contain NaN or infinite values (or values too large to square in float32)")

    if total == 0.0:
        weights, directions, energies = np.zeros((frames, 0)), np.zeros((dims, 0)), np.zeros(0)
        n_keys = min_keys
    else:
        if method == "exact" or (method == "auto" and a.size <= _EXACT_MAX_VALUES):
            weights, directions, energies = _exact(a)
        else:
            weights, directions, energies = _randomized(a, row_energy, float(variance_target), max_keys,
                                                        int(sample_frames), seed)
        reached = _first_reaching(np.cumsum(energies), variance_target * total)
        # Unreached (target 1.0 against rounding, or a take needing more than max_keys): keep all we have.
        n_keys = min(max_keys, max(min_keys, reached if reached is not None else energies.shape[0]))

    shapes, key_weights = _normalised(weights, directions, n_keys)
    explained = np.zeros(n_keys)
    kept = min(n_keys, energies.shape[0])
    if total > 0:
        explained[:kept] = energies[:kept] / total
    error = _max_error(a, key_weights, shapes) if measure_error else math.nan
    return Basis(shapes=shapes.reshape(n_keys, dims // 3, 3), weights=key_weights, explained=explained,
                 error_max_m=error)


def _normalised(weights: np.ndarray, directions: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale each key so its weight curve peaks at exactly +1: (shapes (K, D), weights (F, K)), float32."""
    frames, dims = weights.shape[0], directions.shape[0]
    kept = min(n_keys, weights.shape[1])
    shapes = np.zeros((n_keys, dims), dtype=np.float32)
    out = np.zeros((frames, n_keys), dtype=np.float32)
    if kept == 0:
        return shapes, out
    w = weights[:, :kept]
    peak_at = np.abs(w).argmax(axis=0)
    peak = w[peak_at, np.arange(kept)]  # signed: flipping the sign makes the peak +1 and keeps min >= -1
    used = peak != 0.0
    safe = np.where(used, peak, 1.0)
    out[:, :kept] = np.where(used, w / safe, 0.0)
    shapes[:kept] = np.where(used[:, None], directions[:, :kept].T * safe[:, None], 0.0)
    return shapes, out


def _max_error(a: np.ndarray, weights: np.ndarray, shapes: np.ndarray) -> float:
    """Largest per-vertex distance between the take (F, D) and weights @ shapes, in blocks of frames."""
    frames, dims = a.shape
    # Few large products (each BLAS call costs a thread wake-up, ruinous on a busy machine), then the
    # element-wise work in small cache-sized slices. Buffers are reused: fresh ones page-fault every 4 KiB.
    big = min(_PRODUCT_FRAMES, frames)
    recon = np.empty((big, dims), dtype=np.float32)
    dist2 = np.empty((_BLOCK_FRAMES, dims // 3), dtype=np.float32)
    worst = 0.0
    for s in range(0, frames, big):
        n = min(big, frames - s)
        np.matmul(weights[s:s + n], shapes, out=recon[:n])
        for t in range(0, n, _BLOCK_FRAMES):
            m = min(_BLOCK_FRAMES, n - t)
            r, d = recon[t:t + m], dist2[:m]
            np.subtract(a[s + t:s + t + m], r, out=r)
            np.square(r, out=r)
            xyz = r.reshape(m, -1, 3)
            # Three strided adds: numpy's sum over a length-3 last axis is ~20x slower.
            np.add(xyz[:, :, 0], xyz[:, :, 1], out=d)
            d += xyz[:, :, 2]
            worst = max(worst, float(d.max()))
    return math.sqrt(worst)


def reconstruct(basis: Basis) -> np.ndarray:
    """(F, V, 3) float32 offsets the shape keys produce: ``weights @ shapes`` per frame."""
    k, v, _ = basis.shapes.shape
    return (basis.weights @ basis.shapes.reshape(k, v * 3)).reshape(-1, v, 3)


def max_vertex_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest Euclidean distance between matching vertices of two (..., V, 3) arrays, in their unit."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim < 2 or a.shape[-1] != 3:
        raise ValueError(f"need two arrays of the same shape (..., V, 3), got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    a2, b2 = a.reshape(-1, a.shape[-2], 3), b.reshape(-1, b.shape[-2], 3)
    worst = 0.0
    for s in range(0, a2.shape[0], _BLOCK_FRAMES):
        d = a2[s:s + _BLOCK_FRAMES].astype(np.float64) - b2[s:s + _BLOCK_FRAMES]
        worst = max(worst, float(np.square(d).sum(axis=2).max()))
    return math.sqrt(worst)
