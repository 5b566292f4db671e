"""Operators: Animate from audio (modal in the UI, blocking headless), Re-bake, Cancel, Test connection, Stop
worker, channel adjustments, Export FBX / Alembic / glTF / Live Link CSV; plus the scene settings they read.
The worker job lives in core/job.py, the bake in bake_apply.py (plan: core/bake_plan.py)."""

from __future__ import annotations

import atexit
import time

import bpy
from bpy_extras.io_utils import ExportHelper

from . import audio_source, bake_apply, exporters
from .audio_source import AudioSourceError
from .bpy_writers import BakeError
from .core.job import BakeJob, JobRequest, WorkerManager
from .core.worker_errors import WorkerError
from .preferences import get_preferences, worker_config

MANAGER = WorkerManager()  # the local worker: started on first use, reused, stopped on unregister
_state: dict = {"job": None}
atexit.register(MANAGER.stop)  # also covered by the worker's --parent-pid watch


def current_job() -> BakeJob | None:
    return _state["job"]


class JambaTalkChannelAdjust(bpy.types.PropertyGroup):
    """One channel's multiplier and offset (raw x multiplier + offset), saved with the scene."""

    name: bpy.props.StringProperty(name="Channel", description="Model channel, e.g. jawOpen")
    multiplier: bpy.props.FloatProperty(name="Multiplier", default=1.0, soft_min=0.0, soft_max=3.0)
    offset: bpy.props.FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0)


class JambaTalkSceneSettings(bpy.types.PropertyGroup):
    source: bpy.props.EnumProperty(
        name="Audio", default="STRIP",
        items=[("STRIP", "Sound Strip", "A sound strip of the Video Sequencer (its timing is used)"),
               ("FILE", "Audio File", "An audio file, placed at the start frame below")])
    strip_name: bpy.props.StringProperty(name="Sound Strip",
                                         description="Sound strip to animate (empty: the active or only one)")
    audio_file: bpy.props.StringProperty(name="Audio File", subtype="FILE_PATH")
    file_start_frame: bpy.props.IntProperty(name="Start Frame", default=1,
                                            description="Scene frame of the audio file's first sample")
    strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, max=4.0,
                                      description="Multiplies the motion")
    smoothing_s: bpy.props.FloatProperty(name="Smoothing", default=0.0, min=0.0, max=1.0, unit="TIME_ABSOLUTE",
                                         description="Temporal smoothing (seconds)")
    timing_offset: bpy.props.FloatProperty(name="Timing Offset", default=0.0, soft_min=-24, soft_max=24,
                                           description="Shift the animation by this many frames (negative: lead)")
    output_mode: bpy.props.EnumProperty(
        name="Output", default="AUTO",
        items=[("AUTO", "Auto", "Character Shape Keys for a blendshape model and a mesh with matching keys, "
                                "else Editable Basis"),
               ("CHARACTER", "Character Shape Keys", "Drive this character's own shape keys, matched by name "
                                                     "(ARKit and common conventions, or a mapping file)"),
               ("SOLVE", "Solve onto Shape Keys", "Solve a vertex model's motion onto this mesh's own keys"),
               ("SHAPE_KEYS", "Editable Basis", "New editable shape keys with keyframed weights in a new Action"),
               ("MESH_CACHE", "Mesh Cache", "Exact per-vertex PC2 cache next to the .blend")])
    take_name: bpy.props.StringProperty(name="Take", description="Name of the take (empty: the sound's name)")
    model: bpy.props.StringProperty(name="Model", description="Worker model to use (empty: the first ready one)")
    weight_tolerance: bpy.props.FloatProperty(name="Key Tolerance", default=0.002, min=1e-5, max=0.1,
                                              precision=4, description="Keyframes are thinned while every "
                                              "weight curve stays within this many slider units")
    mapping_file: bpy.props.StringProperty(name="Mapping File", subtype="FILE_PATH",
                                           description="JSON file mapping ARKit channels to this rig's key names")
    drive_selected: bpy.props.BoolProperty(name="Drive Selected Too", default=True,
                                           description="Also drive the other selected meshes that share key "
                                                       "names (teeth, tongue, brows, lashes)")
    solve_filter: bpy.props.StringProperty(name="Key Filter",
                                           description="Solve onto keys whose name contains this (empty: all)")
    solve_smoothness: bpy.props.FloatProperty(name="Solve Smoothness", default=0.05, min=0.0, max=10.0,
                                              description="Temporal smoothness of the solved weights")
    life_enabled: bpy.props.BoolProperty(name="Life Layer", default=True,
                                         description="Blinks, eye movements and brow raises, in their own Action")
    life_seed: bpy.props.IntProperty(name="Seed", default=0, min=0)
    life_blinks: bpy.props.BoolProperty(name="Blinks", default=True)
    life_blink_strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, max=2.0)
    life_eyes: bpy.props.BoolProperty(name="Eyes", default=True)
    life_eye_strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, max=2.0)
    life_brows: bpy.props.BoolProperty(name="Brows", default=True)
    life_brow_strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, max=2.0)
    channel_adjust: bpy.props.CollectionProperty(type=JambaTalkChannelAdjust)
    channel_adjust_index: bpy.props.IntProperty(default=0)
    last_take: bpy.props.StringProperty(name="Last Take", options={"HIDDEN"})


def _window_manager_props() -> dict:
    return {
        "jambatalk_progress": bpy.props.FloatProperty(default=0.0, min=0.0, max=1.0),
        "jambatalk_stage": bpy.props.StringProperty(default=""),
        "jambatalk_running": bpy.props.BoolProperty(default=False),
    }


def _redraw(context) -> None:
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type in ("VIEW_3D", "PREFERENCES"):
            area.tag_redraw()


def build_job(context) -> BakeJob:
    """A BakeJob for the active mesh and the scene's JambaTalk settings (raises with a sentence on bad input)."""
    obj = context.active_object
    if obj is None or obj.type != "MESH":
        raise BakeError("Select the head mesh to animate (it must be the active object).")
    settings = context.scene.jambatalk
    if settings.source == "STRIP":
        if not bpy.app.build_options.audaspace:
            raise AudioSourceError("This Blender build has no audio support, so sound strips cannot be read; "
                                   "choose an audio file instead.")
        strip = audio_source.find_strip(context.scene, settings.strip_name)
        source = audio_source.from_strip(context.scene, strip)
    else:
        source = audio_source.from_file(settings.audio_file, settings.file_start_frame)
    if get_preferences(context) is None:
        raise BakeError("The JambaTalk add-on is not enabled, so its preferences cannot be read.")
    request = JobRequest(mode=settings.output_mode, take_name=settings.take_name, model=settings.model or None,
                         vertex_count=len(obj.data.vertices), key_names=bake_apply.user_key_names(obj))
    return BakeJob(MANAGER, worker_config(context), source, request, decoder=bake_apply.aud_decoder)


def _report_text(info: dict) -> str:
    frames = f"frames {info['frame_start']:g}-{info['frame_end']:g}"
    if info["mode"] == "MESH_CACHE":
        return f"Baked a mesh cache {info['filepath']} ({frames})"
    objects = ", ".join(info["objects"])
    text = (f"Baked {info['n_keys']} shape keys, {info['keyframes']} keyframes into {info['action']} on {objects} "
            f"({frames})")
    if info.get("life"):
        text += f"; life layer: {len(info['life'])} channels"
    return text


class JAMBATALK_OT_animate_from_audio(bpy.types.Operator):
    """Animate the active FLAME-topology mesh from speech (runs in the background; Esc cancels)"""

    bl_idname = "jambatalk.animate_from_audio"
    bl_label = "Animate from Audio"
    bl_options = {"REGISTER", "UNDO"}

    timeout_s: bpy.props.FloatProperty(default=3600.0, options={"HIDDEN", "SKIP_SAVE"})

    _timer = None
    _job: BakeJob | None = None

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "MESH" and current_job() is None

    def _start(self, context) -> bool:
        try:
            self._job = build_job(context)
        except (AudioSourceError, BakeError, WorkerError) as exc:
            self.report({"ERROR"}, str(exc))
            return False
        self._obj_name = context.active_object.name
        _state["job"] = self._job.start()
        wm = context.window_manager
        wm.jambatalk_running, wm.jambatalk_progress, wm.jambatalk_stage = True, 0.0, "starting"
        return True

    def _finish(self, context) -> set[str]:
        """Apply a finished job (or report why it did not finish); always clears the running state."""
        wm = context.window_manager
        job, self._job = self._job, None
        _state["job"] = None
        wm.jambatalk_running = False
        status = job.poll()
        if status.state != "done":
            wm.jambatalk_stage = status.error or status.state
            self.report({"WARNING"} if status.state == "cancelled" else {"ERROR"}, status.error or status.state)
            _redraw(context)
            return {"CANCELLED"}
        obj = bpy.data.objects.get(self._obj_name)
        try:
            info = bake_apply.apply_take(context, job.take, job.mode, obj)
        except (BakeError, WorkerError, ValueError) as exc:
            wm.jambatalk_stage = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        info["timings"].update(status.timings)
        job.mark_applied(info)
        wm.jambatalk_progress = 1.0
        text = _report_text(info)
        wm.jambatalk_stage = "\n".join([text, *info.get("notes", [])])
        self.report({"INFO"}, text)
        _redraw(context)
        return {"FINISHED"}

    def execute(self, context):
        """Blocking run (scripts, background mode, and INVOKE in the bpy module, which calls execute)."""
        if not self._start(context):
            return {"CANCELLED"}
        deadline = time.monotonic() + self.timeout_s
        while not self._job.poll().finished and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._job.poll().finished:
            self._job.cancel()
        return self._finish(context)

    def invoke(self, context, event):
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" and event.value == "PRESS":
            self._job.cancel()
        if event.type != "TIMER" and not (event.type == "ESC"):
            return {"PASS_THROUGH"}
        status = self._job.poll()
        wm = context.window_manager
        wm.jambatalk_progress, wm.jambatalk_stage = status.progress, status.stage
        _redraw(context)
        if not status.finished:
            return {"RUNNING_MODAL"}
        wm.event_timer_remove(self._timer)
        self._timer = None
        return self._finish(context)

    def cancel(self, context):  # Blender quitting / file loading under a running modal operator
        if self._job is not None:
            self._job.cancel()
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
        _state["job"] = None
        context.window_manager.jambatalk_running = False


class JAMBATALK_OT_rebake(bpy.types.Operator):
    """Bake the active object's take again with the current settings, without the worker (under a second)"""

    bl_idname = "jambatalk.rebake"
    bl_label = "Re-bake"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and obj.type == "MESH" and current_job() is None

    def execute(self, context):
        try:
            info = bake_apply.rebake(context, context.active_object)
        except (BakeError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        text = _report_text(info)
        if info.get("kept_edited"):
            text += f" (your edits in {info['rebaked_from']} are kept)"
        context.window_manager.jambatalk_stage = "\n".join([text, *info.get("notes", [])])
        self.report({"INFO"}, text)
        return {"FINISHED"}


class JAMBATALK_OT_channel_adjust_add(bpy.types.Operator):
    """Add a per-channel multiplier and offset (e.g. jawOpen x 0.8)"""

    bl_idname = "jambatalk.channel_adjust_add"
    bl_label = "Add Channel Adjustment"
    bl_options = {"REGISTER", "UNDO"}

    channel: bpy.props.StringProperty(name="Channel", default="jawOpen")

    def execute(self, context):
        settings = context.scene.jambatalk
        item = settings.channel_adjust.add()
        item.name = self.channel
        settings.channel_adjust_index = len(settings.channel_adjust) - 1
        return {"FINISHED"}


class JAMBATALK_OT_channel_adjust_remove(bpy.types.Operator):
    """Remove the selected channel adjustment"""

    bl_idname = "jambatalk.channel_adjust_remove"
    bl_label = "Remove Channel Adjustment"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.jambatalk.channel_adjust) > 0

    def execute(self, context):
        settings = context.scene.jambatalk
        settings.channel_adjust.remove(settings.channel_adjust_index)
        settings.channel_adjust_index = max(0, min(settings.channel_adjust_index, len(settings.channel_adjust) - 1))
        return {"FINISHED"}


class JAMBATALK_OT_cancel(bpy.types.Operator):
    """Cancel the running JambaTalk job; nothing is written into the scene"""

    bl_idname = "jambatalk.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return current_job() is not None

    def execute(self, context):
        current_job().cancel()
        return {"FINISHED"}


class JAMBATALK_OT_test_connection(bpy.types.Operator):
    """Start or reach the worker and show what it serves"""

    bl_idname = "jambatalk.test_connection"
    bl_label = "Test Connection"

    def execute(self, context):
        prefs = get_preferences(context)
        try:
            health = MANAGER.client(worker_config(context)).health()
        except WorkerError as exc:
            text = str(exc)
            if prefs is not None:
                prefs.status_text = text
            self.report({"ERROR"}, text)
            return {"CANCELLED"}
        models = ", ".join(f"{m.get('name')} ({m.get('vertex_count')} vertices, {m.get('state')})"
                           for m in health.get("models", [])) or "none"
        text = f"Worker OK on {health.get('device')}, version {health.get('version')}. Models: {models}"
        if prefs is not None:
            prefs.status_text = text
        self.report({"INFO"}, text)
        return {"FINISHED"}


class JAMBATALK_OT_stop_worker(bpy.types.Operator):
    """Stop the local worker process (it is started again on the next bake)"""

    bl_idname = "jambatalk.stop_worker"
    bl_label = "Stop Worker"

    def execute(self, context):
        MANAGER.stop()
        prefs = get_preferences(context)
        if prefs is not None:
            prefs.status_text = "Worker stopped."
        return {"FINISHED"}


class _ExportBase(ExportHelper):
    """Export the active mesh with `_export` (each operator's one line), reporting a failure as one sentence."""

    def _target(self, context):
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            raise exporters.ExportError("Select the animated mesh to export.")
        return obj

    def _export(self, context, obj) -> str:
        raise NotImplementedError

    def execute(self, context):
        try:
            path = self._export(context, self._target(context))
        except (exporters.ExportError, BakeError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {path}")
        return {"FINISHED"}


class JAMBATALK_OT_export_fbx(bpy.types.Operator, _ExportBase):
    """Export the active mesh's shape keys and their animation to FBX (for game engines)"""

    bl_idname = "jambatalk.export_fbx"
    bl_label = "Export FBX (Shape Keys)"
    filename_ext = ".fbx"
    filter_glob: bpy.props.StringProperty(default="*.fbx", options={"HIDDEN"})

    def _export(self, context, obj) -> str:
        return exporters.export_fbx(context, obj, self.filepath)


class JAMBATALK_OT_export_alembic(bpy.types.Operator, _ExportBase):
    """Export the active mesh's evaluated animation (shape keys or mesh cache) to Alembic"""

    bl_idname = "jambatalk.export_alembic"
    bl_label = "Export Alembic"
    filename_ext = ".abc"
    filter_glob: bpy.props.StringProperty(default="*.abc", options={"HIDDEN"})
    frame_start: bpy.props.IntProperty(name="Start", default=-1, description="-1: the scene's start frame")
    frame_end: bpy.props.IntProperty(name="End", default=-1, description="-1: the scene's end frame")

    def _export(self, context, obj) -> str:
        return exporters.export_alembic(context, obj, self.filepath,
                                        None if self.frame_start < 0 else self.frame_start,
                                        None if self.frame_end < 0 else self.frame_end)


class JAMBATALK_OT_export_gltf(bpy.types.Operator, _ExportBase):
    """Export the active mesh with its shape keys and their animation as glTF 2.0 morph targets (.glb)"""

    bl_idname = "jambatalk.export_gltf"
    bl_label = "Export glTF (Morph Targets)"
    filename_ext = ".glb"
    filter_glob: bpy.props.StringProperty(default="*.glb", options={"HIDDEN"})

    def _export(self, context, obj) -> str:
        return exporters.export_gltf(context, obj, self.filepath)


class JAMBATALK_OT_export_live_link(bpy.types.Operator, _ExportBase):
    """Export the baked ARKit curves (lips and life layer, with your edits) as a Live Link Face CSV for Unreal"""

    bl_idname = "jambatalk.export_live_link"
    bl_label = "Export Live Link Face CSV"
    filename_ext = ".csv"
    filter_glob: bpy.props.StringProperty(default="*.csv", options={"HIDDEN"})

    def _export(self, context, obj) -> str:
        return exporters.export_live_link_csv(context, obj, self.filepath)


classes = (JambaTalkChannelAdjust, JambaTalkSceneSettings, JAMBATALK_OT_animate_from_audio, JAMBATALK_OT_rebake,
           JAMBATALK_OT_channel_adjust_add, JAMBATALK_OT_channel_adjust_remove, JAMBATALK_OT_cancel,
           JAMBATALK_OT_test_connection, JAMBATALK_OT_stop_worker, JAMBATALK_OT_export_fbx,
           JAMBATALK_OT_export_alembic, JAMBATALK_OT_export_gltf, JAMBATALK_OT_export_live_link)


def register_properties() -> None:
    bpy.types.Scene.jambatalk = bpy.props.PointerProperty(type=JambaTalkSceneSettings)
    for handlers, function in _handlers():
        if function not in handlers:
            handlers.append(function)
    for name, prop in _window_manager_props().items():
        setattr(bpy.types.WindowManager, name, prop)


def _handlers() -> list:
    return [(bpy.app.handlers.save_post, bake_apply.save_takes), (bpy.app.handlers.load_post, bake_apply.forget_takes)]


def unregister_properties() -> None:
    for handlers, function in _handlers():
        if function in handlers:
            handlers.remove(function)
    for name in _window_manager_props():
        if hasattr(bpy.types.WindowManager, name):
            delattr(bpy.types.WindowManager, name)
    if hasattr(bpy.types.Scene, "jambatalk"):
        del bpy.types.Scene.jambatalk


def shutdown() -> None:
    """Cancel a running job and stop the local worker (unregister)."""
    job = current_job()
    if job is not None:
        job.cancel()
        job.join(timeout=5)
    _state["job"] = None
    MANAGER.stop()
