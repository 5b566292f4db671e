"""The checks every array handed to the bake, the solver, the caches and the analysis passes through (stdlib +
numpy only): one wording of "must be real numbers", of the (rows, vertices, 3) shape and of NaN / infinity,
so the sentences a user reads do not drift apart between modules."""

from __future__ import annotations

import numpy as np


def real_array(value: object, what: str) -> np.ndarray:
    """`value` as an array whose elements are real numbers (floats or integers; not bool, complex or text)."""
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{what} must be real numbers, got dtype {array.dtype}.")
    return array


def xyz_array(value: object, what: str, rows: str = "frames", *, min_rows: int = 1) -> np.ndarray:
    """A real (rows, vertices, 3) array with at least `min_rows` rows and one vertex, e.g. offsets per frame or
    deltas per shape key."""
    array = np.asarray(value)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{what} must have shape ({rows}, vertices, 3), got {array.shape}.")
    if array.shape[0] < min_rows or array.shape[1] < 1:
        row = rows.removesuffix("s")
        raise ValueError(f"{what} need at least one {row} and one vertex, got shape {array.shape}.")
    return real_array(array, what)


def require_finite(array: np.ndarray, sentence: str) -> np.ndarray:
    """`array` unchanged, or ValueError(sentence) when it holds NaN or an infinity."""
    if not np.isfinite(array).all():
        raise ValueError(sentence)
    return array

