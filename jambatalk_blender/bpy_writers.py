"""Write a take into Blender data: shape keys + a new Action on the Key, or a PC2 file + Mesh Cache modifier.

Main thread only. The maths (decomposition, keyframe reduction, resampling) happens before, in the pure modules;
this module only moves arrays into bpy with foreach_set.

Naming (one bake = one number ``n``, counted per take name over the .blend's Actions):
* Action ``JT_<take>_<nnn>`` on the mesh's Key (fake user, so earlier takes survive being unassigned);
* its shape keys ``JT_<take>_<nnn>_<kk>``: each bake makes its own keys, so an earlier Action keeps driving the
  keys it was made for. Keys the user made are never touched; keys of earlier JambaTalk bakes are set to 0.
"""

from __future__ import annotations

import os
import re

import bpy
import numpy as np

from . import compat
from .core.bake_math import Basis
from .core.keyframes import KeyCurve
from .core.mesh_cache import write_pc2

PREFIX = "JT_"
CACHE_MODIFIER = "JambaTalk Cache"
CACHE_DIR = "//jambatalk"
_MAX_TAKE = 40  # ID and shape-key names are limited (63 bytes before 4.3): leave room for the suffixes


class BakeError(RuntimeError):
    """A bake that cannot be written; str() is a sentence for the animator."""


def clean_take_name(take_name: str) -> str:
    """A take name safe inside data paths, file names and ID names."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(take_name or "").strip()).strip("._")
    return (name or "take")[:_MAX_TAKE]


def next_bake_number(take: str) -> int:
    """1 + the highest ``n`` of the existing Actions named ``JT_<take>_<nnn>``."""
    pattern = re.compile(re.escape(f"{PREFIX}{take}_") + r"(\d{3,})$")
    numbers = [int(m.group(1)) for a in bpy.data.actions if (m := pattern.match(a.name))]
    return max(numbers, default=0) + 1


def _protect_current_action(id_data: bpy.types.ID) -> None:
    """Give the Action now on ``id_data`` a fake user, so assigning ours does not leave it with no users."""
    ad = id_data.animation_data
    if ad is not None and ad.action is not None and not ad.action.use_fake_user:
        ad.action.use_fake_user = True


def bake_shape_keys(obj: bpy.types.Object, basis: Basis, curves: list[KeyCurve], scene_frames: np.ndarray,
                    take_name: str) -> dict:
    """K shape keys from ``basis.shapes`` (offsets added to the Basis key, i.e. the user's neutral), keyed with
    ``curves`` (indices into ``scene_frames``) in a new Action on the Key. Returns a summary dict."""
    if obj is None or obj.type != "MESH":
        raise BakeError("Select a mesh object to animate.")
    shapes = np.asarray(basis.shapes, dtype=np.float32)
    n_keys, n_vertices = shapes.shape[0], shapes.shape[1]
    if n_vertices != compat.vertex_count(obj):
        raise BakeError(f"This mesh has {compat.vertex_count(obj)} vertices; the take animates {n_vertices}.")
    if len(curves) != n_keys:
        raise BakeError(f"Internal error: {len(curves)} weight curves for {n_keys} shape keys.")
    frames = np.asarray(scene_frames, dtype=np.float64)
    take = clean_take_name(take_name)
    number = next_bake_number(take)
    label = f"{PREFIX}{take}_{number:03d}"

    neutral = compat.neutral_coordinates(obj)
    compat.ensure_basis(obj)
    key = obj.data.shape_keys
    # Keys of earlier bakes stay (their Actions refer to them) but rest at 0 so they add nothing now.
    for kb in key.key_blocks:
        if kb.name.startswith(PREFIX) and kb != key.reference_key:
            kb.value = 0.0

    lows, highs = basis.weight_min, basis.weight_max
    names = []
    for k in range(n_keys):
        name = f"{label}_{k:02d}"
        kb = compat.add_shape_key(obj, name, neutral + shapes[k], slider_min=float(lows[k]),
                                  slider_max=float(highs[k]), value=0.0)
        names.append(kb.name)

    _protect_current_action(key)
    action = bpy.data.actions.new(label)
    action.use_fake_user = True
    # Not hasattr(): reading a new Action's unset id_root makes 4.2 print a warning (5.0 has no id_root).
    if "id_root" in action.bl_rna.properties:
        action.id_root = "KEY"
    fcurves = compat.fcurves_for(key, action)
    total = 0
    for name, curve in zip(names, curves, strict=True):
        idx = np.asarray(curve.indices, dtype=np.int64)
        compat.write_fcurve(fcurves, f'key_blocks["{name}"].value', frames[idx], curve.values)
        total += int(idx.size)
    return {"mode": "SHAPE_KEYS", "action": action.name, "keys": names, "n_keys": n_keys,
            "keyframes": total, "frame_start": float(frames[0]), "frame_end": float(frames[-1]),
            "error_max_m": float(basis.error_max_m)}


def cache_path(take_name: str) -> str:
    """The Blender-relative path of a take's PC2 file."""
    return f"{CACHE_DIR}/{clean_take_name(take_name)}.pc2"


def bake_mesh_cache(obj: bpy.types.Object, offsets: np.ndarray, first_frame: float, take_name: str) -> dict:
    """Write ``neutral + offsets`` (F, V, 3, at scene rate) to ``//jambatalk/<take>.pc2`` next to the .blend and
    play it with a Mesh Cache modifier so that sample 0 shows at scene frame ``first_frame``."""
    if obj is None or obj.type != "MESH":
        raise BakeError("Select a mesh object to animate.")
    if not bpy.data.filepath:
        raise BakeError("Save the .blend file first: the mesh cache is written next to it "
                        f"({cache_path(take_name)}).")
    data = np.asarray(offsets)
    if data.ndim != 3 or data.shape[1] != compat.vertex_count(obj):
        raise BakeError(f"This mesh has {compat.vertex_count(obj)} vertices; the take animates {data.shape[1]}.")
    relative = cache_path(take_name)
    absolute = bpy.path.abspath(relative)
    try:
        os.makedirs(os.path.dirname(absolute), exist_ok=True)
        write_pc2(absolute, data, start_frame=float(first_frame), sample_rate=1.0,
                  rest=compat.neutral_coordinates(obj))
    except (OSError, ValueError) as exc:
        raise BakeError(f"Could not write the mesh cache {absolute}: {exc}") from exc

    modifier = obj.modifiers.get(CACHE_MODIFIER)
    if modifier is None or modifier.type != "MESH_CACHE":
        modifier = obj.modifiers.new(CACHE_MODIFIER, "MESH_CACHE")
    modifier.cache_format = "PC2"
    modifier.filepath = relative
    modifier.play_mode = "SCENE"
    modifier.time_mode = "FRAME"
    modifier.frame_start = float(first_frame)
    modifier.frame_scale = 1.0
    modifier.interpolation = "LINEAR"
    modifier.deform_mode = "OVERWRITE"
    modifier.factor = 1.0
    modifier.forward_axis = "POS_Y"
    modifier.up_axis = "POS_Z"
    # The file changed under the same path: make the modifier re-read it.
    obj.update_tag()
    return {"mode": "MESH_CACHE", "filepath": relative, "abspath": absolute, "frames": int(data.shape[0]),
            "frame_start": float(first_frame), "frame_end": float(first_frame) + data.shape[0] - 1}
