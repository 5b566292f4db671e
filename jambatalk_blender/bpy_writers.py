"""Write a bake plan (core/bake_plan.py) into Blender data. Main thread only.

All maths happened in the plan; this module only moves its arrays into bpy with foreach_set:
* Character / solve: per object, a new Action ``JT_<take>_<nnn>`` (other objects: ``JT_<take>_<nnn>.<object>``)
  on its Key with one LINEAR F-curve per driven shape key; the life layer in its own Action
  (``..._life``) on an NLA track ``JambaTalk life`` under it, so muting or deleting the track leaves the lips.
* Editable basis: the plan's keys ``JT_<take>_<nnn>_<kk>`` (offsets added to the user's Basis) and their curves.
* Mesh cache: ``//jambatalk/<take>.pc2`` played by a Mesh Cache modifier.
Every Action records the take, mode and objects it was baked from and a fingerprint of its keys, so Re-bake
can rewrite an Action it made and leave one the animator has edited (re-baking into a new number instead).
Keys the user made are never touched; keys of earlier basis bakes are set to 0. Actions get a fake user, so
earlier takes survive being unassigned.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import bpy
import numpy as np

from . import compat
from .core.bake_plan import LIFE_SUFFIX, BakePlan, CurvePlan, ObjectPlan
from .core.mesh_cache import write_pc2
from .core.take import clean_take_name

PREFIX = "JT_"
CACHE_MODIFIER = "JambaTalk Cache"
CACHE_DIR = "//jambatalk"
LIFE_TRACK = "JambaTalk life"
TAKE_PROP, MODE_PROP, OBJECTS_PROP, FINGERPRINT_PROP, LABEL_PROP = (
    "jambatalk_take", "jambatalk_mode", "jambatalk_objects", "jambatalk_fingerprint", "jambatalk_label")


class BakeError(RuntimeError):
    """A bake that cannot be written; str() is a sentence for the animator."""


def next_bake_number(take: str) -> int:
    """1 + the highest ``n`` of the existing Actions named ``JT_<take>_<nnn>``."""
    pattern = re.compile(re.escape(f"{PREFIX}{take}_") + r"(\d{3,})$")
    numbers = [int(m.group(1)) for a in bpy.data.actions if (m := pattern.match(a.name))]
    return max(numbers, default=0) + 1


def bake_label(take: str, number: int | None = None) -> str:
    take = clean_take_name(take)
    return f"{PREFIX}{take}_{(number or next_bake_number(take)):03d}"


def _protect_current_action(id_data: bpy.types.ID) -> None:
    """Give the Action now on ``id_data`` a fake user, so assigning ours does not leave it with no users."""
    ad = id_data.animation_data
    if ad is not None and ad.action is not None and not ad.action.use_fake_user:
        ad.action.use_fake_user = True


def _new_action(name: str) -> bpy.types.Action:
    action = bpy.data.actions.new(name)
    action.use_fake_user = True
    # Not hasattr(): reading a new Action's unset id_root makes 4.2 print a warning (5.0 has no id_root).
    if "id_root" in action.bl_rna.properties:
        action.id_root = "KEY"
    return action


def action_fingerprint(action: bpy.types.Action) -> str:
    """A hash of every key (frame, value) and its interpolation: changes when the animator edits the curves."""
    h = hashlib.sha1()
    for fc in sorted(compat.action_fcurves(action), key=lambda f: (f.data_path, f.array_index)):
        n = len(fc.keyframe_points)
        co = np.empty(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        interp = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get("interpolation", interp)
        h.update(fc.data_path.encode())
        h.update(co.tobytes())
        h.update(interp.tobytes())
    return h.hexdigest()


def _write_curves(fcurves, curves: tuple[CurvePlan, ...]) -> int:
    total = 0
    for curve in curves:
        name = curve.key.replace("\\", "\\\\").replace('"', '\\"')
        compat.write_fcurve(fcurves, f'key_blocks["{name}"].value', curve.frames, curve.values)
        total += int(curve.frames.size)
    return total


def _stamp(action: bpy.types.Action, plan: BakePlan, objects: list[str]) -> None:
    action[TAKE_PROP] = plan.take
    action[MODE_PROP] = plan.mode
    action[OBJECTS_PROP] = json.dumps(objects)
    action[LABEL_PROP] = plan.label
    action[FINGERPRINT_PROP] = action_fingerprint(action)


def _life_strip(key: bpy.types.Key, action: bpy.types.Action, plan: BakePlan) -> None:
    """Put the life Action on our NLA track under the lips (replacing an earlier life strip of ours)."""
    ad = key.animation_data or key.animation_data_create()
    track = ad.nla_tracks.get(LIFE_TRACK)
    if track is None:
        track = ad.nla_tracks.new()
        track.name = LIFE_TRACK
    for strip in list(track.strips):
        track.strips.remove(strip)
    lo, hi = action.frame_range
    strip = track.strips.new(action.name, int(np.floor(lo)), action)
    if hasattr(strip, "action_slot") and strip.action_slot is None and len(action.slots):
        strip.action_slot = action.slots[0]
    # Action time = scene time: the strip starts exactly where the curves do (fractional timing offsets too).
    strip.action_frame_start, strip.action_frame_end = lo, max(hi, lo + 1.0)
    strip.frame_start_ui = lo
    strip.blend_type = "REPLACE"
    strip.extrapolation = "HOLD_FORWARD"


def _object_label(plan: BakePlan, index: int, obj: bpy.types.Object) -> str:
    return plan.label if index == 0 else f"{plan.label}.{obj.name}"[:63]


def _write_keys(obj: bpy.types.Object, op: ObjectPlan) -> list[str]:
    """Create the editable basis keys of ``op`` (offsets from the user's neutral)."""
    new = op.new_keys
    if new.shapes.shape[1] != compat.vertex_count(obj):
        raise BakeError(f"This mesh has {compat.vertex_count(obj)} vertices; the take animates {new.shapes.shape[1]}.")
    neutral = compat.neutral_coordinates(obj)
    compat.ensure_basis(obj)
    key = obj.data.shape_keys
    # Keys of earlier bakes stay (their Actions refer to them) but rest at 0 so they add nothing now.
    for kb in key.key_blocks:
        if kb.name.startswith(PREFIX) and kb != key.reference_key:
            kb.value = 0.0
    for name, shape, lo, hi in zip(new.names, new.shapes, new.slider_min, new.slider_max, strict=True):
        existing = key.key_blocks.get(name)
        if existing is not None:  # a re-bake of the same label: the keys are rebuilt
            obj.shape_key_remove(existing)
        compat.add_shape_key(obj, name, neutral + shape, slider_min=float(lo), slider_max=float(hi), value=0.0)
    return list(new.names)


def write_plan(plan: BakePlan, objects: list[bpy.types.Object], sidecar: str | None = None) -> dict:
    """Write ``plan`` onto ``objects`` (in the plan's order, by name). Returns a summary for the report."""
    by_name = {o.name: o for o in objects}
    missing = [op.object_name for op in plan.objects if op.object_name not in by_name]
    if missing:
        raise BakeError(f"The object(s) {', '.join(missing)} are gone; select the mesh again.")
    if plan.mode == "MESH_CACHE":
        op = plan.objects[0]
        info = bake_mesh_cache(by_name[op.object_name], op.mesh_cache, plan.first_frame, plan.take)
        info.update(take=plan.take, notes=list(plan.notes), sidecar=sidecar)
        return info
    info = {"mode": plan.mode, "take": plan.take, "actions": [], "life_actions": [], "objects": [], "keys": [],
            "keyframes": 0, "frame_start": plan.first_frame, "frame_end": plan.frame_end, "notes": list(plan.notes),
            "sidecar": sidecar}
    names = [op.object_name for op in plan.objects]
    for index, op in enumerate(plan.objects):
        obj = by_name[op.object_name]
        if op.new_keys is not None:
            info["keys"] += _write_keys(obj, op)
            info["error_max_m"] = op.new_keys.error_max_m
        key = obj.data.shape_keys
        if key is None:
            raise BakeError(f"{obj.name} has no shape keys to animate.")
        label = _object_label(plan, index, obj)
        _protect_current_action(key)
        life_action = None
        if op.life_curves:
            life_action = _new_action(label + LIFE_SUFFIX)
            info["keyframes"] += _write_curves(compat.fcurves_for(key, life_action), op.life_curves)
            _stamp(life_action, plan, names)
        action = _new_action(label)
        info["keyframes"] += _write_curves(compat.fcurves_for(key, action), op.curves)
        _stamp(action, plan, names)
        if life_action is not None:
            _life_strip(key, life_action, plan)
            info["life_actions"].append(life_action.name)
        info["actions"].append(action.name)
        info["objects"].append(obj.name)
        if op.new_keys is None:
            info["keys"] += [c.key for c in op.curves]
    info["action"] = info["actions"][0] if info["actions"] else None
    info["n_keys"] = len(info["keys"])
    return info


def remove_bake(label: str, take: str, objects: list[bpy.types.Object]) -> None:
    """Remove bake ``label``'s Actions and our life tracks on ``objects`` so a re-bake can write it again."""
    for obj in objects:
        key = obj.data.shape_keys
        ad = key.animation_data if key is not None else None
        if ad is not None:
            for track in [t for t in ad.nla_tracks if t.name == LIFE_TRACK]:
                ad.nla_tracks.remove(track)
    ours = [a for a in bpy.data.actions if a.get(TAKE_PROP) == take and (a.name == label or a.name.startswith(
        label + ".") or a.name == label + LIFE_SUFFIX)]
    for action in ours:
        bpy.data.actions.remove(action)


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
