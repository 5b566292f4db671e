"""A head: neutral mesh + named blendshape deltas + identity deltas + landmarks, in one safetensors file.

Any head in this form plugs into the corpus and the checkpoints without code changes: the shipped MakeHuman
head (`models/heads/makehuman-arkit/`), or a studio's own ARKit-rigged character exported the same way.

On disk (loading never unpickles):
  neutral            (V, 3) float32, metres, y up, z forward (out of the face), +x the subject's left
  faces              (F, 4) int32 vertex indices; a triangle repeats no vertex and pads with -1
  <set>.indices      (N,) int32, <set>.values (N, 3) float16 or float32, <set>.offsets (K + 1,) int64:
                     the sparse deltas of set "blendshapes" or "identity", target k owning rows
                     offsets[k]:offsets[k + 1]
  metadata["head"]   JSON: name, blendshape and identity names, landmarks, parts, licence, credits, source
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HEAD_FORMAT_VERSION = 1
# The landmarks every head names; metrics, the corpus and the scorecard read them.
REQUIRED_LANDMARKS = ("lip_upper", "lip_lower", "mouth_corner_left", "mouth_corner_right", "chin", "nose_tip",
                      "eye_left_upper", "eye_left_lower", "eye_right_upper", "eye_right_lower")


class HeadFormatError(ValueError):
    """A head file that is not in the format above; the message names the file and what is wrong."""


@dataclass
class HeadAsset:
    """A neutral head with named linear deltas. Weights and identity coefficients are plain floats."""

    name: str
    neutral: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 4) int32, -1 pads triangles
    blendshape_names: list[str]
    blendshapes: np.ndarray  # (K, V, 3) float32
    identity_names: list[str]
    identity: np.ndarray  # (I, V, 3) float32
    landmarks: dict[str, int]
    parts: dict[str, list[int]] = field(default_factory=dict)  # part -> [first, last + 1) vertex range
    info: dict = field(default_factory=dict)  # licence, credits, source, units, axes, vertex order

    @property
    def vertex_count(self) -> int:
        return int(self.neutral.shape[0])

    def blendshape(self, name: str) -> np.ndarray:
        return self.blendshapes[self.blendshape_names.index(name)]

    def weights_vector(self, weights: dict[str, float]) -> np.ndarray:
        """{name: value} -> (K,) in this head's order; an unknown name is an error, not a silent no-op."""
        out = np.zeros(len(self.blendshape_names), dtype=np.float32)
        for name, value in weights.items():
            if name not in self.blendshape_names:
                raise ValueError(f"'{name}' is not a blendshape of head '{self.name}'.")
            out[self.blendshape_names.index(name)] = value
        return out

    def identity_neutral(self, coefficients: np.ndarray | None) -> np.ndarray:
        """The neutral of one identity: neutral + sum_i c_i * identity_i (V, 3) float32."""
        if coefficients is None or len(self.identity_names) == 0:
            return self.neutral.copy()
        c = np.asarray(coefficients, dtype=np.float32)
        v = self.vertex_count
        return self.neutral + (c @ self.identity.reshape(len(c), v * 3)).reshape(v, 3)

    def pose(self, weights: np.ndarray, neutral: np.ndarray | None = None) -> np.ndarray:
        """Vertices (T, V, 3) = neutral + weights (T, K) @ blendshapes; a (K,) vector gives (V, 3)."""
        w = np.asarray(weights, dtype=np.float32)
        base = self.neutral if neutral is None else neutral
        k, v = self.blendshapes.shape[0], self.vertex_count
        offsets = (w.reshape(-1, k) @ self.blendshapes.reshape(k, v * 3)).reshape(-1, v, 3)
        out = base[None] + offsets
        return out[0] if w.ndim == 1 else out

    def mirror_name(self, name: str) -> str | None:
        """The other side's blendshape name (ARKit's Left/Right), or None for a central shape."""
        for a, b in (("Left", "Right"), ("Right", "Left")):
            if name.endswith(a):
                return name[: -len(a)] + b
        return None


def _sparse(deltas: np.ndarray, dtype: np.dtype, threshold: float) -> dict[str, np.ndarray]:
    """(K, V, 3) -> indices, values, offsets keeping vertices that move more than `threshold` metres."""
    indices, values, offsets = [], [], [0]
    for d in deltas:
        keep = np.flatnonzero(np.abs(d).max(axis=1) > threshold)
        indices.append(keep.astype(np.int32))
        values.append(d[keep].astype(dtype))
        offsets.append(offsets[-1] + len(keep))
    return {"indices": np.concatenate(indices) if indices else np.zeros(0, np.int32),
            "values": np.concatenate(values) if values else np.zeros((0, 3), dtype),
            "offsets": np.asarray(offsets, dtype=np.int64)}


def _dense(path: Path, tensors: dict[str, np.ndarray], prefix: str, count: int, vertices: int) -> np.ndarray:
    try:
        idx, val, off = (tensors[f"{prefix}.{k}"] for k in ("indices", "values", "offsets"))
    except KeyError as e:
        raise HeadFormatError(f"{path}: the head file has no tensor {e}.") from None
    if off.shape != (count + 1,) or off[0] != 0 or off[-1] != len(idx) or np.any(np.diff(off) < 0):
        raise HeadFormatError(f"{path}: '{prefix}.offsets' does not match its {count} names.")
    if val.shape != (len(idx), 3) or (len(idx) and (idx.min() < 0 or idx.max() >= vertices)):
        raise HeadFormatError(f"{path}: '{prefix}' indices or values are out of range.")
    out = np.zeros((count, vertices, 3), dtype=np.float32)
    for k in range(count):
        rows = slice(int(off[k]), int(off[k + 1]))
        out[k, idx[rows]] = val[rows].astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise HeadFormatError(f"{path}: '{prefix}' holds non-finite values.")
    return out


def save_head(head: HeadAsset, path: str | Path, delta_dtype: np.dtype = np.float16,
              threshold: float = 1e-7) -> Path:
    """Write `head` as one safetensors file (sparse deltas, `delta_dtype` values); returns the path."""
    from safetensors.numpy import save_file

    path = Path(path)
    tensors = {"neutral": np.ascontiguousarray(head.neutral, dtype=np.float32),
               "faces": np.ascontiguousarray(head.faces, dtype=np.int32)}
    for prefix, deltas in (("blendshapes", head.blendshapes), ("identity", head.identity)):
        for key, arr in _sparse(deltas, delta_dtype, threshold).items():
            tensors[f"{prefix}.{key}"] = np.ascontiguousarray(arr)
    meta = {"format_version": HEAD_FORMAT_VERSION, "name": head.name, "blendshape_names": head.blendshape_names,
            "identity_names": head.identity_names, "landmarks": head.landmarks, "parts": head.parts,
            "info": head.info}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata={"head": json.dumps(meta, sort_keys=True)})
    tmp.replace(path)
    return path


def load_head(path: str | Path) -> HeadAsset:
    """Read a head file; every problem is one HeadFormatError sentence naming the file."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise HeadFormatError(f"{path}: no such head file.")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {})["head"])
        tensors = load_file(str(path))
    except (KeyError, json.JSONDecodeError) as e:
        raise HeadFormatError(f"{path}: not a head file (no readable 'head' metadata: {e}).") from None
    except Exception as e:  # safetensors raises its own types for a corrupt header
        raise HeadFormatError(f"{path}: not a readable safetensors file ({e}).") from None
    if meta.get("format_version") != HEAD_FORMAT_VERSION:
        raise HeadFormatError(f"{path}: head format {meta.get('format_version')} is not supported "
                              f"(this version reads {HEAD_FORMAT_VERSION}).")
    neutral, faces = tensors.get("neutral"), tensors.get("faces")
    if neutral is None or neutral.ndim != 2 or neutral.shape[1] != 3 or not np.all(np.isfinite(neutral)):
        raise HeadFormatError(f"{path}: 'neutral' must be a finite (V, 3) array.")
    v = int(neutral.shape[0])
    if faces is None or faces.ndim != 2 or faces.shape[1] != 4 or faces.min() < -1 or faces.max() >= v:
        raise HeadFormatError(f"{path}: 'faces' must be (F, 4) indices below {v} (-1 pads triangles).")
    names, ids = list(meta.get("blendshape_names", [])), list(meta.get("identity_names", []))
    landmarks = {str(k): int(i) for k, i in meta.get("landmarks", {}).items()}
    missing = [k for k in REQUIRED_LANDMARKS if k not in landmarks]
    if missing:
        raise HeadFormatError(f"{path}: landmarks {missing} are missing.")
    if any(not 0 <= i < v for i in landmarks.values()):
        raise HeadFormatError(f"{path}: a landmark index is outside the mesh's {v} vertices.")
    return HeadAsset(name=str(meta.get("name", path.stem)), neutral=neutral.astype(np.float32),
                     faces=faces.astype(np.int32), blendshape_names=names,
                     blendshapes=_dense(path, tensors, "blendshapes", len(names), v), identity_names=ids,
                     identity=_dense(path, tensors, "identity", len(ids), v), landmarks=landmarks,
                     parts={k: [int(a), int(b)] for k, (a, b) in meta.get("parts", {}).items()},
                     info=dict(meta.get("info", {})))


def write_obj(path: str | Path, vertices: np.ndarray, faces: np.ndarray, header: str = "") -> Path:
    """A plain OBJ (1-based faces, triangles and quads) whose vertex order is the head's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, dtype=np.float64)]
    for face in np.asarray(faces):
        lines.append("f " + " ".join(str(int(i) + 1) for i in face if i >= 0))
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    tmp.replace(path)
    return path
