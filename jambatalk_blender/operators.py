"""Operators: Animate from audio (modal in the UI, blocking headless), Cancel, Test connection, Stop worker,
Export FBX / Alembic; plus the scene settings they read. The job logic lives in bake_job.BakeJob."""

from __future__ import annotations

import atexit
import time

import bpy
from bpy_extras.io_utils import ExportHelper

from . import audio_source, exporters
from .audio_source import AudioSourceError
from .bake_job import BakeJob, BakeSettings, WorkerManager
from .bpy_writers import BakeError
from .core.worker_client import WorkerError
from .preferences import get_preferences, worker_config

MANAGER = WorkerManager()  # the local worker: started on first use, reused, stopped on unregister
_state: dict = {"job": None}
atexit.register(MANAGER.stop)  # also covered by the worker's --parent-pid watch


def current_job() -> BakeJob | None:
    return _state["job"]


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
        name="Output", default="SHAPE_KEYS",
        items=[("SHAPE_KEYS", "Shape Keys", "Editable shape keys with keyframed weights in a new Action"),
               ("MESH_CACHE", "Mesh Cache", "Exact per-vertex PC2 cache next to the .blend")])
    take_name: bpy.props.StringProperty(name="Take", description="Name of the take (empty: the sound's name)")
    model: bpy.props.StringProperty(name="Model", description="Worker model to use (empty: the first ready one)")


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
    bake = BakeSettings(mode=settings.output_mode, take_name=settings.take_name, model=settings.model or None,
                        strength=settings.strength, smoothing_s=settings.smoothing_s,
                        timing_offset_frames=settings.timing_offset)
    return BakeJob(MANAGER, worker_config(context), source, len(obj.data.vertices), bake)


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
            info = job.apply(obj, context.scene)
        except (BakeError, WorkerError, ValueError) as exc:
            wm.jambatalk_stage = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        wm.jambatalk_progress = 1.0
        if info["mode"] == "SHAPE_KEYS":
            text = (f"Baked {info['n_keys']} shape keys, {info['keyframes']} keyframes into {info['action']} "
                    f"(frames {info['frame_start']:g}-{info['frame_end']:g})")
        else:
            text = f"Baked a mesh cache {info['filepath']} (frames {info['frame_start']:g}-{info['frame_end']:g})"
        wm.jambatalk_stage = text
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
    def _target(self, context):
        obj = context.active_object
        if obj is None or obj.type != "MESH":
            raise exporters.ExportError("Select the animated mesh to export.")
        return obj


class JAMBATALK_OT_export_fbx(bpy.types.Operator, _ExportBase):
    """Export the active mesh's shape keys and their animation to FBX (for game engines)"""

    bl_idname = "jambatalk.export_fbx"
    bl_label = "Export FBX (Shape Keys)"
    filename_ext = ".fbx"
    filter_glob: bpy.props.StringProperty(default="*.fbx", options={"HIDDEN"})

    def execute(self, context):
        try:
            path = exporters.export_fbx(context, self._target(context), self.filepath)
        except exporters.ExportError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {path}")
        return {"FINISHED"}


class JAMBATALK_OT_export_alembic(bpy.types.Operator, _ExportBase):
    """Export the active mesh's evaluated animation (shape keys or mesh cache) to Alembic"""

    bl_idname = "jambatalk.export_alembic"
    bl_label = "Export Alembic"
    filename_ext = ".abc"
    filter_glob: bpy.props.StringProperty(default="*.abc", options={"HIDDEN"})
    frame_start: bpy.props.IntProperty(name="Start", default=-1, description="-1: the scene's start frame")
    frame_end: bpy.props.IntProperty(name="End", default=-1, description="-1: the scene's end frame")

    def execute(self, context):
        try:
            path = exporters.export_alembic(context, self._target(context), self.filepath,
                                            None if self.frame_start < 0 else self.frame_start,
                                            None if self.frame_end < 0 else self.frame_end)
        except exporters.ExportError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Exported {path}")
        return {"FINISHED"}


classes = (JambaTalkSceneSettings, JAMBATALK_OT_animate_from_audio, JAMBATALK_OT_cancel,
           JAMBATALK_OT_test_connection, JAMBATALK_OT_stop_worker, JAMBATALK_OT_export_fbx,
           JAMBATALK_OT_export_alembic)


def register_properties() -> None:
    bpy.types.Scene.jambatalk = bpy.props.PointerProperty(type=JambaTalkSceneSettings)
    for name, prop in _window_manager_props().items():
        setattr(bpy.types.WindowManager, name, prop)


def unregister_properties() -> None:
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
