"""The "JambaTalk" tab of the 3D Viewport sidebar."""

from __future__ import annotations

import bpy

from . import compat
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
            box.label(text=f"Target: {obj.name} ({len(obj.data.vertices)} vertices)", icon="MESH_DATA")
        else:
            box.label(text="Select the head mesh", icon="ERROR")

        col = layout.column()
        col.prop(settings, "output_mode")
        col.prop(settings, "take_name")
        col.prop(settings, "strength")
        col.prop(settings, "smoothing_s")
        col.prop(settings, "timing_offset")
        col.prop(settings, "model")

        if current_job() is not None or wm.jambatalk_running:
            if hasattr(layout, "progress"):
                layout.progress(factor=wm.jambatalk_progress, type="BAR", text=wm.jambatalk_stage or "Working")
            else:
                layout.label(text=f"{wm.jambatalk_stage} ({wm.jambatalk_progress:.0%})")
            layout.operator("jambatalk.cancel", icon="CANCEL")
        else:
            layout.operator("jambatalk.animate_from_audio", icon="PLAY_SOUND")
            if wm.jambatalk_stage:
                layout.label(text=wm.jambatalk_stage)

        row = layout.row(align=True)
        row.operator("jambatalk.export_fbx", text="FBX", icon="EXPORT")
        row.operator("jambatalk.export_alembic", text="Alembic", icon="EXPORT")


classes = (JAMBATALK_PT_main,)
