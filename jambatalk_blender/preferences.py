"""Add-on preferences: where the inference worker is (a local process we start, or a remote one)."""

from __future__ import annotations

import bpy

from .core.job import WorkerConfig

# preferences.py lives inside the package, so __package__ is the add-on's module name, both as a plain add-on
# ("jambatalk_blender") and as an extension ("bl_ext.<repo>.jambatalk_blender").
ADDON_ID = __package__


class JAMBATALK_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    worker_mode: bpy.props.EnumProperty(
        name="Worker", default="LOCAL",
        items=[("LOCAL", "Local", "Start a worker process on this computer with the Python below"),
               ("REMOTE", "Remote", "Use a worker that is already running (address and token below)")])
    worker_python: bpy.props.StringProperty(
        name="Worker Python", subtype="FILE_PATH",
        description="Python executable of the environment with torch and JambaTalk (not Blender's own Python)")
    worker_root: bpy.props.StringProperty(
        name="JambaTalk Folder", subtype="DIR_PATH",
        description="Folder that contains model_core, when JambaTalk is not installed into that Python")
    checkpoint: bpy.props.StringProperty(name="Checkpoint", subtype="FILE_PATH",
                                         description="Model checkpoint (.safetensors) the worker serves")
    extra_checkpoints: bpy.props.StringProperty(
        name="More Checkpoints", description="Further checkpoints to serve, separated by ';'")
    device: bpy.props.EnumProperty(
        name="Device", default="auto",
        items=[("auto", "Auto", "GPU when available, else CPU"), ("cpu", "CPU", ""), ("cuda", "CUDA", "")])
    url: bpy.props.StringProperty(name="Address", default="http://127.0.0.1:8765")
    token: bpy.props.StringProperty(name="Token", subtype="PASSWORD",
                                    description="The token the worker printed when it started")
    status_text: bpy.props.StringProperty(name="Status", default="")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "worker_mode", expand=True)
        col = layout.column()
        if self.worker_mode == "LOCAL":
            col.prop(self, "worker_python")
            col.prop(self, "worker_root")
            col.prop(self, "checkpoint")
            col.prop(self, "extra_checkpoints")
            col.prop(self, "device")
        else:
            col.prop(self, "url")
            col.prop(self, "token")
        row = layout.row()
        row.operator("jambatalk.test_connection", icon="PLUGIN")
        row.operator("jambatalk.stop_worker", icon="CANCEL")
        if self.status_text:
            for line in self.status_text.splitlines()[:6]:
                layout.label(text=line)


def get_preferences(context=None):
    """The add-on's preferences, or None when the add-on is not enabled (only registered)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def worker_config(context=None) -> WorkerConfig:
    prefs = get_preferences(context)
    if prefs is None:
        return WorkerConfig()
    checkpoints = [bpy.path.abspath(prefs.checkpoint)] if prefs.checkpoint else []
    checkpoints += [bpy.path.abspath(p.strip()) for p in prefs.extra_checkpoints.split(";") if p.strip()]
    return WorkerConfig(mode=prefs.worker_mode, python=bpy.path.abspath(prefs.worker_python),
                        checkpoints=tuple(checkpoints), device=prefs.device,
                        cwd=bpy.path.abspath(prefs.worker_root) if prefs.worker_root else None,
                        url=prefs.url.strip(), token=prefs.token.strip())


classes = (JAMBATALK_AP_preferences,)
