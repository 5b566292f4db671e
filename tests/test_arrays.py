"""One wording for bad arrays everywhere the extension takes them (core/arrays.py)."""

from __future__ import annotations

import numpy as np
import pytest

from jambatalk_blender.core import arrays, bake_math, keyframes, mesh_cache, solve, timing

TEXT = np.array([[["a", "b", "c"]]])


@pytest.mark.parametrize("call", [
    lambda bad: bake_math.decompose(bad),
    lambda bad: solve.solve_weights(bad, np.ones((1, 1, 3)), [0.0], [1.0]),
    lambda bad: mesh_cache.write_pc2("/nonexistent/x.pc2", bad),
    lambda bad: timing.resample_to_scene(bad, 30.0, 24.0),
    lambda bad: keyframes.reduce_curves(bad[0], np.ones(3)),
], ids=["bake_math", "solve", "mesh_cache", "timing", "keyframes"])
def test_every_module_refuses_text_in_the_same_words(call):
    with pytest.raises(ValueError, match=r"must be real numbers, got dtype <U1\.?$"):
        call(TEXT)


def test_shapes_and_finiteness():
    assert arrays.xyz_array(np.zeros((2, 5, 3), dtype=np.int16), "Offsets").dtype == np.int16
    with pytest.raises(ValueError, match=r"^Offsets must have shape \(frames, vertices, 3\), got \(2, 5\)\.$"):
        arrays.xyz_array(np.zeros((2, 5)), "Offsets")
    with pytest.raises(ValueError, match=r"^Deltas need at least one key and one vertex, got shape \(0, 5, 3\)\.$"):
        arrays.xyz_array(np.zeros((0, 5, 3)), "Deltas", "keys")
    assert arrays.xyz_array(np.zeros((0, 5, 3)), "Deltas", "keys", min_rows=0).shape == (0, 5, 3)
    for bad in (np.array([True]), np.array([1j]), np.array([None])):
        with pytest.raises(ValueError, match="must be real numbers"):
            arrays.real_array(bad, "x")
    with pytest.raises(ValueError, match="^broken$"):
        arrays.require_finite(np.array([0.0, np.inf]), "broken")
