"""The demo's Blender half, run with real bpy (the Blender-side venv): scene, bake through the add-on, save,
export, render, preview.

It drives the extension exactly as an animator would: the add-on is enabled, its preferences point at a local
worker (the main venv's Python and the shipped ARKit model), two characters with ARKit-named shape keys stand
side by side (the voice's MakeHuman face, active, and a differently built one that shares only the key names,
selected), a sound strip holds the take, and `bpy.ops.jambatalk.animate_from_audio()` drives both characters'
own keys (Character Shape Keys, with the life layer). Then the file is saved, exported with the add-on's FBX,
Alembic and glTF operators, and rendered with Cycles on the CPU.

    python scripts/demo_blender.py --take demo_output --checkpoint models/demo/jambatalk-demo-small.safetensors \
        --worker-python .venv/bin/python [--no-video] [--stills 6]

`--take` is the folder `python -m model_core.corpus.demo_take` wrote (demo.wav, demo_truth.json,
demo_characters.npz); every output goes there too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="jt-demo-user-"))  # keep ~/.config clean

import bpy  # noqa: E402  (after the environment above)
import numpy as np  # noqa: E402

addon_utils = importlib.import_module("addon_utils")  # Blender's own module: importable once bpy is

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the add-on, enabled as a plain add-on module from this checkout
ADDON = "jambatalk_blender"
STRIP = "demo"
SKIN = (0.80, 0.60, 0.52, 1.0)
CAMERA_TURN_DEG = 25.0
# Workbench twice (its EGL crash is intermittent), then Cycles, small and noisy but independent of OpenGL.
VIDEO_ATTEMPTS = ("BLENDER_WORKBENCH", "BLENDER_WORKBENCH", "CYCLES")


class Stages:
    """Wall time of each named stage, printed as a table at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        print(f"[demo] {name} ...", flush=True)
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - started

    def table(self) -> str:
        rows = [f"  {name:<28}{seconds:8.2f} s" for name, seconds in self.seconds.items()]
        return "\n".join([*rows, f"  {'total (Blender half)':<28}{sum(self.seconds.values()):8.2f} s"])


# -- the scene ---------------------------------------------------------------------------------------------
def skin_material() -> bpy.types.Material:
    material = bpy.data.materials.new("demo skin")
    material.diffuse_color = SKIN  # what Workbench shows
    material.use_nodes = True
    shader = material.node_tree.nodes.get("Principled BSDF")
    shader.inputs["Base Color"].default_value = SKIN
    shader.inputs["Roughness"].default_value = 0.55
    return material


def add_character(scene: bpy.types.Scene, name: str, neutral: np.ndarray, faces: np.ndarray, deltas: np.ndarray,
                  key_names: list[str], x: float) -> bpy.types.Object:
    """A mesh with a Basis and one ARKit-named shape key per delta, standing at ``x`` metres."""
    from jambatalk_blender import compat

    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(neutral.tolist(), [], [tuple(int(i) for i in f if i >= 0) for f in faces])
    mesh.update()
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    mesh.materials.append(skin_material())
    obj = bpy.data.objects.new(name, mesh)
    # The head's frame is y up, z forward; Blender's is z up: turn the object, not the vertices.
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    obj.location = (x, 0.0, 0.0)
    scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis", from_mix=False)
    for key_name, delta in zip(key_names, deltas, strict=True):
        compat.add_shape_key(obj, key_name, neutral + delta, 0.0, 1.0, 0.0)
    obj.select_set(True)
    return obj


def look_at(location: np.ndarray) -> tuple[float, float, float]:
    """Euler angles that point a light's -Z axis from `location` at the origin."""
    direction = -location / np.linalg.norm(location)
    return (math.acos(-direction[2]), 0.0, math.atan2(-direction[0], direction[1]))


def add_camera_and_lights(scene: bpy.types.Scene) -> None:
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.type = "ORTHO"
    camera.data.ortho_scale = 0.40
    # A three-quarter view a little from the speaker's left: the lips, jaw and chin read in profile and front.
    turn = math.radians(CAMERA_TURN_DEG)
    camera.location = (0.6 * math.sin(turn), -0.6 * math.cos(turn), -0.02)
    camera.rotation_euler = (math.pi / 2, 0.0, turn)
    scene.collection.objects.link(camera)
    scene.camera = camera
    for name, energy, location in (("key", 7.0, (0.45, -0.35, 0.30)), ("fill", 3.0, (-0.45, -0.40, 0.0)),
                                   ("rim", 4.0, (0.0, 0.45, 0.35))):
        light = bpy.data.objects.new(name, bpy.data.lights.new(name, "AREA"))
        light.data.energy = energy
        light.data.size = 0.3
        light.location = location
        light.rotation_euler = look_at(np.asarray(location, dtype=float))
        scene.collection.objects.link(light)
    world = bpy.data.worlds.new("demo world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.06, 0.07, 0.09, 1.0)
    scene.world = world


def build_scene(take: Path, truth: dict) -> tuple[bpy.types.Scene, list[bpy.types.Object], list[dict]]:
    """The scene: both characters (the first active), camera and lights, the take as a sound strip."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)  # keeps the enabled add-on
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    scene.frame_start, scene.frame_end = 1, int(truth["frames"])
    with np.load(take / "demo_characters.npz", allow_pickle=False) as data:
        key_names = [str(n) for n in data["names"]]
        voice = add_character(scene, "voice face", data["a_neutral"], data["a_faces"], data["a_deltas"], key_names,
                              -0.10)
        other = add_character(scene, "second character", data["b_neutral"], data["b_faces"], data["b_deltas"],
                              key_names, 0.11)
        other_marks = {str(k): int(v) for k, v in zip(data["b_landmark_names"], data["b_landmarks"], strict=True)}
    bpy.context.view_layer.objects.active = voice
    add_camera_and_lights(scene)
    from jambatalk_blender import compat

    compat.new_sound_strip(scene, STRIP, str(take / "demo.wav"), channel=1, frame_start=1)
    return scene, [voice, other], [truth["landmarks"], other_marks]


# -- the add-on --------------------------------------------------------------------------------------------
def enable_addon(worker_python: str, checkpoint: Path) -> None:
    module = addon_utils.enable(ADDON, default_set=True, handle_error=None)
    if module is None:
        raise RuntimeError("The JambaTalk add-on failed to enable.")
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.worker_mode = "LOCAL"
    prefs.worker_python = worker_python
    prefs.worker_root = str(REPO)
    prefs.checkpoint = str(checkpoint)
    prefs.device = "cpu"


def bake(scene: bpy.types.Scene) -> None:
    settings = scene.jambatalk
    settings.source = "STRIP"
    settings.strip_name = STRIP
    settings.output_mode = "CHARACTER"
    settings.drive_selected = True
    settings.life_enabled = True
    if bpy.ops.jambatalk.animate_from_audio() != {"FINISHED"}:
        raise RuntimeError("The bake did not finish (see the message above).")
    print("[demo] " + bpy.context.window_manager.jambatalk_stage.replace("\n", "\n[demo] "), flush=True)


def measured_curves(scene: bpy.types.Scene, head: bpy.types.Object, truth: dict,
                    marks: dict) -> dict[str, np.ndarray]:
    """Jaw opening and lip gap (mm) of the evaluated mesh at every frame of the take, as the truth measures them."""
    from jambatalk_blender import compat

    neutral = compat.neutral_coordinates(head)
    rest = float(np.linalg.norm(neutral[marks["chin"]] - neutral[marks["nose_tip"]]))
    jaw, gap = [], []
    for k in range(int(truth["frames"])):
        scene.frame_set(scene.frame_start + k)
        co = compat.evaluated_coordinates(head)
        jaw.append((np.linalg.norm(co[marks["chin"]] - co[marks["nose_tip"]]) - rest) * 1000.0)
        gap.append((co[marks["lip_upper"], 1] - co[marks["lip_lower"], 1]) * 1000.0)
    return {"jaw_opening_mm": np.asarray(jaw), "lip_gap_mm": np.asarray(gap)}


# -- rendering and the preview -----------------------------------------------------------------------------
def use_cycles(scene: bpy.types.Scene, size: int, samples: int) -> None:
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 2
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False


def still_frames(truth: dict, count: int) -> list[int]:
    """Take frames worth looking at, one per equal slice of the take: alternately a bilabial closure (when the
    slice has one) and the widest jaw opening of the slice."""
    fps, frames = truth["fps"], int(truth["frames"])
    jaw = np.asarray(truth["jaw_opening_mm"])
    closures = [min(frames - 1, round((a + b) / 2 * fps)) for a, b in truth["bilabial_closures"]]
    edges = np.linspace(0, frames, count + 1).round().astype(int)
    chosen = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = [k for k in closures if lo <= k < hi]
        chosen.append(inside[0] if i % 2 == 0 and inside else lo + int(np.argmax(jaw[lo:hi])))
    return chosen


def render_stills(scene: bpy.types.Scene, frames: list[int], out: Path) -> list[Path]:
    use_cycles(scene, size=360, samples=12)
    scene.render.resolution_x = 720  # both characters side by side
    scene.render.image_settings.file_format = "PNG"
    paths = []
    for k in frames:
        scene.frame_set(scene.frame_start + k)
        scene.render.filepath = str(out / f"frame_{k:04d}.png")
        bpy.ops.render.render(write_still=True)
        paths.append(Path(scene.render.filepath))
    return paths


def render_video(blend: Path, path: Path, engine: str) -> None:
    """An MP4 (H.264 + AAC from the sound strip) of the whole take, rendered from the saved .blend. Workbench
    (OpenGL through EGL) is about 10x faster than Cycles here and has no noise; Cycles is the fallback."""
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    if engine == "CYCLES":
        use_cycles(scene, size=240, samples=4)
    else:
        scene.render.engine = "BLENDER_WORKBENCH"
        scene.display.shading.light = "STUDIO"
        scene.display.shading.color_type = "MATERIAL"
        scene.display.shading.show_backface_culling = True  # the open mouth shows dark, not the inside of the head
        scene.render.resolution_x, scene.render.resolution_y = 720, 360
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # 5.0 moved video out of file_format
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    scene.render.ffmpeg.format = "MPEG4"
    scene.render.ffmpeg.codec = "H264"
    scene.render.ffmpeg.audio_codec = "AAC"
    scene.render.filepath = str(path.with_suffix(""))
    bpy.ops.render.render(animation=True)
    written = sorted(path.parent.glob(path.stem + "*.mp4"), key=lambda p: p.stat().st_mtime)
    if written and written[-1] != path:
        written[-1].replace(path)  # Blender appends the frame range to the name


def video_in_subprocess(blend: Path, path: Path) -> str:
    """Render the MP4 in a child process (VIDEO_ATTEMPTS in turn): an OpenGL crash there (seen now and then with
    EGL on a headless machine) must cost neither the outputs already made nor the video."""
    problems = []
    for engine in VIDEO_ATTEMPTS:
        for partial in path.parent.glob(path.stem + "*.mp4"):
            partial.unlink()
        done = subprocess.run([sys.executable, __file__, "--video-from", str(blend), "--video-out", str(path),
                               "--video-engine", engine], capture_output=True, text=True, timeout=900)
        if done.returncode == 0 and path.is_file() and path.stat().st_size > 1024:
            return ""
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip() and "EGL" not in line]
        problems.append(f"{engine} exited with {done.returncode}" + (f" ({lines[-1].strip()})" if lines else ""))
        print(f"[demo] video with {engine} failed: {problems[-1]}", flush=True)
    for partial in path.parent.glob(path.stem + "*.mp4"):
        partial.unlink()
    return "no video: " + "; ".join(problems)


def compose_preview(stills: list[Path], frames: list[int], truth: dict, measured: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fps = truth["fps"]
    seconds = np.arange(int(truth["frames"])) / fps
    cols = (len(stills) + 1) // 2 if len(stills) > 3 else len(stills)  # two rows of wide stills
    still_rows = (len(stills) + cols - 1) // cols
    figure = plt.figure(figsize=(13, 2.3 * still_rows + 4.6), dpi=100)
    grid = figure.add_gridspec(still_rows + 2, cols, height_ratios=[1.3] * still_rows + [1, 1], hspace=0.35,
                               wspace=0.04)
    for i, (still, k) in enumerate(zip(stills, frames, strict=True)):
        ax = figure.add_subplot(grid[i // cols, i % cols])
        ax.imshow(plt.imread(still))
        ax.set_axis_off()
        phone = next((p["symbol"] for p in truth["phones"] if p["start"] <= k / fps < p["end"]), "")
        ax.set_title(f"{k / fps:.2f} s  /{phone}/", fontsize=10)
    for row, (key, label) in enumerate((("jaw_opening_mm", "jaw opening (mm)"), ("lip_gap_mm", "lip gap (mm)")),
                                       start=still_rows):
        ax = figure.add_subplot(grid[row, :])
        for a, b in truth["bilabial_closures"]:
            ax.axvspan(a, b, color="#f3c64c", alpha=0.35, lw=0)
        ax.plot(seconds, truth[key], color="#444444", lw=1.6, label=truth.get("truth_label", "truth"))
        ax.plot(seconds, measured[0][key], color="#d1495b", lw=1.6, label="the voice's face (left), baked")
        ax.plot(seconds, measured[1][key], color="#2e7d32", lw=1.2, ls="-.",
                label="second character (right), same bake by key names")
        for k in frames:
            ax.axvline(k / fps, color="#2e86ab", lw=0.8, ls="--")
        ax.set_ylabel(label)
        ax.set_xlim(0, seconds[-1])
        ax.grid(alpha=0.25)
        if row == still_rows:
            ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
        else:
            ax.set_xlabel("seconds (yellow: p / b / m closures)")
    r = float(np.corrcoef(truth["jaw_opening_mm"], measured[0]["jaw_opening_mm"])[0, 1])
    what = truth.get("title", f"an unseen speaker ({truth['speaker']}), a new sentence")
    figure.suptitle(f"Audio in, animation out: {what}, jaw correlation {r:.2f}", fontsize=12)
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)


# -- main --------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description="The demo's Blender half (real bpy).")
    parser.add_argument("--video-from", help=argparse.SUPPRESS)  # internal: the MP4 child process
    parser.add_argument("--video-out", help=argparse.SUPPRESS)
    parser.add_argument("--video-engine", default=VIDEO_ATTEMPTS[0], choices=sorted(set(VIDEO_ATTEMPTS)),
                        help=argparse.SUPPRESS)
    parser.add_argument("--take", help="folder with demo.wav, demo_head.obj, demo_truth.json")
    parser.add_argument("--checkpoint", help="the demo model (.safetensors)")
    parser.add_argument("--worker-python", help="Python of the worker environment (with torch)")
    parser.add_argument("--stills", type=int, default=6, help="frames in the preview strip (default 6)")
    parser.add_argument("--no-video", action="store_true", help="skip the MP4")
    args = parser.parse_args()
    if args.video_from:
        render_video(Path(args.video_from), Path(args.video_out), args.video_engine)
        return 0
    if not (args.take and args.checkpoint and args.worker_python):
        parser.error("--take, --checkpoint and --worker-python are required")
    take = Path(args.take).resolve()
    truth = json.loads((take / "demo_truth.json").read_text(encoding="utf-8"))
    stages = Stages()
    made: dict[str, Path] = {}
    with stages.stage("enable add-on, build scene"):
        enable_addon(args.worker_python, Path(args.checkpoint).resolve())
        scene, characters, marks = build_scene(take, truth)
        head = characters[0]
    try:
        with stages.stage("bake (worker start + animate)"):
            bake(scene)
        with stages.stage("save .blend"):
            made["blend"] = take / "demo.blend"
            bpy.ops.wm.save_as_mainfile(filepath=str(made["blend"]))
        exports = (("fbx", "demo.fbx", "FBX", bpy.ops.jambatalk.export_fbx),
                   ("abc", "demo.abc", "Alembic", bpy.ops.jambatalk.export_alembic),
                   ("glb", "demo.glb", "glTF", bpy.ops.jambatalk.export_gltf),
                   ("csv", "demo_live_link.csv", "Live Link CSV", bpy.ops.jambatalk.export_live_link))
        for key, file_name, label, export in exports:  # through the extension's own operators
            with stages.stage(f"export {label}"):
                made[key] = take / file_name
                export(filepath=str(made[key]))
        with stages.stage("measure the baked curves"):
            measured = [measured_curves(scene, obj, truth, m) for obj, m in zip(characters, marks, strict=True)]
        with stages.stage("render stills"):
            frames = still_frames(truth, args.stills)
            stills = render_stills(scene, frames, take)
        with stages.stage("compose preview"):
            made["preview"] = take / "preview.png"
            compose_preview(stills, frames, truth, measured, made["preview"])
    finally:
        addon_utils.disable(ADDON, default_set=True)  # stops the local worker
    if not args.no_video:
        with stages.stage("render MP4 with sound"):
            problem = video_in_subprocess(made["blend"], take / "demo.mp4")
        if problem:
            print(f"[demo] {problem}")
        else:
            made["video"] = take / "demo.mp4"
    key = head.data.shape_keys
    keys = [kb.name for kb in key.key_blocks[1:]] if key else []
    action = key.animation_data.action.name if key and key.animation_data and key.animation_data.action else "-"
    r = float(np.corrcoef(truth["jaw_opening_mm"], measured[0]["jaw_opening_mm"])[0, 1])
    r_second = float(np.corrcoef(truth["jaw_opening_mm"], measured[1]["jaw_opening_mm"])[0, 1])
    summary = {"outputs": {k: str(v) for k, v in made.items()}, "stages_s": stages.seconds,
               "shape_keys": len(keys), "action": action, "frames": truth["frames"], "jaw_pearson_in_blender": r,
               "jaw_pearson_second_character": r_second,
               "second_character_vertices": len(characters[1].data.vertices)}
    (take / "demo_summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(f"[demo] baked {len(keys)} shape keys ({keys[0] if keys else '-'} ...) in Action '{action}' over "
          f"{truth['frames']} frames; jaw opening vs truth: r = {r:.3f} (second character: {r_second:.3f})")
    print("[demo] stages:\n" + stages.table())
    for kind, path in made.items():
        print(f"[demo] {kind:<8}{path}  ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
