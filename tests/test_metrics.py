"""LVE, FDD and MVE against small cases computed by hand, plus properties that must always hold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model_core.metrics import (
    VOCASET_SCALES,
    MetricAccumulator,
    fdd_sequence,
    lip_vertex_error,
    lve_per_frame,
    mean_vertex_error,
    upper_face_dynamics,
)


def frames(*rows: list[list[float]]) -> np.ndarray:
    """(T, V, 3) from per-frame lists of vertex positions."""
    return np.asarray(rows, dtype=np.float64)


def test_lve_is_the_mean_over_frames_of_the_largest_squared_lip_error():
    gt = np.zeros((2, 3, 3))
    pred = frames(
        [[1, 0, 0], [0, 2, 0], [9, 9, 9]],  # lip errors 1 and 4 -> 4 (vertex 2 is not a lip vertex)
        [[1, 1, 1], [0, 0, 0], [9, 9, 9]],  # lip errors 3 and 0 -> 3
    )
    assert lve_per_frame(pred, gt, np.array([0, 1])).tolist() == [4.0, 3.0]
    assert lip_vertex_error(pred, gt, np.array([0, 1])) == pytest.approx(3.5)
    # Squared, not a distance: an error of 2 counts 4.
    assert lip_vertex_error(frames([[2, 0, 0]]), np.zeros((1, 1, 3)), np.array([0])) == pytest.approx(4.0)


def test_lve_ignores_duplicate_and_reordered_lip_indices():
    rng = np.random.default_rng(0)
    pred, gt = rng.normal(size=(5, 8, 3)), rng.normal(size=(5, 8, 3))
    assert lip_vertex_error(pred, gt, np.array([1, 3, 3, 5])) == lip_vertex_error(pred, gt, np.array([5, 1, 3]))


def test_lve_pools_frames_across_sequences():
    acc = MetricAccumulator(lips=np.array([0]), upper=None)
    acc.add(frames([[np.sqrt(2), 0, 0]]), np.zeros((1, 1, 3)), np.zeros((1, 3)))  # one frame with error 2
    acc.add(frames(*[[[np.sqrt(6), 0, 0]]] * 3), np.zeros((3, 1, 3)), np.zeros((1, 3)))  # three frames with 6
    # (2 + 6 + 6 + 6) / 4 frames = 5, not the mean of the sequence means (4).
    assert acc.result()["lve"] == pytest.approx(5.0)


def test_fdd_is_signed_gt_minus_pred_std_of_squared_displacement():
    template = np.zeros((2, 3))
    gt = frames([[0, 0, 0], [1, 0, 0]], [[2, 0, 0], [1, 0, 0]])  # squared displacement: v0 [0, 4], v1 [1, 1]
    # std over time (ddof 0): v0 -> 2, v1 -> 0; mean over the upper vertices -> 1
    assert upper_face_dynamics(gt, template, np.array([0, 1])) == pytest.approx(1.0)
    still = np.zeros_like(gt)
    assert fdd_sequence(still, gt, template, np.array([0, 1])) == pytest.approx(1.0)  # prediction too still
    livelier = gt * 2  # squared displacement v0 [0, 16] -> std 8; v1 [4, 4] -> 0; mean 4
    assert fdd_sequence(livelier, gt, template, np.array([0, 1])) == pytest.approx(1.0 - 4.0)  # negative


def test_fdd_is_the_mean_over_sequences():
    upper, template = np.array([0]), np.zeros((1, 3))
    acc = MetricAccumulator(lips=None, upper=upper)
    acc.add(np.zeros((2, 1, 3)), frames([[0, 0, 0]], [[1, 0, 0]]), template)  # gt sq [0, 1] -> std 0.5
    acc.add(np.zeros((4, 1, 3)), frames(*[[[0, 0, 0]], [[2, 0, 0]]] * 2), template)  # sq [0,4,0,4] -> 2
    assert acc.result()["fdd"] == pytest.approx((0.5 + 2.0) / 2)


def test_mve_is_the_mean_l2_distance():
    pred = frames([[3, 4, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 1]])
    assert mean_vertex_error(pred, np.zeros((2, 2, 3))) == pytest.approx((5 + 0 + 0 + 1) / 4)


def test_metrics_accept_flattened_frames_and_cut_to_the_shorter_sequence():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(6, 4, 3))
    pred = np.concatenate([gt + 0.1, rng.normal(size=(1, 4, 3))])  # one (unrelated) frame too many
    lips = np.array([0, 2])
    assert lip_vertex_error(pred.reshape(7, 12), gt.reshape(6, 12), lips) == pytest.approx(0.03)
    with pytest.raises(ValueError, match="vertices"):
        mean_vertex_error(pred[:, :3], gt)


def test_scaled_values_follow_the_paper_convention():
    assert VOCASET_SCALES.scaled("lve", 3.2e-5) == pytest.approx(3.2)
    assert VOCASET_SCALES.scaled("fdd", 4.5e-7) == pytest.approx(4.5)
    assert "LVE x1e-05" in VOCASET_SCALES.header()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (4, 5, 3), elements=st.floats(-1, 1)),
       arrays(np.float64, (4, 5, 3), elements=st.floats(-1, 1)),
       st.lists(st.integers(0, 4), min_size=1, max_size=5))
def test_lve_bounds(pred, gt, lips):
    lve = lip_vertex_error(pred, gt, np.array(lips))
    assert lve >= 0.0
    assert lve <= ((pred - gt) ** 2).sum(axis=2).max(axis=1).mean() + 1e-12  # never above the all-vertex version
    assert lip_vertex_error(gt, gt, np.array(lips)) == 0.0
