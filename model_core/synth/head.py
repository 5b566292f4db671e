"""A procedural stylised head: topology (shared by every subject) and each subject's neutral geometry.

The skin is a latitude/longitude grid on an ellipsoid, warped so rows and columns crowd around the face.
The mouth and the eyes are *slits*: along one grid row the vertices between two corners are duplicated,
the original belonging to the faces above (upper lip / upper lid) and the copy to the faces below, so the
lips can part and close. Eyeballs are small separate spheres behind the eye slits.

Coordinates are VOCASET-like: metres, y up, z forward (out of the face), +x the subject's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Where the features sit on the reference head (default HeadParams), used only to place the slits on the
# grid; per-subject heads keep that topology and move the geometry around it.
_MOUTH_Y = -0.045
_MOUTH_HALF_WIDTH = 0.024
_EYE_Y = 0.020
_EYE_X = 0.032
_EYE_HALF_WIDTH = 0.012
_COL_WARP = 0.6  # longitude density at the front: 1 / (1 - warp) times the average
_ROW_WARP = 0.6
_ROW_DENSE_AT = 0.54  # fraction of the pole-to-pole parameter where the rows are densest (mid-face)
_EYEBALL_RINGS, _EYEBALL_SEGMENTS = 6, 10
EYEBALL_RADIUS = 0.0115


@dataclass(frozen=True)
class HeadParams:
    """One subject's head shape. Lengths in metres; factors are relative to 1."""

    radii: tuple[float, float, float] = (0.078, 0.110, 0.095)
    jaw_width: float = 1.0
    lip_thickness: float = 0.0042
    nose_length: float = 0.014
    chin: float = 0.006
    brow_ridge: float = 0.0025
    cheek: float = 0.003
    eye_opening: float = 0.0075


def random_head_params(rng: np.random.Generator) -> HeadParams:
    """Subject-to-subject variation of a plausible adult head."""
    return HeadParams(
        radii=(float(rng.uniform(0.074, 0.082)), float(rng.uniform(0.104, 0.116)), float(rng.uniform(0.090, 0.100))),
        jaw_width=float(rng.uniform(0.9, 1.1)),
        lip_thickness=float(rng.uniform(0.0032, 0.0055)),
        nose_length=float(rng.uniform(0.011, 0.018)),
        chin=float(rng.uniform(0.004, 0.009)),
        brow_ridge=float(rng.uniform(0.0015, 0.0035)),
        cheek=float(rng.uniform(0.002, 0.004)),
        eye_opening=float(rng.uniform(0.0065, 0.0085)),
    )


@dataclass(frozen=True)
class Slit:
    """A seam along one grid row: `upper[i]` and `lower[i]` coincide at rest (lips / lids closed)."""

    row: int
    cols: np.ndarray  # grid columns strictly between the two corners
    corners: tuple[int, int]
    upper: np.ndarray  # vertex indices used by the faces above the seam
    lower: np.ndarray  # duplicated vertex indices used by the faces below


@dataclass(frozen=True)
class Topology:
    """Vertex order and faces, identical for every subject (vertex order is what the model learns)."""

    rows: int
    cols: int
    theta: np.ndarray  # (rows,) polar angle of each grid row (0 = top)
    phi: np.ndarray  # (cols,) longitude of each column (0 = front)
    grid: np.ndarray  # (rows, cols) vertex index of each grid point (the upper copy on slits)
    poles: tuple[int, int]
    mouth: Slit
    eyes: tuple[Slit, Slit]  # subject's left (+x), right (-x)
    skin_count: int  # vertices [0, skin_count) are skin; the rest are the two eyeballs
    eyeballs: tuple[tuple[int, int], tuple[int, int]]  # [start, stop) per eye, same order as `eyes`
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside

    @property
    def vertex_count(self) -> int:
        return self.eyeballs[1][1]


def _warp_angles(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    s = -1.0 + 2.0 * np.arange(cols) / cols  # column cols/2 is the front (s = 0)
    phi = np.pi * ((1 - _COL_WARP) * s + _COL_WARP * s**3)
    t = (np.arange(rows) + 1.0) / (rows + 1.0)
    c = _ROW_DENSE_AT
    # Monotone warp with density 1 / (1 - warp) at t = c; the constant keeps both poles fixed.
    theta = np.pi * (t - _ROW_WARP / (2 * np.pi) * (np.sin(2 * np.pi * (t - c)) + np.sin(2 * np.pi * c)))
    return theta, phi


def _grid_size(vertex_target: int) -> tuple[int, int]:
    grid_target = max(vertex_target - 2 * (_EYEBALL_RINGS * _EYEBALL_SEGMENTS + 2) - 40, 200)
    rows = max(int(round(np.sqrt(grid_target / 1.42))), 12)
    cols = max(int(round(grid_target / rows / 2.0)) * 2, 16)
    return rows, cols


def _slit_columns(phi: np.ndarray, sin_theta: float, centre_x: float, half_width: float,
                  rx: float) -> tuple[int, int]:
    """The two corner columns (front half only) closest to centre_x -/+ half_width on the reference head."""
    x = rx * sin_theta * np.sin(phi)
    front = np.abs(phi) < np.pi / 2
    cand = np.flatnonzero(front)
    left = int(cand[np.argmin(np.abs(x[cand] - (centre_x - half_width)))])
    right = int(cand[np.argmin(np.abs(x[cand] - (centre_x + half_width)))])
    return min(left, right), max(left, right)


def build_topology(vertex_target: int = 3000) -> Topology:
    """The shared mesh: grid skin with a mouth slit and two eye slits, plus two eyeballs."""
    if not 600 <= vertex_target <= 40000:
        raise ValueError(f"The head needs between 600 and 40000 vertices (asked for {vertex_target}).")
    rows, cols = _grid_size(vertex_target)
    theta, phi = _warp_angles(rows, cols)
    ref = HeadParams()
    rx, ry = ref.radii[0], ref.radii[1]
    grid = np.arange(rows * cols).reshape(rows, cols)
    poles = (rows * cols, rows * cols + 1)
    next_index = rows * cols + 2

    def slit(row: int, corners: tuple[int, int]) -> Slit:
        nonlocal next_index
        inner = np.arange(corners[0] + 1, corners[1])
        lower = np.arange(next_index, next_index + len(inner))
        next_index += len(inner)
        return Slit(row, inner, corners, grid[row, inner].copy(), lower)

    mouth_row = int(np.argmin(np.abs(ry * np.cos(theta) - _MOUTH_Y)))
    mouth = slit(mouth_row, _slit_columns(phi, np.sin(theta[mouth_row]), 0.0, _MOUTH_HALF_WIDTH, rx))
    eye_row = int(np.argmin(np.abs(ry * np.cos(theta) - _EYE_Y)))
    eyes = tuple(slit(eye_row, _slit_columns(phi, np.sin(theta[eye_row]), side * _EYE_X, _EYE_HALF_WIDTH, rx))
                 for side in (1.0, -1.0))
    skin_count = next_index

    # Faces below a slit row use the duplicated (lower) copies of the slit vertices.
    below = grid.copy()
    for s in (mouth, *eyes):
        below[s.row, s.cols] = s.lower
    j = np.arange(cols)
    jn = (j + 1) % cols
    faces = []
    for i in range(rows - 1):
        a, b = below[i, j], below[i, jn]
        c, d = grid[i + 1, jn], grid[i + 1, j]
        faces += [np.stack([a, d, c], 1), np.stack([a, c, b], 1)]
    faces.append(np.stack([np.full(cols, poles[0]), grid[0, jn], grid[0, j]], 1))
    faces.append(np.stack([np.full(cols, poles[1]), grid[rows - 1, j], grid[rows - 1, jn]], 1))

    eyeballs = []
    for _ in range(2):
        start = next_index
        faces.append(_sphere_faces(_EYEBALL_RINGS, _EYEBALL_SEGMENTS) + start)
        next_index += _EYEBALL_RINGS * _EYEBALL_SEGMENTS + 2
        eyeballs.append((start, next_index))
    return Topology(rows, cols, theta, phi, grid, poles, mouth, (eyes[0], eyes[1]), skin_count,
                    (eyeballs[0], eyeballs[1]), np.concatenate(faces).astype(np.int32))


def _sphere_faces(rings: int, segments: int) -> np.ndarray:
    """Faces of a UV sphere whose vertices are ring-major, then the north and south poles."""
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces = []
    for i in range(rings - 1):
        a, b, c, d = i * segments + j, i * segments + jn, (i + 1) * segments + jn, (i + 1) * segments + j
        faces += [np.stack([a, d, c], 1), np.stack([a, c, b], 1)]
    north, south = rings * segments, rings * segments + 1
    faces.append(np.stack([np.full(segments, north), jn, j], 1))
    last = (rings - 1) * segments
    faces.append(np.stack([np.full(segments, south), last + j, last + jn], 1))
    return np.concatenate(faces)


def _sphere_vertices(rings: int, segments: int, centre: np.ndarray, radius: float) -> np.ndarray:
    theta = np.pi * (np.arange(rings) + 1.0) / (rings + 1.0)
    phi = 2 * np.pi * np.arange(segments) / segments
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring = np.stack([st * np.sin(phi), np.broadcast_to(ct, (rings, segments)), st * np.cos(phi)], -1)
    unit = np.concatenate([ring.reshape(-1, 3), [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]])
    return centre[None, :] + radius * unit


def gaussian(u: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-((u / sigma) ** 2))


def smoothstep(x: np.ndarray, edge0: float, edge1: float) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class Layout:
    """Where one subject's features ended up (metres); blendshapes and regions are built from these."""

    mouth_y: float
    mouth_half_width: float
    eye_y: float
    eye_x: tuple[float, float]  # left (+x), right (-x) eye centres
    eye_half_width: float
    brow_y: float
    chin_y: float
    hinge: tuple[float, float]  # (y, z) of the jaw's rotation axis, parallel to x


@dataclass(frozen=True)
class Neutral:
    """One subject's neutral head. `rest` is the skin before the eyes were opened (the closed-lid pose)."""

    vertices: np.ndarray  # (V, 3) float64
    rest: np.ndarray  # (V, 3) float64
    eye_open: tuple[np.ndarray, np.ndarray]  # (V, 3) displacement opening each eye, left then right
    layout: Layout
    mouth_side: np.ndarray  # (V,) +1 above the mouth seam, -1 below, 0 on the seam outside the slit / eyeballs
    eye_side: np.ndarray  # (V,) the same relative to the eye seam row


def _seam_sides(topology: Topology, slits: tuple[Slit, ...], row: int) -> np.ndarray:
    side = np.zeros(topology.vertex_count, dtype=np.int8)
    rows = np.arange(topology.rows)
    side[topology.grid[rows < row].ravel()] = 1
    side[topology.grid[rows > row].ravel()] = -1
    side[topology.poles[0]], side[topology.poles[1]] = 1, -1
    for s in slits:
        side[s.upper], side[s.lower] = 1, -1
    return side


def build_neutral(topology: Topology, params: HeadParams) -> Neutral:
    """Place one subject's skin and eyeballs on the shared topology."""
    rx, ry, rz = params.radii
    top = topology
    theta, phi = np.meshgrid(top.theta, top.phi, indexing="ij")
    grid_xyz = np.stack([rx * np.sin(theta) * np.sin(phi), ry * np.cos(theta), rz * np.sin(theta) * np.cos(phi)], -1)
    p = np.zeros((top.vertex_count, 3))
    p[top.grid.ravel()] = grid_xyz.reshape(-1, 3)
    p[top.poles[0]], p[top.poles[1]] = (0.0, ry, 0.0), (0.0, -ry, 0.0)
    for s in (top.mouth, *top.eyes):
        p[s.lower] = p[s.upper]
    skin = slice(0, top.skin_count)
    x, y, z = p[skin, 0], p[skin, 1], p[skin, 2]  # views: editing x and z edits p

    mouth_y = float(ry * np.cos(top.theta[top.mouth.row]))
    eye_y = float(ry * np.cos(top.theta[top.eyes[0].row]))
    chin_y = mouth_y - 0.035
    # Lower face: the jaw width factor, and a taper towards the chin.
    lower = smoothstep(-y, -(mouth_y + 0.02), -(mouth_y - 0.02))
    x *= 1.0 + (params.jaw_width - 1.0) * lower
    x *= 1.0 - 0.12 * smoothstep(-y, -mouth_y, -chin_y) * smoothstep(z, 0.0, 0.05)

    def corners_x(s: Slit) -> np.ndarray:
        return p[top.grid[s.row, list(s.corners)], 0]

    front = smoothstep(z / rz, 0.2, 0.6)  # features live on the front of the ellipsoid only
    eye_x = tuple(float(corners_x(s).mean()) for s in top.eyes)
    eye_hw = float(0.5 * np.ptp(corners_x(top.eyes[0])))
    mouth_hw = float(0.5 * np.ptp(corners_x(top.mouth)))
    brow_y = eye_y + 0.018
    dz = np.zeros_like(z)
    for ex in eye_x:
        dz -= 0.004 * gaussian(x - ex, 0.014) * gaussian(y - eye_y, 0.010)  # sockets
        dz += params.brow_ridge * gaussian(x - ex, 0.018) * gaussian(y - brow_y, 0.006)
        dz += params.cheek * gaussian(x - 1.25 * ex, 0.015) * gaussian(y - (mouth_y + 0.025), 0.015)
    nose_tip_y = mouth_y + 0.030
    dz += params.nose_length * gaussian(x, 0.0105) * gaussian(y - nose_tip_y, 0.011)
    # The bridge: a ridge from the tip up to between the eyes, fading out before the forehead.
    ridge = smoothstep(y, nose_tip_y - 0.006, nose_tip_y + 0.002) * (1.0 - smoothstep(y, eye_y, eye_y + 0.02))
    ridge *= 1.0 - 0.75 * smoothstep(y, nose_tip_y, eye_y + 0.012)
    dz += 0.5 * params.nose_length * gaussian(x, 0.0075) * ridge
    lips_x = np.exp(-((x / (0.85 * mouth_hw)) ** 4))
    dz += params.lip_thickness * lips_x * gaussian(y - (mouth_y + 0.004), 0.0035)
    dz += 1.1 * params.lip_thickness * lips_x * gaussian(y - (mouth_y - 0.005), 0.0040)
    dz += params.chin * gaussian(x, 0.013) * gaussian(y - chin_y, 0.010)
    z += dz * front

    mouth_side = _seam_sides(top, (top.mouth,), top.mouth.row)
    eye_side = _seam_sides(top, top.eyes, top.eyes[0].row)
    mouth_side[top.skin_count:] = 0
    eye_side[top.skin_count:] = 0
    rest = p.copy()

    # Eye opening: lift the upper lid (and drop the lower one a little) with a smooth falloff.
    eye_open = []
    for ex in eye_x:
        u = np.clip((x - ex) / eye_hw, -1.0, 1.0)
        profile = (1.0 - u**2) ** 1.2
        d = np.zeros_like(p)
        up = (eye_side[skin] > 0) * params.eye_opening * profile * gaussian(y - eye_y, 0.011)
        down = (eye_side[skin] < 0) * 0.27 * params.eye_opening * profile * gaussian(y - eye_y, 0.008)
        d[skin, 1] = (up - down) * front
        d[skin, 2] = -0.25 * (up + down) * front  # lids wrap back over the eyeball
        eye_open.append(d)
    p += eye_open[0] + eye_open[1]

    for (start, stop), s, ex in zip(top.eyeballs, top.eyes, eye_x, strict=True):
        surface_z = float(np.mean(rest[s.upper, 2]))
        centre = np.array([ex, eye_y, surface_z - EYEBALL_RADIUS - 0.001])
        p[start:stop] = _sphere_vertices(_EYEBALL_RINGS, _EYEBALL_SEGMENTS, centre, EYEBALL_RADIUS)
    rest[top.skin_count:] = p[top.skin_count:]

    hinge = (eye_y - 0.02, -0.01)
    layout = Layout(mouth_y, mouth_hw, eye_y, (eye_x[0], eye_x[1]), eye_hw, brow_y, chin_y, hinge)
    return Neutral(p, rest, (eye_open[0], eye_open[1]), layout, mouth_side, eye_side)
