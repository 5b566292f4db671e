"""What an animator dials in after the network: temporal smoothing and strength (the worker's and the batch's)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def shape_motion(values: np.ndarray, fps: float, *, strength: float = 1.0, smoothing_s: float = 0.0,
                 weights: bool = False) -> np.ndarray:
    """Gaussian smoothing along time (sigma = `smoothing_s` seconds), then `strength`; weights stay in 0..1.

    `values` is (T, ...) offsets or weights and must be the caller's own array: without smoothing it is scaled
    in place (a copy costs 1 GiB for a 10-minute vocaset take). The result is C-contiguous float32.
    """
    if smoothing_s > 0:
        values = gaussian_filter1d(values, sigma=smoothing_s * fps, axis=0, mode="nearest")
    values = np.ascontiguousarray(values, dtype=np.float32)
    if strength != 1.0:
        with np.errstate(over="ignore"):  # callers refuse non-finite results with their own sentence
            values *= np.float32(strength)
    if weights:
        np.clip(values, 0.0, 1.0, out=values)  # ARKit weights stay in their range after strength
    return values
