"""Compress a take of per-frame vertex offsets into K shape keys plus one weight curve per key (pure).

The take is the (F, V*3) matrix A of offsets from the neutral face. We keep its top right singular vectors
(PCA **without mean-centring**): offsets are already deltas from the Basis shape key, so the neutral face is
the origin of the space. Without centring a silent frame (all-zero offsets) projects to exactly zero weights,
and every key can be keyed to 0 for rest. Centring would make the take's average face a hidden extra key at
constant weight 1 that animators would have to keep, and would put silence at non-zero weights on every curve.
"Variance" therefore means energy (the sum of squared offsets), and ``explained`` is each key's share of it.

Speed: a 5-minute take is 9000 x 15069 float32 values (517 MiB), too big for an exact SVD or either Gram
matrix. `decompose` finds the subspace with a randomized range finder (one power iteration) on a strided
subset of <= 2048 frames (speech shapes recur many times a minute), then projects *all* frames onto it and
rotates within it (Rayleigh-Ritz), so ``explained``, K and ``error_max_m`` are exact for the whole take. The
sketch starts 32 wide and is widened by new random columns deflated against the directions found (never
restarted), straight to the cap when the missing energy shows K will be max_keys anyway; frames that fit worst
are added to the subset if it missed energy. Small matrices go through eigh, products through few large BLAS
calls (each call wakes BLAS threads, which spin on a busy machine).

Choosing K: the smallest number of keys reaching ``variance_target`` of the energy (at most max_keys). On
noisy takes that is a poor proxy: noise over every vertex holds a share of the energy no key budget removes.
Given the animator's tolerance (``error_tolerance_m``), K may stop at the smallest k whose largest error is
* <= half the tolerance (the keyframe reduction is bounded by the tolerance against the unreduced keys, so
  1.5x the tolerance is the worst case; it typically adds 1/8 to 1/4 of it, keeping the baked mesh within), or
* within a tenth of the tolerance of the error with all max_keys keys: the keys after k would change no
  vertex visibly, e.g. once only noise is left (the benchmark take: 20 keys, 0.063 mm as with 64 keys).
Candidate k are judged, by bisection, on the 64 frames with the largest residual energy after k keys (exact
and cheap from the weights); the exact error over the whole take is then measured for the chosen K, and if
it breaks the rule the worst frame joins the judged ones and K is chosen again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .arrays import xyz_array

_OVERSAMPLE = 10  # extra sketch columns beyond the keys we expect to keep: the usual randomized-SVD margin
_FIRST_WIDTH = 32  # first sketch width; widened (up to max_keys + oversample) when the take needs more keys
_POWER_ITERATIONS = 1  # speech spectra fall fast; one pass of subspace iteration is plenty with oversampling
_ENRICH_ROUNDS = 2  # times the worst-fit frames may be added to the subset when it missed energy
_ENRICH_FRAMES = 256
_SUBSET_SLACK = 1.25  # whole-take residual up to this times the subset's still counts as representative
_EXACT_MAX_VALUES = 500_000  # below this many matrix entries a full LAPACK SVD is cheaper than being clever
_BLOCK_FRAMES = 64  # frames per element-wise block when measuring errors: small buffers stay in cache
_PRODUCT_FRAMES = 1024  # frames per matrix product when measuring errors
# K by the animator's tolerance (decompose's error_tolerance_m; module note):
_ERROR_SHARE = 0.5  # the decomposition may use half the tolerance: the keyframe reduction needs the rest
_GAIN_SHARE = 0.1  # keys that would lower the max error by less than this share of the tolerance are not worth it
_CHECK_FRAMES = 64  # frames (those the candidate keys fit worst) on which a candidate K is judged
_VERIFY_ROUNDS = 3  # whole-take re-checks of K when the judged frames missed the worst one


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
    data = xyz_array(offsets, "offsets")
    # float32 halves memory traffic, which is what the big products are bound by; metres need no more digits.
    return np.ascontiguousarray(data, dtype=np.float32).reshape(data.shape[0], -1)


def _orthonormal(m: np.ndarray, floor: float = 1e-14, passes: int = 2) -> np.ndarray:
    """Orthonormal float64 basis of m's column space, via the eigenvectors of its small Gram matrix.

    LAPACK QR/SVD of a 15069 x 32 matrix took 0.3-0.6 s here; the 32 x 32 Gram route takes milliseconds. It
    squares the condition number, so directions below ``floor`` of the top energy are dropped (float32 data
    cannot resolve them anyway) and the result is cleaned with a second pass. One pass is enough where the
    result only feeds a float32 product (every BLAS call costs a thread wake-up on a busy machine).
    """
    m = m.astype(np.float64, copy=False)
    for _ in range(passes):
        energies, vectors = np.linalg.eigh(m.T @ m)
        keep = energies > energies[-1] * floor if energies.size and energies[-1] > 0 else energies < 0
        m = m @ (vectors[:, keep] / np.sqrt(energies[keep]))
    return m


def _principal(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate m's columns into its principal directions, best first: (rotation (c, r), energies (r,)).

    ``m @ rotation`` has orthogonal columns whose squared norms are the energies (the SVD's s**2).
    """
    return _principal_of_gram(m.T @ m)


def _principal_of_gram(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rotation, energies) of a Gram matrix m.T @ m: eigenvectors by decreasing eigenvalue, tiny ones dropped."""
    energies, vectors = np.linalg.eigh(gram)
    order = np.argsort(energies)[::-1]
    energies, vectors = energies[order], vectors[:, order]
    keep = energies > energies[0] * 1e-14 if energies.size and energies[0] > 0 else energies < 0
    return vectors[:, keep], energies[keep]


class _Sketch:
    """A growing orthonormal basis ``q`` (S, r) of the dominant column space of ``rows`` (S, D), float64.

    Randomized range finder with subspace iteration (Halko, Martinsson & Tropp 2011, alg. 4.4). Widening adds a
    new random block deflated against ``q`` (each iteration projects the found directions out), so it goes on
    where the narrower sketch stopped: a sketch widened 32 -> 74 costs one 74-column sketch, where restarting
    cost 32 + 64 + 74 columns. ``z = rows.T @ q`` (D, r) and its Gram matrix are kept, so the energies of
    ``rows`` within the basis come from the small (r, r) matrix.
    """

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.q = np.zeros((rows.shape[0], 0))
        self.z = np.zeros((rows.shape[1], 0))
        self.gram = np.zeros((0, 0))

    @property
    def width(self) -> int:
        return int(self.q.shape[1])

    def _new_columns(self, m: np.ndarray) -> np.ndarray:
        """Orthonormal columns spanning m (S, w) without the span of q (float64 deflation: one round does).

        Columns that deflation leaves below 1e-5 of m's largest column (the rows have no more directions to
        give, only float32 rounding) are dropped rather than inflated into noise.
        """
        m = m.astype(np.float64)
        reference = float(np.einsum("ij,ij->j", m, m).max()) if m.size else 0.0
        if self.width:
            m -= self.q @ (self.q.T @ m)
        energies, vectors = np.linalg.eigh(m.T @ m)
        keep = energies > max(reference * 1e-10, energies[-1] * 1e-14) if energies.size else energies < 0
        return m @ (vectors[:, keep] / np.sqrt(energies[keep]))

    def widen(self, width: int, rng: np.random.Generator) -> int:
        """Add up to ``width`` directions; returns how many were added (fewer once the rows' rank is reached)."""
        rows = self.rows
        if width <= 0:
            return 0
        q = self._new_columns(rows @ rng.standard_normal((rows.shape[1], width), dtype=np.float32))
        for _ in range(_POWER_ITERATIONS):
            if not q.shape[1]:
                break
            z = _orthonormal(rows.T @ q.astype(np.float32), passes=1)
            q = self._new_columns(rows @ z.astype(np.float32))
        if not q.shape[1]:
            return 0
        z = (rows.T @ q.astype(np.float32)).astype(np.float64)
        self.q, self.z = np.hstack([self.q, q]), np.hstack([self.z, z])
        cross = self.z.T @ z  # the Gram matrix's new columns (old rows and the new block's own) in one product
        self.gram = np.block([[self.gram, cross[:-z.shape[1]]], [cross.T]])
        return int(q.shape[1])

    def energies(self) -> np.ndarray:
        """Energies of ``rows`` along its principal directions within the basis, best first."""
        return np.clip(np.linalg.eigvalsh(self.gram)[::-1], 0.0, None)

    def directions(self) -> np.ndarray:
        """(D, r') orthonormal principal directions of ``rows`` within the basis, best first."""
        # rows ~= q q^T rows, so the principal directions of z = rows^T q are those of rows, by energy.
        rotation, energies = _principal_of_gram(self.gram)
        if not energies.size:
            return np.zeros((self.z.shape[0], 0))
        v = self.z @ (rotation / np.sqrt(energies))
        # The Gram route leaves v off orthonormal by ~1e-16 x the energy spread: clean it only where that shows.
        return _orthonormal(v) if energies[0] > 1e8 * energies[-1] else v


def _next_width(width: int, cap: int, energies: np.ndarray, missing: float) -> int:
    """Sketch width to try after ``width`` fell short of the target by ``missing`` energy.

    Doubles, but goes straight to ``cap`` when that is close, or when even at the weakest direction's energy
    (the spectrum only falls from there) the missing energy needs more directions than ``cap`` allows: then K
    will be max_keys and the sketch must be as wide as it gets anyway.
    """
    weakest = float(energies[-1]) if energies.size else 0.0
    if weakest <= 0.0 or missing / weakest > cap or 2 * width + _FIRST_WIDTH // 2 >= cap:
        return cap
    return 2 * width


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
        sketch = _Sketch(rows)
        # Widen the sketch until the subset reaches the target with the oversampling margin to spare.
        while True:
            added = sketch.widen(width - sketch.width, rng)
            sub_energies = sketch.energies()
            cumulative = np.cumsum(sub_energies)
            k_sub = _first_reaching(cumulative, target * sub_total)
            width = sketch.width
            if (width >= width_cap or added == 0 or
                    (k_sub is not None and k_sub + _OVERSAMPLE <= width)):
                break
            missing = target * sub_total - (float(cumulative[-1]) if cumulative.size else 0.0)
            width = _next_width(width, width_cap, sub_energies, missing)
        weights, directions, energies = _rayleigh_ritz(a, sketch.directions())
        keep = min(max_keys, energies.shape[0])
        full_share = float(energies[:keep].sum()) / total
        if full_share >= target or round_ == _ENRICH_ROUNDS:
            return weights, directions, energies
        sub_share = float(sub_energies[:keep].sum()) / sub_total if sub_total > 0 else 0.0
        # The subset is representative (the take just needs > max_keys keys) when the whole take's residual is
        # about the subset's. The sketch fits some of the subset's own noise (r directions of S frames), so
        # on a noisy take the subset's residual is a few % smaller: that alone must not trigger another round.
        if width >= width_cap and 1.0 - full_share <= _SUBSET_SLACK * (1.0 - sub_share) + 0.5 * (1.0 - target):
            return weights, directions, energies
        # The subset missed part of the take: add the frames the current keys fit worst, widen, and retry.
        residual = row_energy - np.square(weights[:, :keep]).sum(axis=1)
        residual[picked] = -np.inf
        worst = np.argsort(residual)[-_ENRICH_FRAMES:]
        worst = worst[residual[worst] > 0]
        if worst.size == 0:
            return weights, directions, energies
        picked = np.union1d(picked, worst)
        rows = a[picked]
        width = min(width_cap, max(_FIRST_WIDTH, 2 * width))
    raise AssertionError("unreachable")


class _ErrorRule:
    """K by the animator's tolerance (module note), judged on the frames the candidate keys fit worst.

    ``weights`` (F, m) and ``directions`` (D, m) are the take's principal weights and orthonormal directions,
    best first; only the first ``limit`` (<= max_keys) are candidates. A frame's residual energy after k keys
    is exact and cheap (its energy minus its first k squared weights), so the frames with the most are where
    the largest vertex error is sought; frames that the exact whole-take check found worst are added to them.
    """

    def __init__(self, a: np.ndarray, row_energy: np.ndarray, weights: np.ndarray, directions: np.ndarray,
                 limit: int, tolerance: float) -> None:
        self.a, self.limit = a, limit
        self.weights = weights[:, :limit].astype(np.float32)
        self.directions = np.ascontiguousarray(directions[:, :limit].T, dtype=np.float32)
        self.residual = row_energy[:, None] - np.cumsum(np.square(weights[:, :limit]), axis=1)
        self.allowed = tolerance * _ERROR_SHARE
        self.gain = tolerance * _GAIN_SHARE
        self.extra = np.zeros(0, dtype=np.int64)
        self._floor: dict[int, float] = {}

    def holds(self, k: int) -> bool:
        """Whether k keys are enough: error <= allowed, or within ``gain`` of what all ``limit`` keys give."""
        residual = self.residual[:, k - 1]
        count = min(_CHECK_FRAMES, residual.size)
        frames = np.union1d(np.argpartition(residual, residual.size - count)[residual.size - count:], self.extra)
        take = self.a[frames]
        error = float(_frame_errors(take, self.weights[frames, :k], self.directions[:k]).max())
        if error <= self.allowed:
            return True
        # What all limit keys give on these frames: per frame it does not depend on k, so it is cached.
        new = np.array([f not in self._floor for f in frames.tolist()])
        if new.any():
            floors = _frame_errors(take[new], self.weights[frames[new]], self.directions)
            self._floor.update(zip(frames[new].tolist(), floors.tolist(), strict=True))
        return error <= max(self._floor[f] for f in frames.tolist()) + self.gain

    def smallest(self, lo: int = 1) -> int:
        """Smallest k in [lo, limit] that holds, by bisection (the error falls with k, if not strictly)."""
        hi = self.limit  # holds by definition: it is within gain of itself
        while lo < hi:
            mid = (lo + hi) // 2
            if self.holds(mid):
                hi = mid
            else:
                lo = mid + 1
        return hi


def _exact(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(a.astype(np.float64), full_matrices=False)
    return u * s, vt.T, s * s


def decompose(
    offsets: np.ndarray,
    variance_target: float = 0.995,
    max_keys: int = 64,
    min_keys: int = 1,
    *,
    error_tolerance_m: float | None = None,
    method: str = "auto",
    sample_frames: int = 2048,
    seed: int = 0,
    measure_error: bool = True,
) -> Basis:
    """Shape keys + weights for a take of (F, V, 3) offsets from the neutral face.

    K is the smallest number of keys whose share of the take's energy reaches ``variance_target``, clamped to
    [min_keys, max_keys]. With ``error_tolerance_m`` (the keyframe tolerance in metres), K may be smaller: the
    smallest whose largest vertex error is <= half the tolerance, or within a tenth of the tolerance of what
    all max_keys keys achieve (module note). ``method``: "exact" (LAPACK SVD of the whole take), "randomized"
    (see the module note; ``sample_frames`` bounds the subset, ``seed`` makes it reproducible) or "auto" (exact
    for tiny takes). Keys beyond the take's rank (e.g. ``min_keys`` on a silent take) are all-zero shapes with
    zero weights. ``measure_error=False`` skips one pass over the take and leaves ``error_max_m`` NaN (and
    the tolerance rule unchecked on the whole take).
    """
    if not 0.0 < float(variance_target) <= 1.0:
        raise ValueError(f"variance_target must be in (0, 1], got {variance_target!r}")
    if int(max_keys) < 1:
        raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
    if not 0 <= int(min_keys) <= int(max_keys):
        raise ValueError(f"min_keys must be between 0 and max_keys ({max_keys}), got {min_keys!r}")
    if error_tolerance_m is not None and not (math.isfinite(float(error_tolerance_m)) and error_tolerance_m > 0):
        raise ValueError(f"error_tolerance_m must be a positive number of metres or None, got {error_tolerance_m!r}")
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

    rule = None
    if total == 0.0:
        weights, directions, energies = np.zeros((frames, 0)), np.zeros((dims, 0)), np.zeros(0)
        n_keys = by_variance = min_keys
    else:
        if method == "exact" or (method == "auto" and a.size <= _EXACT_MAX_VALUES):
            weights, directions, energies = _exact(a)
        else:
            weights, directions, energies = _randomized(a, row_energy, float(variance_target), max_keys,
                                                        int(sample_frames), seed)
        reached = _first_reaching(np.cumsum(energies), variance_target * total)
        # Unreached (target 1.0 against rounding, or a take needing more than max_keys): keep all we have.
        n_keys = by_variance = min(max_keys, max(min_keys, reached if reached is not None else energies.shape[0]))
        if error_tolerance_m is not None:
            rule = _ErrorRule(a, row_energy, weights, directions, min(max_keys, energies.shape[0]),
                              float(error_tolerance_m))
            n_keys = min(by_variance, max(min_keys, rule.smallest()))

    shapes, key_weights = _normalised(weights, directions, n_keys)
    error = math.nan
    if measure_error:
        error, worst_frame = _max_error(a, key_weights, shapes)
        # The tolerance rule judged K on sampled frames: if the whole take is worse than allowed, judge again
        # with the worst frame included (a few rounds at most; each costs one pass over the take).
        for _ in range(_VERIFY_ROUNDS):
            if rule is None or n_keys >= by_variance or error <= rule.allowed:
                break
            rule.extra = np.union1d(rule.extra, [worst_frame])
            if rule.holds(n_keys):
                break
            n_keys = min(by_variance, rule.smallest(n_keys + 1))
            shapes, key_weights = _normalised(weights, directions, n_keys)
            error, worst_frame = _max_error(a, key_weights, shapes)
    explained = np.zeros(n_keys)
    kept = min(n_keys, energies.shape[0])
    if total > 0:
        explained[:kept] = energies[:kept] / total
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


def _max_error(a: np.ndarray, weights: np.ndarray, shapes: np.ndarray) -> tuple[float, int]:
    """(largest per-vertex distance between the take (F, D) and weights @ shapes, the frame where it is)."""
    frames, dims = a.shape
    # Few large products (each BLAS call costs a thread wake-up, ruinous on a busy machine), then the
    # element-wise work in small cache-sized slices. Buffers are reused: fresh ones page-fault every 4 KiB.
    big = min(_PRODUCT_FRAMES, frames)
    recon = np.empty((big, dims), dtype=np.float32)
    dist2 = np.empty((_BLOCK_FRAMES, dims // 3), dtype=np.float32)
    worst, worst_frame = 0.0, 0
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
            block_worst = float(d.max())
            if block_worst > worst:
                worst, worst_frame = block_worst, s + t + int(d.argmax()) // d.shape[1]
    return math.sqrt(worst), worst_frame


def _frame_errors(a: np.ndarray, weights: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """(F,) largest per-vertex distance in each frame between a few frames a (F, D) and weights @ shapes."""
    r = a - weights @ shapes
    np.square(r, out=r)
    xyz = r.reshape(r.shape[0], -1, 3)
    return np.sqrt((xyz[:, :, 0] + xyz[:, :, 1] + xyz[:, :, 2]).max(axis=1))


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
