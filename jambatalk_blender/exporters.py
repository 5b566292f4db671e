"""Export a baked head: FBX and glTF (shape keys + their animation, for game engines), Alembic (the evaluated
mesh per frame, works for every bake mode) or a Live Link Face CSV of the baked ARKit curves. Main thread only.

FBX settings (Blender API notes §4.3): only the "everything" anim stack carries Key animation, so NLA-strip and
all-actions baking must be off; modifiers must not be applied (an active Mesh Cache modifier would drop every
shape key); simplification off so every key survives. FBX cannot carry point caches: use Alembic for those.
"""

from __future__ import annotations

import contextlib
import os

import bpy
import numpy as np

from . import compat
from .blend_paths import absolute_path
from .core import livelink, names


class ExportError(RuntimeError):
    """str() is a sentence for the animator."""


def _check_target(obj) -> None:
    if obj is None or obj.type != "MESH":
        raise ExportError("Select the animated mesh to export.")


def _absolute(path: str, extension: str) -> str:
    if not path:
        raise ExportError("Choose a file to export to.")
    absolute = absolute_path(path, "export", ExportError)
    if not absolute.lower().endswith(extension):
        absolute += extension
    os.makedirs(os.path.dirname(absolute) or ".", exist_ok=True)
    return absolute


@contextlib.contextmanager
def _only_selected(context, obj):
    """Select just ``obj`` (and make it active) for the exporter, then restore the user's selection."""
    view_layer = context.view_layer
    before = [o for o in view_layer.objects if o.select_get(view_layer=view_layer)]
    active = view_layer.objects.active
    try:
        for o in before:
            o.select_set(False, view_layer=view_layer)
        obj.select_set(True, view_layer=view_layer)
        view_layer.objects.active = obj
        with context.temp_override(object=obj, active_object=obj, selected_objects=[obj],
                                   selected_editable_objects=[obj]):
            yield
    finally:
        with contextlib.suppress(ReferenceError):
            obj.select_set(False, view_layer=view_layer)
        for o in before:
            with contextlib.suppress(ReferenceError):
                o.select_set(True, view_layer=view_layer)
        view_layer.objects.active = active


def _has_shape_key_animation(obj) -> bool:
    key = obj.data.shape_keys
    ad = key.animation_data if key is not None else None
    return ad is not None and ad.action is not None and bool(compat.action_fcurves(ad.action))


def export_fbx(context, obj, filepath: str) -> str:
    """FBX with the shape keys and their animation (blendshape channels). Returns the absolute path written."""
    _check_target(obj)
    if not _has_shape_key_animation(obj):
        raise ExportError(f"{obj.name} has no shape-key animation to export. Bake in Shape Keys mode (FBX "
                          "cannot carry a mesh cache; export Alembic for that).")
    path = _absolute(filepath, ".fbx")
    with _only_selected(context, obj):
        result = bpy.ops.export_scene.fbx(
            filepath=path, check_existing=False, use_selection=True, object_types={"MESH"},
            use_mesh_modifiers=False, bake_anim=True, bake_anim_use_all_bones=False,
            bake_anim_use_nla_strips=False, bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True,
            bake_anim_step=1.0, bake_anim_simplify_factor=0.0, add_leaf_bones=False, axis_forward="-Z",
            axis_up="Y", mesh_smooth_type="OFF")
    if "FINISHED" not in result or not os.path.isfile(path):
        raise ExportError(f"The FBX exporter did not write {path}.")
    return path


def export_alembic(context, obj, filepath: str, frame_start: int | None = None, frame_end: int | None = None) -> str:
    """Alembic of the evaluated mesh per frame (shape keys or mesh cache). Returns the absolute path written."""
    _check_target(obj)
    scene = context.scene
    start = scene.frame_start if frame_start is None else int(frame_start)
    end = scene.frame_end if frame_end is None else int(frame_end)
    if end < start:
        raise ExportError(f"The frame range {start}..{end} is empty.")
    path = _absolute(filepath, ".abc")
    with _only_selected(context, obj):
        result = bpy.ops.wm.alembic_export(filepath=path, check_existing=False, start=start, end=end, selected=True,
                                           uvs=False, normals=True, evaluation_mode="RENDER",
                                           as_background_job=False)
    if "FINISHED" not in result or not os.path.isfile(path):
        raise ExportError(f"The Alembic exporter did not write {path}.")
    return path


def take_frame_range(obj) -> tuple[int, int] | None:
    """The frames the object's JambaTalk animation covers (Key Action keys, or the cache modifier), if any."""
    key = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    ad = key.animation_data if key is not None else None
    if ad is not None and ad.action is not None:
        lo, hi = ad.action.frame_range
        return int(lo), int(round(hi + 0.4999))
    return None


def export_gltf(context, obj, filepath: str) -> str:
    """glTF 2.0 binary (.glb): the mesh, its shape keys as morph targets and their animation sampled per frame.

    'SCENE' animation mode bakes what the scene evaluates (the lips' Action and the life layer's NLA track
    together) into one animation; sampling per frame keeps the curves exactly as baked. The mesh stays in its
    rest shape (no modifiers applied), as FBX does.
    """
    _check_target(obj)
    if not _has_shape_key_animation(obj):
        raise ExportError(f"{obj.name} has no shape-key animation to export. Bake in a shape-key mode first.")
    path = _absolute(filepath, ".glb")
    options = {"filepath": path, "check_existing": False, "export_format": "GLB", "use_selection": True,
               "export_apply": False, "export_animations": True, "export_frame_range": False,
               "export_force_sampling": True, "export_frame_step": 1, "export_morph": True,
               "export_morph_animation": True, "export_morph_normal": False, "export_skins": False,
               "export_animation_mode": "SCENE", "export_yup": True}
    known = bpy.ops.export_scene.gltf.get_rna_type().properties.keys()
    with _only_selected(context, obj):
        result = bpy.ops.export_scene.gltf(**{k: v for k, v in options.items() if k in known})
    if "FINISHED" not in result or not os.path.isfile(path):
        raise ExportError(f"The glTF exporter did not write {path}.")
    return path


def baked_channel_curves(obj, frames: np.ndarray, mapping=None) -> tuple[list[str], np.ndarray]:
    """(ARKit channels, (F, 52) values) read back from the object's baked shape-key curves at ``frames``.

    Each channel reads the first key it drives (divided by the mapping's factor). The curves are evaluated
    directly: the active Action and every unmuted NLA strip of ours (the life layer), hand edits included.
    """
    key = obj.data.shape_keys
    ad = key.animation_data if key is not None else None
    if ad is None:
        raise ExportError(f"{obj.name} has no shape-key animation to export.")
    curves = {}
    actions = [ad.action] if ad.action is not None else []
    actions += [s.action for t in ad.nla_tracks if not t.mute for s in t.strips if s.action is not None
                and not s.mute]
    for action in actions:
        for fc in compat.action_fcurves(action):
            if fc.data_path.startswith('key_blocks["') and fc.data_path.endswith('"].value'):
                curves.setdefault(fc.data_path[len('key_blocks["'):-len('"].value')], fc)
    channel_map = names.match_channels(names.ARKIT_52, [k.name for k in key.key_blocks], mapping)
    values = np.zeros((len(frames), len(names.ARKIT_52)), dtype=np.float32)
    for c, channel in enumerate(names.ARKIT_52):
        targets = channel_map.targets.get(channel, ())
        if not targets:
            continue
        fc = curves.get(targets[0].key)
        if fc is None:
            values[:, c] = key.key_blocks[targets[0].key].value / (targets[0].factor or 1.0)
            continue
        values[:, c] = [fc.evaluate(float(f)) / (targets[0].factor or 1.0) for f in frames]
    return list(names.ARKIT_52), values


def export_live_link_csv(context, obj, filepath: str) -> str:
    """The baked ARKit curves over the take's frames as a Live Link Face CSV (Unreal), at the scene's rate."""
    _check_target(obj)
    span = take_frame_range(obj)
    if span is None:
        raise ExportError(f"{obj.name} has no shape-key animation to export. Bake in a shape-key mode first.")
    path = _absolute(filepath, ".csv")
    frames = np.arange(span[0], span[1] + 1, dtype=np.float64)
    channels, values = baked_channel_curves(obj, frames)
    text = livelink.live_link_csv_text(livelink.arkit_columns(values, channels), compat.scene_fps(context.scene))
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
