"""Export a baked head: FBX (shape keys + their animation, for game engines) or Alembic (the evaluated mesh per
frame, works for both bake modes). Main thread only.

FBX settings (Blender API notes §4.3): only the "everything" anim stack carries Key animation, so NLA-strip and
all-actions baking must be off; modifiers must not be applied (an active Mesh Cache modifier would drop every
shape key); simplification off so every key survives. FBX cannot carry point caches: use Alembic for those.
"""

from __future__ import annotations

import contextlib
import os

import bpy

from . import compat


class ExportError(RuntimeError):
    """str() is a sentence for the animator."""


def _check_target(obj) -> None:
    if obj is None or obj.type != "MESH":
        raise ExportError("Select the animated mesh to export.")


def _absolute(path: str, extension: str) -> str:
    if not path:
        raise ExportError("Choose a file to export to.")
    if path.startswith("//") and not bpy.data.filepath:
        raise ExportError(f"The export path {path} is relative to the .blend, which is not saved yet.")
    absolute = os.path.normpath(bpy.path.abspath(path))
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
