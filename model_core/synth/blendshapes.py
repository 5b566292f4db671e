"""Articulation blendshapes, regions and landmarks of a subject's head.

Each shape is a per-vertex displacement field in metres at weight 1, with smooth falloffs. Magnitudes follow
real faces: the jaw opens about 1.3 cm at the chin, lips move millimetres to a centimetre, lids close the
eye opening, brows lift about 6 mm. The lip gap at the mouth centre is linear in the weights; its
coefficients are exported so motion can close the lips exactly on bilabials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_core.synth.head import HeadParams, Neutral, Topology, build_neutral, gaussian, smoothstep

MOUTH_SHAPES = ("jaw_open", "lip_round", "lip_spread", "lip_press", "lower_lip_tuck", "upper_lip_raise")
UPPER_FACE_SHAPES = ("blink_left", "blink_right", "brow_raise", "brow_furrow")
SHAPE_NAMES = MOUTH_SHAPES + UPPER_FACE_SHAPES

CHIN_TRAVEL = 0.013  # metres the chin moves at jaw_open = 1


@dataclass(frozen=True)
class Head:
    """A subject's neutral mesh with its shapes (K, V, 3), regions and landmark vertex indices."""

    topology: Topology
    neutral: Neutral
    shapes: np.ndarray
    regions: dict[str, np.ndarray]
    landmarks: dict[str, int]

    @property
    def template(self) -> np.ndarray:
        return self.neutral.vertices

    @property
    def lip_gap_coefficients(self) -> np.ndarray:
        """(K,) change of the centre lip gap (upper minus lower lip height, metres) per unit of each weight."""
        u, lo = self.landmarks["lip_upper"], self.landmarks["lip_lower"]
        return self.shapes[:, u, 1] - self.shapes[:, lo, 1]

    def pose(self, weights: np.ndarray) -> np.ndarray:
        """Vertices (T, V, 3) = template + sum_k weights[:, k] * shapes[k]."""
        w = np.asarray(weights, dtype=np.float64)
        k, v = self.shapes.shape[0], self.shapes.shape[1]
        return self.template[None] + (w @ self.shapes.reshape(k, v * 3)).reshape(-1, v, 3)


def _rotation_about_x(points: np.ndarray, hinge: tuple[float, float], angle: float) -> np.ndarray:
    """Displacement that rotates points about the x-parallel axis through (y, z) = hinge; positive opens."""
    dy, dz = points[:, 1] - hinge[0], points[:, 2] - hinge[1]
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros_like(points)
    out[:, 1] = (-dz * s + dy * c) - dy
    out[:, 2] = (dz * c + dy * s) - dz
    return out


def build_head(topology: Topology, params: HeadParams) -> Head:
    """Neutral geometry plus all SHAPE_NAMES for one subject."""
    neutral = build_neutral(topology, params)
    lay = neutral.layout
    rest = neutral.rest
    v = topology.vertex_count
    skin = np.zeros(v, dtype=bool)
    skin[: topology.skin_count] = True
    x, y, z = rest[:, 0], rest[:, 1], rest[:, 2]
    rz = params.radii[2]
    front = smoothstep(z / rz, 0.3, 0.7) * skin
    side = neutral.mouth_side
    upper, lower, seam = (side > 0), (side < 0), (side == 0) & skin
    hw = lay.mouth_half_width
    dym = y - lay.mouth_y

    # Lips: a flat-topped mask across the mouth; horizontal motions use a wider one (the corners drag cheeks).
    lips = np.exp(-((x / (1.05 * hw)) ** 4)) * gaussian(dym, 0.013) * front
    lips_wide = np.exp(-((x / (1.4 * hw)) ** 4)) * gaussian(dym, 0.013) * front
    lips_up = lips * (upper + 0.5 * seam)
    lips_low = lips * (lower + 0.5 * seam)
    corner = np.clip(np.abs(x) / hw, 0.0, 1.5) ** 2
    shapes = {name: np.zeros((v, 3)) for name in SHAPE_NAMES}

    # Jaw: a rotation about the hinge, carried fully by everything under the mouth seam in the mouth zone and
    # fading over the cheeks (skin stretch) and towards the back of the head.
    stretch = 0.025 * smoothstep(np.abs(x), hw - 0.002, hw + 0.02) + 1e-4
    lowerness = 0.5 - 0.5 * np.tanh(dym / stretch)
    lowerness[topology.mouth.upper], lowerness[topology.mouth.lower] = 0.0, 1.0  # the seam itself
    jaw = lowerness * smoothstep(z, lay.hinge[1] - 0.005, lay.hinge[1] + 0.035) * skin
    chin = np.array([[0.0, lay.chin_y, rz * 0.8]])
    angle = CHIN_TRAVEL / float(np.hypot(chin[0, 1] - lay.hinge[0], chin[0, 2] - lay.hinge[1]))
    rotation = _rotation_about_x(rest, lay.hinge, angle)
    shapes["jaw_open"] = jaw[:, None] * rotation

    s = shapes["lip_round"]  # pucker: forward, narrower, slightly parted
    s[:, 0] = -0.32 * x * lips_wide
    s[:, 1] = 0.0010 * lips_up - 0.0015 * lips_low
    s[:, 2] = 0.0060 * lips
    s = shapes["lip_spread"]  # corners back, out and a little up; lips part slightly over the teeth
    s[:, 0] = 0.15 * x * lips_wide
    s[:, 1] = 0.0012 * corner * lips_wide + 0.0006 * lips_up - 0.0008 * lips_low
    s[:, 2] = -0.0025 * corner * lips_wide
    # Press: lower lip rises, upper lip drops, closing up to 8 mm of gap at the centre. Across the mouth it
    # follows the jaw's own opening profile (less towards the corners), so one weight shuts the whole seam.
    centre = topology.mouth.lower[len(topology.mouth.lower) // 2]
    profile = rotation[:, 1] / rotation[centre, 1] * (1.0 - smoothstep(np.abs(x), hw, hw + 0.012))
    seal = profile * gaussian(dym, 0.013) * front
    s = shapes["lip_press"]
    s[:, 1] = -0.0025 * seal * (upper + 0.5 * seam) + 0.0055 * seal * (lower + 0.5 * seam)
    s[:, 2] = -0.0010 * lips
    s = shapes["lower_lip_tuck"]  # f / v: lower lip up and back under the upper teeth
    s[:, 1] = 0.0022 * lips_low
    s[:, 2] = -0.0045 * lips_low
    s = shapes["upper_lip_raise"]
    s[:, 1] = 0.0030 * lips_up
    s[:, 2] = 0.0008 * lips_up

    shapes["blink_left"] = -neutral.eye_open[0]  # closing undoes the opening, so lids meet at the seam
    shapes["blink_right"] = -neutral.eye_open[1]
    above_lids = smoothstep(y, lay.eye_y + 0.002, lay.eye_y + 0.010) * front
    brows = gaussian(np.abs(x) - abs(lay.eye_x[0]), 0.03) * gaussian(y - lay.brow_y, 0.016) * above_lids
    shapes["brow_raise"][:, 1] = 0.006 * brows
    inner = gaussian(np.abs(x) - 0.018, 0.014) * gaussian(y - lay.brow_y, 0.010) * above_lids
    shapes["brow_furrow"][:, 0] = -0.002 * np.sign(x) * inner
    shapes["brow_furrow"][:, 1] = -0.003 * inner

    regions = {
        "lips": np.flatnonzero((np.abs(x) <= hw + 0.004) & (np.abs(dym) <= 0.011) & (front > 0.5)),
        "upper_face": np.flatnonzero(((y > lay.eye_y - 0.012) & (z > 0.3 * rz) & skin) | ~skin),
        "jaw": np.flatnonzero(jaw > 0.5),
    }
    return Head(topology, neutral, np.stack([shapes[n] for n in SHAPE_NAMES]), regions, landmarks(topology))


def landmarks(top: Topology) -> dict[str, int]:
    """Named vertex indices, chosen on the reference head so they are the same for every subject."""
    neutral = build_neutral(top, HeadParams())
    lay, rest = neutral.layout, neutral.rest
    centre_col = top.cols // 2
    column = top.grid[:, centre_col]
    mid = int(np.flatnonzero(top.mouth.cols == centre_col)[0])
    above_mouth = column[: top.mouth.row]
    marks = {
        "lip_upper": int(top.mouth.upper[mid]),
        "lip_lower": int(top.mouth.lower[mid]),
        "chin": int(column[np.argmin(np.abs(rest[column, 1] - lay.chin_y))]),
        "nose_tip": int(above_mouth[np.argmax(rest[above_mouth, 2])]),
        "forehead": int(column[np.argmin(np.abs(rest[column, 1] - (lay.brow_y + 0.025)))]),
        "mouth_corner_left": int(top.grid[top.mouth.row, top.mouth.corners[1]]),
        "mouth_corner_right": int(top.grid[top.mouth.row, top.mouth.corners[0]]),
    }
    for name, eye in zip(("left", "right"), top.eyes, strict=True):
        m = len(eye.cols) // 2
        marks[f"eye_{name}_upper"] = int(eye.upper[m])
        marks[f"eye_{name}_lower"] = int(eye.lower[m])
    return marks
