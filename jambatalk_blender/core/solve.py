"""Solve per-vertex motion onto a mesh's own shape keys: per-frame key weights whose blend reproduces the offsets.

Pure module (stdlib + numpy; Blender's bundled Python has no scipy). Given offsets ``O`` (T, V, 3) from the
neutral face and key deltas ``D`` (K, V, 3) (key coordinates minus basis coordinates), it finds weights
``W`` (T, K) within each key's slider range that minimise

    sum_t || sum_k W[t, k] D[k] - O[t] ||^2_w  +  smoothness * g * sum_t || W[t] - W[t-1] ||^2

where ``||.||_w`` weights each vertex by ``vertex_weights`` (default 1) and ``g`` is the mean squared size of a
key's motion (the mean diagonal of the Gram matrix ``D diag(w) D^T``). So ``smoothness = 1`` charges a jump of
1.0 in one key's weight between two frames as much as missing one frame by a typical key's whole motion; the
value means the same whatever the vertex count or the keys' sizes. 0 solves every frame independently.

Method. One pass over the big arrays builds ``G = D D^T`` (K, K) and ``B = O D^T`` (T, K) in float64 (blocks
of frames, so no (T, V, 3) float64 copy); after that all work is in the (T, K) weight space. The bounded
quadratic is split into the quadratic and the box and solved by ADMM in its Douglas-Rachford form, over-relaxed
and Anderson-accelerated. The quadratic's step solves ``X (G + rho P) + lambda L X = R`` exactly (L: the path
graph's Laplacian over frames; P: the keys' Gram diagonal, which scales the penalty so keys of any size converge
alike): in the eigenbasis of ``G + rho P`` (one K x K eigh) and of L (a DCT-II basis, applied with numpy's FFT
in O(T log T)) the system is diagonal, so a step costs two (T, K) x (K, K) products and one DCT pair, and no
T x T matrix exists even for a 10-minute take. Keys with no motion get weight 0 (clipped into their range) and
leave the solve; duplicate or collinear keys make G singular, which the penalty term and the acceleration
handle (any split between them fits equally well). Finally the fit error is measured exactly over every frame
and vertex, a block of frames at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .arrays import real_array, require_finite, xyz_array

_BLOCK_BYTES = 32 << 20  # float64 temporaries per block of frames: bounded memory, still large BLAS products
_ZERO_KEY = 1e-12  # a key whose squared size is below this fraction of the largest key's moves nothing
_RHO_FLOOR = 1e-3  # smallest eigenvalue used to pick the penalty, relative to the largest
_RELAX = 1.6  # over-relaxation, a standard speed-up for splitting methods on quadratic programs
_MEMORY = 5  # Anderson acceleration history (each entry holds two (T, K) float64 arrays)


@dataclass(frozen=True, eq=False)
class SolveResult:
    """Per-frame key weights and how well they reproduce the offsets (distances in metres)."""

    weights: np.ndarray  # (T, K) float32, each column within [lower_k, upper_k]
    error_max_m: float  # largest vertex distance between weights @ deltas and the offsets, all frames and vertices
    error_rms_m: float  # root mean square of those vertex distances
    frame_error_max_m: np.ndarray  # (T,) each frame's largest vertex error
    motion_max_m: float  # largest vertex displacement of the offsets themselves, to judge the error against
    iterations: int = 0  # ADMM iterations run
    converged: bool = True  # the residuals met the tolerance within max_iterations

    def expressible(self, tolerance_m: float = 1e-3) -> bool:
        """Whether the keys reproduce the motion to within ``tolerance_m`` at every vertex of every frame."""
        return bool(self.error_max_m <= tolerance_m)

    def sentence(self, tolerance_m: float = 1e-3) -> str:
        """One line for the animator: whether these keys can carry the motion, and by how much they miss."""
        count = self.weights.shape[1]
        keys = "The key reproduces" if count == 1 else f"The {count} keys reproduce"
        if self.expressible(tolerance_m):
            # Round the bound up so "within" stays true.
            bound = max(math.ceil(self.error_max_m * 1e4 - 1e-9), 1) / 10
            return f"{keys} the motion within {bound:.1f} mm."
        subject = "This key cannot" if count == 1 else "These keys cannot"
        return (f"{subject} express the motion: up to {self.error_max_m * 1e3:.1f} mm off (the motion moves up to "
                f"{self.motion_max_m * 1e3:.1f} mm); add keys that move the lips, or use Mesh Cache.")


def solve_weights(offsets: np.ndarray, deltas: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
                  smoothness: float = 0.0, vertex_weights: np.ndarray | None = None,
                  max_iterations: int = 1000, tolerance: float = 1e-7) -> SolveResult:
    """Per-frame weights of the keys ``deltas`` (K, V, 3) that best reproduce ``offsets`` (T, V, 3), in range.

    ``lower``/``upper`` (K,) are the keys' slider ranges; ``smoothness`` >= 0 penalises frame-to-frame weight
    changes (see the module notes for its scale); ``vertex_weights`` (V,) >= 0 weights each vertex's fit, and
    vertices of weight 0 are left out of the fit and of the reported errors. ``tolerance`` bounds the ADMM
    residuals, in weights of a typical-size key. Raises ValueError, with a sentence, on bad input.
    """
    data, keys, lo, hi, vw, smooth = _validated(offsets, deltas, lower, upper, smoothness, vertex_weights)
    if not (isinstance(max_iterations, int | np.integer) and max_iterations >= 1):
        raise ValueError(f"max_iterations must be a positive integer, got {max_iterations!r}.")
    tol = _finite(tolerance, "The tolerance")
    if tol <= 0:
        raise ValueError(f"The tolerance must be positive, got {tolerance!r}.")
    frames, vertices = data.shape[:2]
    count = keys.shape[0]

    flat_keys = keys.reshape(count, vertices * 3).astype(np.float64)
    weighted_keys = flat_keys if vw is None else flat_keys * np.repeat(vw, 3)[None, :]
    gram = weighted_keys @ flat_keys.T
    gram = (gram + gram.T) / 2
    projection = _project(data, weighted_keys)

    weights = np.clip(np.zeros((frames, count)), lo, hi)  # keys that move nothing sit at 0, or the nearest bound
    diagonal = np.diag(gram).copy()
    active = diagonal > _ZERO_KEY * max(float(diagonal.max()), 0.0)
    iterations, converged = 0, True
    if active.any():
        solved, iterations, converged = _admm(gram[np.ix_(active, active)], projection[:, active], lo[active],
                                              hi[active], smooth, max_iterations, tol)
        weights[:, active] = solved
    weights = _in_range_float32(weights, lo, hi)

    frame_error, error_sq_sum, motion_max = _measure(data, flat_keys, weights, vw)
    considered = vertices if vw is None else int(np.count_nonzero(vw))
    return SolveResult(weights=weights, error_max_m=float(frame_error.max()),
                       error_rms_m=math.sqrt(error_sq_sum / (frames * considered)), frame_error_max_m=frame_error,
                       motion_max_m=motion_max, iterations=iterations, converged=converged)


def _finite(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}.")
    return number


def _validated(offsets: object, deltas: object, lower: object, upper: object, smoothness: object,
               vertex_weights: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None,
                                                float]:
    data = xyz_array(offsets, "The offsets")
    keys = xyz_array(deltas, "The key deltas", "keys", min_rows=0)
    if keys.shape[0] < 1:
        raise ValueError("Choose at least one shape key to solve onto.")
    if keys.shape[1] != data.shape[1]:
        raise ValueError(f"The shape keys have {keys.shape[1]} vertices but the motion has {data.shape[1]}; "
                         "solve onto a mesh with the motion's topology.")
    require_finite(keys, "The shape keys contain NaN or infinite coordinates.")
    count = keys.shape[0]
    bounds = []
    for value, what in ((lower, "lower"), (upper, "upper")):
        array = real_array(value, f"The keys' {what} limits").astype(np.float64).reshape(-1)
        if array.shape != (count,):
            raise ValueError(f"There are {count} keys but {array.size} {what} limits.")
        require_finite(array, f"The keys' {what} limits contain NaN or infinite values.")
        bounds.append(array)
    lo, hi = bounds
    if (lo > hi).any():
        k = int(np.argmax(lo > hi))
        raise ValueError(f"Key {k} has its lower limit {lo[k]:g} above its upper limit {hi[k]:g}.")
    smooth = _finite(smoothness, "The smoothness")
    if smooth < 0:
        raise ValueError(f"The smoothness must be zero or positive, got {smoothness!r}.")
    vw = None
    if vertex_weights is not None:
        vw = real_array(vertex_weights, "The vertex weights").astype(np.float64).reshape(-1)
        if vw.shape != (data.shape[1],):
            raise ValueError(f"There are {data.shape[1]} vertices but {vw.size} vertex weights.")
        if not np.isfinite(vw).all() or (vw < 0).any():
            raise ValueError("The vertex weights must be finite and zero or positive.")
        if not vw.any():
            raise ValueError("Every vertex weight is zero: nothing is left to fit.")
    return data, keys, lo, hi, vw, smooth


def _frame_step(frames: int, per_frame_values: int) -> int:
    return max(1, min(frames, _BLOCK_BYTES // (8 * per_frame_values)))


def _project(data: np.ndarray, weighted_keys: np.ndarray) -> np.ndarray:
    """B = offsets @ keys^T in float64, a block of frames at a time; also the check that offsets are finite."""
    frames, width = data.shape[0], weighted_keys.shape[1]
    projection = np.empty((frames, weighted_keys.shape[0]))
    step = _frame_step(frames, width)
    for start in range(0, frames, step):
        block = data[start:start + step].reshape(-1, width).astype(np.float64)  # (a strided input: copies a block)
        if not np.isfinite(block).all():
            raise ValueError("The motion contains NaN or infinite offsets.")
        projection[start:start + step] = block @ weighted_keys.T
    return projection


def _measure(data: np.ndarray, flat_keys: np.ndarray, weights: np.ndarray,
             vw: np.ndarray | None) -> tuple[np.ndarray, float, float]:
    """Exact per-frame max vertex error, total squared error and largest offset, a block of frames at a time."""
    frames, vertices = data.shape[:2]
    considered = None if vw is None else vw > 0
    frame_error = np.empty(frames)
    error_sq_sum = 0.0
    motion_max_sq = 0.0
    step = _frame_step(frames, vertices * 3)
    w64 = weights.astype(np.float64)  # the weights as stored (float32), so the error is the one the user gets
    for start in range(0, frames, step):
        block = data[start:start + step]
        moved = np.einsum("fvc,fvc->fv", block, block, dtype=np.float64)
        residual = (w64[start:start + step] @ flat_keys).reshape(-1, vertices, 3)
        residual -= block  # upcast element by element: no float64 copy of the offsets
        error_sq = np.einsum("fvc,fvc->fv", residual, residual)
        if considered is not None:
            moved = moved[:, considered]
            error_sq = error_sq[:, considered]
        motion_max_sq = max(motion_max_sq, float(moved.max()))
        frame_error[start:start + step] = np.sqrt(error_sq.max(axis=1))
        error_sq_sum += float(error_sq.sum())
    return frame_error, error_sq_sum, math.sqrt(motion_max_sq)


def _in_range_float32(weights: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The weights as float32, each still within its float64 range after rounding (bounds rounded inwards)."""
    lo32 = lo.astype(np.float32)
    hi32 = hi.astype(np.float32)
    lo32 = np.where(lo32 < lo, np.nextafter(lo32, np.float32(np.inf)), lo32)
    hi32 = np.where(hi32 > hi, np.nextafter(hi32, np.float32(-np.inf)), hi32)
    # A range narrower than float32 can hold (lower == upper, not representable): the nearest float32 value.
    narrow = lo32 > hi32
    lo32 = np.where(narrow, lo.astype(np.float32), lo32)
    hi32 = np.where(narrow, lo.astype(np.float32), hi32)
    return np.clip(weights.astype(np.float32), lo32, hi32)


class _Dct:
    """DCT-II along axis 0, X_k = 2 sum_n x_n cos(pi k (n + 1/2) / T), and its exact inverse, each through one
    real FFT of length T (Makhoul's even/odd reordering); the twiddle factors are built once per length."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.half = frames // 2 + 1  # rfft bins
        self.evens = (frames + 1) // 2
        angle = 0.5 * np.pi * np.arange(frames) / frames
        self.forward_twiddle = (2 * np.exp(-1j * angle))[:, None]
        self.inverse_twiddle = (0.5 * np.exp(1j * angle[:self.half]))[:, None]

    def forward(self, values: np.ndarray) -> np.ndarray:
        reordered = np.concatenate([values[0::2], values[1::2][::-1]])
        spectrum = np.fft.rfft(reordered, axis=0)
        # Bins above T/2 are the conjugates of those below (the input is real).
        full = np.concatenate([spectrum, spectrum[1:self.frames - self.half + 1][::-1].conj()])
        return (full * self.forward_twiddle).real

    def inverse(self, coefficients: np.ndarray) -> np.ndarray:
        mirrored = np.empty_like(coefficients[:self.half])  # X_(T-k), with X_T = 0
        mirrored[0] = 0
        mirrored[1:] = coefficients[:self.frames - self.half:-1]
        spectrum = (coefficients[:self.half] - 1j * mirrored) * self.inverse_twiddle
        reordered = np.fft.irfft(spectrum, n=self.frames, axis=0)
        values = np.empty_like(reordered)
        values[0::2] = reordered[:self.evens]
        values[1::2] = reordered[self.evens:][::-1]
        return values


class _Anderson:
    """Type-II Anderson acceleration of a fixed-point iteration ``s -> g(s)``: the next state is the combination
    of the last few plain steps whose residuals ``g(s) - s`` cancel best (a small least-squares problem), which
    turns the slow, nearly linear tail of the splitting (flat directions: duplicate keys, weak smoothness) into
    a Krylov-like convergence. The residual differences live in a ring buffer with their Gram matrix updated one
    row per step, so a step costs a few passes over the (T, K) state."""

    def __init__(self, memory: int, size: int) -> None:
        self.residual_steps = np.empty((memory, size))
        self.state_steps = np.empty((memory, size))
        self.gram = np.zeros((memory, memory))
        self.filled = 0
        self.slot = 0
        self.previous: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self.filled = 0
        self.slot = 0
        self.previous = None

    def extrapolate(self, residual: np.ndarray, mapped: np.ndarray) -> np.ndarray:
        """The next state from this step's (flat) residual and plain image ``g(s)``."""
        if self.previous is not None:
            slot = self.slot
            np.subtract(residual, self.previous[0], out=self.residual_steps[slot])
            np.subtract(mapped, self.previous[1], out=self.state_steps[slot])
            self.filled = min(self.filled + 1, len(self.gram))
            self.slot = (slot + 1) % len(self.gram)
            row = self.residual_steps[:self.filled] @ self.residual_steps[slot]
            self.gram[slot, :self.filled] = row
            self.gram[:self.filled, slot] = row
        self.previous = (residual, mapped)
        if self.filled == 0:
            return mapped
        gram = self.gram[:self.filled, :self.filled]
        # A relative ridge keeps the tiny system solvable when steps repeat (near-parallel residual changes).
        ridge = 1e-10 * float(np.trace(gram)) + 1e-300
        try:
            gamma = np.linalg.solve(gram + ridge * np.eye(self.filled), self.residual_steps[:self.filled] @ residual)
        except np.linalg.LinAlgError:
            return mapped
        return mapped - gamma @ self.state_steps[:self.filled]


def _admm(gram: np.ndarray, projection: np.ndarray, lo: np.ndarray, hi: np.ndarray, smoothness: float,
          max_iterations: int, tolerance: float) -> tuple[np.ndarray, int, bool]:
    """Minimise 1/2 tr(W G W^T) - tr(W B^T) + 1/2 smoothness g sum_t |W[t] - W[t-1]|^2 over lo <= W <= hi.

    Douglas-Rachford splitting (ADMM in its fixed-point form) of the quadratic and the box, over-relaxed and
    Anderson-accelerated. State s (T, K): z = clip(s) is the feasible iterate; x solves the quadratic's proximal
    step from 2z - s; s moves by x - z. At a fixed point x = z is optimal, and the KKT residual at z is
    (H + rho P)(z - x), so the stopping test bounds max |x - z| in weights of a typical-size key. All float64;
    every key here moves (positive Gram diagonal). Returns (z, iterations, converged).
    """
    frames, count = projection.shape
    scale = float(np.mean(np.diag(gram)))
    gram = gram / scale  # the mean key has unit size: rho, smoothness and the tolerance are scale-free
    projection = projection / scale
    penalty = np.diag(gram).copy()  # per-key penalty, i.e. ADMM on weights scaled to each key's size
    size = np.sqrt(penalty)  # converts a key's weight into "weight of a typical-size key"

    # Penalty from the spectrum of the size-scaled Gram matrix: the geometric mean of its extreme eigenvalues
    # balances the fast and slow directions; the floor keeps it sane when keys are (nearly) linearly dependent.
    spectrum = np.linalg.eigvalsh(gram / np.outer(size, size))
    top = float(spectrum[-1]) + 4 * smoothness  # the Laplacian's spectrum reaches 4: the stiffest direction
    rho = math.sqrt(top * max(float(spectrum[0]), _RHO_FLOOR * top))
    values, vectors = np.linalg.eigh(gram + np.diag(rho * penalty))
    if smoothness > 0 and frames > 1:
        # Path-graph Laplacian eigenvalues (free ends), the frequencies of the DCT-II basis: 2 - 2 cos(pi j / T).
        laplacian = 2 - 2 * np.cos(np.pi * np.arange(frames) / frames)
        divisor = values[None, :] + smoothness * laplacian[:, None]
        dct: _Dct | None = _Dct(frames)
    else:
        divisor = values[None, :]
        dct = None
    rho_penalty = rho * penalty

    def step(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = np.clip(state, lo, hi)
        rhs = (projection + (2 * z - state) * rho_penalty) @ vectors
        x = (rhs / divisor if dct is None else dct.inverse(dct.forward(rhs) / divisor)) @ vectors.T
        return z, x, state + _RELAX * (x - z)

    anderson = _Anderson(min(_MEMORY, max_iterations), frames * count)
    state = np.clip(np.zeros_like(projection), lo, hi)
    fallback: np.ndarray | None = None  # the plain step an extrapolated state replaced
    norm_before = math.inf
    z = state
    for iteration in range(1, max_iterations + 1):
        z, x, mapped = step(state)
        gap = np.abs(x - z)
        gap *= size
        if float(gap.max()) <= tolerance * max(1.0, float(np.abs(z * size).max())):
            return z, iteration, True
        residual = ((mapped - state) * size).ravel()
        norm = float(np.sqrt(residual @ residual))
        if fallback is not None and not norm <= norm_before:  # (a NaN norm fails too)
            # The extrapolation did worse than where it started: take the plain step instead, forget the history.
            state, fallback = fallback, None
            anderson.reset()
            continue
        norm_before = norm
        state = anderson.extrapolate(residual, mapped.ravel()).reshape(frames, count)
        fallback = mapped if anderson.filled else None
    return z, max_iterations, False
