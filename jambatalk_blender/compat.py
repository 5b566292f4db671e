"""Small helpers that hide the bpy API differences between Blender 4.2 LTS, 4.5 LTS and 5.0.

* VSE: ``sequences``/``sequences_all`` (<= 4.3) became ``strips``/``strips_all`` (4.4+, the old names are gone
  in 5.0).
* Actions: 4.4 introduced slotted (layered) Actions; ``Action.fcurves`` no longer exists in 5.0.
* Shape keys: 5.0 gives a new key ``value = 1.0`` (0.0 before), and values are clamped to the slider range.

Main thread only (everything here touches bpy).
"""

from __future__ import annotations

import bpy
import numpy as np

from .core import timing

BASIS_NAME = "Basis"


# -- VSE ---------------------------------------------------------------------------------------------------
def strips_all(scene: bpy.types.Scene) -> list:
    """Every strip of the scene's sequencer, inside meta strips too ([] without a sequencer)."""
    se = scene.sequence_editor
    if se is None:
        return []
    # Not `getattr(se, "strips_all", None) or ...`: an empty collection is falsy.
    return list(se.strips_all if hasattr(se, "strips_all") else se.sequences_all)


def sound_strips(scene: bpy.types.Scene) -> list:
    """The scene's sound strips, in sequencer order."""
    return [s for s in strips_all(scene) if s.type == "SOUND"]


def top_level_strips(scene: bpy.types.Scene):
    """The collection new strips are added to (``strips`` on 4.4+, ``sequences`` before)."""
    se = scene.sequence_editor or scene.sequence_editor_create()
    return se.strips if hasattr(se, "strips") else se.sequences


def new_sound_strip(scene: bpy.types.Scene, name: str, filepath: str, channel: int = 1, frame_start: int = 1):
    """Add a sound strip through the data API (the operator needs a sequencer area)."""
    return top_level_strips(scene).new_sound(name=name, filepath=filepath, channel=channel, frame_start=frame_start)


def audio_supported() -> bool:
    """False on builds without audaspace (e.g. the PyPI bpy 4.2 wheel): sound strips cannot be created there."""
    return bool(getattr(bpy.app.build_options, "audaspace", False))


def scene_fps(scene: bpy.types.Scene) -> float:
    """The scene's real frame rate (fps / fps_base, e.g. 29.97), as `timing.effective_fps` computes it."""
    return timing.effective_fps(scene.render.fps, scene.render.fps_base)


# -- Actions -----------------------------------------------------------------------------------------------
def fcurves_for(id_data: bpy.types.ID, action: bpy.types.Action):
    """Assign ``action`` to ``id_data`` and return the F-curve collection to write its channels into.

    Slotted Actions (4.4+): make/assign a slot for the ID, a layer and a keyframe strip, and return the strip's
    channelbag for that slot. Legacy Actions (<= 4.3): ``action.fcurves``.
    """
    ad = id_data.animation_data or id_data.animation_data_create()
    ad.action = action
    if hasattr(action, "layers"):
        slot = ad.action_slot
        if slot is None:  # assigning an empty action does not create a slot
            slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
            ad.action_slot = slot
        layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
        strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
        return strip.channelbag(slot, ensure=True).fcurves
    return action.fcurves


def action_fcurves(action: bpy.types.Action) -> list:
    """All F-curves of an action, whatever its kind (read only)."""
    if hasattr(action, "layers"):
        out = []
        for layer in action.layers:
            for strip in layer.strips:
                for bag in getattr(strip, "channelbags", ()):
                    out.extend(bag.fcurves)
        return out
    return list(action.fcurves)


def keyframe_enum(name: str) -> int:
    """The integer value of a Keyframe.interpolation enum item, for foreach_set."""
    return bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items[name].value


def write_fcurve(fcurves, data_path: str, frames: np.ndarray, values: np.ndarray, interpolation: str = "LINEAR"):
    """A new F-curve with ``len(frames)`` keys written in one go (foreach_set), then sorted and updated."""
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    fc = fcurves.new(data_path=data_path, index=0)
    n = int(frames.shape[0])
    points = fc.keyframe_points
    points.add(n)
    points.foreach_set("co", np.column_stack([frames, values]).astype(np.float32).ravel())
    points.foreach_set("interpolation", np.full(n, keyframe_enum(interpolation), dtype=np.int32))
    fc.update()
    return fc


# -- shape keys --------------------------------------------------------------------------------------------
def vertex_count(obj: bpy.types.Object) -> int:
    return len(obj.data.vertices)


def mesh_coordinates(mesh: bpy.types.Mesh) -> np.ndarray:
    """(V, 3) float32 vertex coordinates of a mesh datablock (mesh-local)."""
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def key_block_coordinates(key_block: bpy.types.ShapeKey) -> np.ndarray:
    """(V, 3) float32 coordinates stored in a shape key."""
    co = np.empty(len(key_block.data) * 3, dtype=np.float32)
    key_block.data.foreach_get("co", co)
    return co.reshape(-1, 3)


def set_key_block_coordinates(key_block: bpy.types.ShapeKey, coordinates: np.ndarray) -> None:
    key_block.data.foreach_set("co", np.ascontiguousarray(coordinates, dtype=np.float32).ravel())


def basis_key(obj: bpy.types.Object) -> bpy.types.ShapeKey | None:
    """The mesh's reference (Basis) shape key, or None when it has no shape keys."""
    key = obj.data.shape_keys
    if key is None or len(key.key_blocks) == 0:
        return None
    return key.reference_key


def ensure_basis(obj: bpy.types.Object) -> bpy.types.ShapeKey:
    """The Basis shape key, created from the mesh (not the mix) when the mesh has none."""
    existing = basis_key(obj)
    if existing is not None:
        return existing
    return obj.shape_key_add(name=BASIS_NAME, from_mix=False)


def neutral_coordinates(obj: bpy.types.Object) -> np.ndarray:
    """The user's neutral face: the Basis key's coordinates, or the mesh's own when it has no shape keys."""
    basis = basis_key(obj)
    return key_block_coordinates(basis) if basis is not None else mesh_coordinates(obj.data)


def add_shape_key(obj: bpy.types.Object, name: str, coordinates: np.ndarray, slider_min: float = 0.0,
                  slider_max: float = 1.0, value: float = 0.0) -> bpy.types.ShapeKey:
    """A new shape key with the given absolute coordinates, slider range and value (set explicitly: 5.0 defaults
    new keys to 1.0). Slider limits are Blender's hard range [-10, 10]."""
    kb = obj.shape_key_add(name=name, from_mix=False)
    set_key_block_coordinates(kb, coordinates)
    lo = max(-10.0, min(0.0, float(slider_min)))
    hi = min(10.0, max(1.0, float(slider_max)))
    # Order matters: slider_min may not exceed slider_max at any moment.
    kb.slider_max = hi
    kb.slider_min = lo
    kb.value = float(min(max(value, lo), hi))
    return kb


def evaluated_coordinates(obj: bpy.types.Object, depsgraph=None) -> np.ndarray:
    """(V, 3) float32 mesh-local vertex coordinates of the evaluated object (shape keys, modifiers applied)."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        return mesh_coordinates(mesh)
    finally:
        evaluated.to_mesh_clear()
