"""Lip vertex error (LVE), upper-face dynamics deviation (FDD) and mean vertex error (MVE).

Definitions follow CodeTalker's `cal_metric.py` (and FaceDiffuser's MVE), reference doc §3.1:

- LVE: for every frame, the largest *squared* L2 error over the lip vertices; the mean of that over all
  frames of all sequences (frames are pooled, so long sequences weigh more).
- FDD: per sequence, dyn(x) = mean over upper-face vertices of std over time (ddof 0) of the squared
  displacement ||x_t - template||^2; FDD = mean over sequences of dyn(gt) - dyn(pred). Signed: positive when
  the prediction moves the upper face less than the ground truth.
- MVE: mean L2 (not squared) error over all vertices and all frames.

All values are in the data's own units (squared units for LVE and FDD). Papers print them divided by a
power of ten (VOCASET: LVE x1e-5, FDD x1e-7; BIWI: LVE x1e-4, FDD x1e-5); `MetricScales` holds those.
Arrays may be (T, V, 3) or flattened (T, V*3); predictions and ground truth are cut to the shorter length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METRICS = ("lve", "fdd", "mve")


def as_motion(vertices: np.ndarray) -> np.ndarray:
    """(T, V, 3) float64 from (T, V, 3) or (T, V*3)."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim == 2:
        if v.shape[1] % 3:
            raise ValueError(f"Flattened vertices must have 3*V columns, got shape {v.shape}.")
        v = v.reshape(v.shape[0], -1, 3)
    if v.ndim != 3 or v.shape[2] != 3:
        raise ValueError(f"Expected vertices of shape (T, V, 3) or (T, V*3), got {np.shape(vertices)}.")
    return v


def align(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sequences as (T, V, 3) float64, cut to the shorter one (prediction lengths differ by a frame)."""
    p, g = as_motion(pred), as_motion(gt)
    if p.shape[1] != g.shape[1]:
        raise ValueError(f"Prediction has {p.shape[1]} vertices, ground truth {g.shape[1]}.")
    n = min(len(p), len(g))
    return p[:n], g[:n]


def lve_per_frame(pred: np.ndarray, gt: np.ndarray, lips: np.ndarray) -> np.ndarray:
    """(T,) max over lip vertices of the squared L2 error."""
    p, g = align(pred, gt)
    lips = np.unique(np.asarray(lips, dtype=np.int64))
    return ((p[:, lips] - g[:, lips]) ** 2).sum(axis=2).max(axis=1)


def lip_vertex_error(pred: np.ndarray, gt: np.ndarray, lips: np.ndarray) -> float:
    """LVE of one sequence (for several, pool the per-frame values: `MetricAccumulator`)."""
    return float(lve_per_frame(pred, gt, lips).mean())


def upper_face_dynamics(vertices: np.ndarray, template: np.ndarray, upper: np.ndarray) -> float:
    """Mean over upper-face vertices of the std over time of the squared displacement from the template."""
    v = as_motion(vertices)
    t = np.asarray(template, dtype=np.float64).reshape(1, -1, 3)
    upper = np.unique(np.asarray(upper, dtype=np.int64))
    squared = ((v[:, upper] - t[:, upper]) ** 2).sum(axis=2)
    return float(squared.std(axis=0).mean())


def fdd_sequence(pred: np.ndarray, gt: np.ndarray, template: np.ndarray, upper: np.ndarray) -> float:
    """dyn(gt) - dyn(pred) for one sequence (signed)."""
    p, g = align(pred, gt)
    return upper_face_dynamics(g, template, upper) - upper_face_dynamics(p, template, upper)


def vertex_error_per_frame(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T,) mean over vertices of the L2 error."""
    p, g = align(pred, gt)
    return np.linalg.norm(p - g, axis=2).mean(axis=1)


def mean_vertex_error(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(vertex_error_per_frame(pred, gt).mean())


@dataclass
class MetricAccumulator:
    """Pools sequences the way the reference scripts do: LVE and MVE over frames, FDD over sequences."""

    lips: np.ndarray | None
    upper: np.ndarray | None
    lve_frames: list[np.ndarray] = field(default_factory=list)
    mve_frames: list[np.ndarray] = field(default_factory=list)
    fdd_values: list[float] = field(default_factory=list)

    def add(self, pred: np.ndarray, gt: np.ndarray, template: np.ndarray) -> dict[str, float]:
        """Add one sequence (absolute positions); returns its own metrics."""
        p, g = align(pred, gt)
        mve = vertex_error_per_frame(p, g)
        self.mve_frames.append(mve)
        own = {"frames": float(len(p)), "mve": float(mve.mean())}
        if self.lips is not None:
            lve = lve_per_frame(p, g, self.lips)
            self.lve_frames.append(lve)
            own["lve"] = float(lve.mean())
        if self.upper is not None:
            fdd = fdd_sequence(p, g, template, self.upper)
            self.fdd_values.append(fdd)
            own["fdd"] = fdd
        return own

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.mve_frames:
            out["mve"] = float(np.concatenate(self.mve_frames).mean())
            out["frames"] = float(sum(len(f) for f in self.mve_frames))
            out["sequences"] = float(len(self.mve_frames))
        if self.lve_frames:
            out["lve"] = float(np.concatenate(self.lve_frames).mean())
        if self.fdd_values:
            out["fdd"] = float(np.mean(self.fdd_values))
        return out


@dataclass(frozen=True)
class MetricScales:
    """Papers print value / scale; `label` names the convention in report headers."""

    label: str
    lve: float = 1.0
    fdd: float = 1.0
    mve: float = 1.0

    def scaled(self, metric: str, value: float) -> float:
        return value / getattr(self, metric)

    def header(self) -> str:
        return ", ".join(f"{m.upper()} x{getattr(self, m):g}" for m in METRICS)


# VOCASET meshes are in metres: LVE x1e-5 m^2, FDD x1e-7 m^2 and MVE in mm, as papers print them.
VOCASET_SCALES = MetricScales("VOCASET convention", lve=1e-5, fdd=1e-7, mve=1e-3)
BIWI_SCALES = MetricScales("BIWI convention", lve=1e-4, fdd=1e-5, mve=1.0)
NO_SCALES = MetricScales("no scaling")
