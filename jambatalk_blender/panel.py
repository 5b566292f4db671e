"""The "JambaTalk" tab of the 3D Viewport sidebar."""

from __future__ import annotations

import bpy

from . import bake_apply, compat
from .core import names
from .operators import current_job


class JAMBATALK_PT_main(bpy.types.Panel):
    bl_label = "JambaTalk"
    bl_idname = "JAMBATALK_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "JambaTalk"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.jambatalk
        wm = context.window_manager

        col = layout.column()
        col.prop(settings, "source", expand=True)
        if settings.source == "STRIP":
            se = context.scene.sequence_editor
            if se is not None:
                collection = "strips_all" if hasattr(se, "strips_all") else "sequences_all"
                col.prop_search(settings, "strip_name", se, collection, text="Strip", icon="SOUND")
            else:
                col.label(text="No sound strip in the Video Sequencer", icon="INFO")
            if not compat.audio_supported():
                col.label(text="This build has no audio support", icon="ERROR")
        else:
            col.prop(settings, "audio_file")
            col.prop(settings, "file_start_frame")

        obj = context.active_object
        box = layout.box()
        if obj is not None and obj.type == "MESH":
            keys = bake_apply.user_key_names(obj)
            box.label(text=f"Target: {obj.name} ({len(obj.data.vertices)} vertices, {len(keys)} shape keys)",
                      icon="MESH_DATA")
            if settings.output_mode in ("AUTO", "CHARACTER") and keys:
                _draw_matches(box, settings, keys, obj.name)
        else:
            box.label(text="Select the head mesh", icon="ERROR")

        col = layout.column()
        col.prop(settings, "output_mode")
        col.prop(settings, "take_name")
        col.prop(settings, "strength")
        col.prop(settings, "smoothing_s")
        col.prop(settings, "timing_offset")
        col.prop(settings, "model")
        if settings.output_mode in ("AUTO", "CHARACTER", "SOLVE"):
            col.prop(settings, "weight_tolerance")
        if settings.output_mode in ("AUTO", "CHARACTER"):
            col.prop(settings, "mapping_file")
            col.prop(settings, "drive_selected")
        if settings.output_mode == "SOLVE":
            col.prop(settings, "solve_filter")
            col.prop(settings, "solve_smoothness")

        box = layout.box()
        box.prop(settings, "life_enabled")
        if settings.life_enabled:
            box.prop(settings, "life_seed")
            for part in ("blinks", "eyes", "brows"):
                row = box.row(align=True)
                row.prop(settings, f"life_{part}")
                row.prop(settings, f"life_{part[:-1] if part != 'eyes' else 'eye'}_strength")

        box = layout.box()
        box.label(text="Channel multipliers and offsets")
        row = box.row()
        row.template_list("UI_UL_list", "jambatalk_channels", settings, "channel_adjust", settings,
                          "channel_adjust_index", rows=2)
        buttons = row.column(align=True)
        buttons.operator("jambatalk.channel_adjust_add", icon="ADD", text="")
        buttons.operator("jambatalk.channel_adjust_remove", icon="REMOVE", text="")
        if 0 <= settings.channel_adjust_index < len(settings.channel_adjust):
            item = settings.channel_adjust[settings.channel_adjust_index]
            box.prop(item, "name")
            row = box.row(align=True)
            row.prop(item, "multiplier")
            row.prop(item, "offset")

        if current_job() is not None or wm.jambatalk_running:
            if hasattr(layout, "progress"):
                layout.progress(factor=wm.jambatalk_progress, type="BAR", text=wm.jambatalk_stage or "Working")
            else:
                layout.label(text=f"{wm.jambatalk_stage} ({wm.jambatalk_progress:.0%})")
            layout.operator("jambatalk.cancel", icon="CANCEL")
        else:
            row = layout.row(align=True)
            row.operator("jambatalk.animate_from_audio", icon="PLAY_SOUND")
            row.operator("jambatalk.rebake", icon="FILE_REFRESH")
            for line in wm.jambatalk_stage.splitlines()[:8]:
                layout.label(text=line)

        row = layout.row(align=True)
        row.operator("jambatalk.export_fbx", text="FBX", icon="EXPORT")
        row.operator("jambatalk.export_alembic", text="Alembic", icon="EXPORT")
        row = layout.row(align=True)
        row.operator("jambatalk.export_gltf", text="glTF", icon="EXPORT")
        row.operator("jambatalk.export_live_link", text="Live Link CSV", icon="EXPORT")


def _draw_matches(box, settings, keys: tuple[str, ...], object_name: str) -> None:
    """What the ARKit channels match on this mesh (a bad mapping file is shown, not raised, while drawing)."""
    mapping = None
    if settings.mapping_file:
        try:
            mapping = names.read_user_mapping(bpy.path.abspath(settings.mapping_file))
        except names.MappingError as exc:
            box.label(text=str(exc), icon="ERROR")
    matched = names.match_channels(names.ARKIT_52, keys, mapping)
    if matched.matched_count == 0:
        box.label(text=names.no_match_sentence(object_name, len(names.ARKIT_52)), icon="INFO")
        return
    box.label(text=matched.summary()[:160], icon="CHECKMARK")


classes = (JAMBATALK_PT_main,)
