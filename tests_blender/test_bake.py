"""Animate from audio, end to end with a real worker: shape keys and mesh cache, timing at several frame rates,
repeated bakes, errors, cancel."""

from __future__ import annotations

import ctypes

import bpy
import numpy as np
import pytest
from conftest import VERTICES, grid_coordinates, make_head, needs_audio, write_wav

from jambatalk_blender import audio_source, bake_apply, bpy_writers, compat
from jambatalk_blender.bpy_writers import BakeError
from jambatalk_blender.core import bake_plan, keyframes, timing
from jambatalk_blender.core.job import BakeJob, JobRequest, WorkerConfig
from jambatalk_blender.core.take import Take


def add_strip(scene, wav, frame_start=10, trim_start=7, trim_end=5, sound_offset=0.0):
    strip = compat.new_sound_strip(scene, "line01", str(wav), channel=1, frame_start=frame_start)
    strip.frame_offset_start = trim_start
    strip.frame_offset_end = trim_end
    strip.sound_offset = sound_offset
    return strip


def request(obj, mode="SHAPE_KEYS", take_name="", model=None) -> JobRequest:
    return JobRequest(mode=mode, take_name=take_name, model=model, vertex_count=len(obj.data.vertices),
                      key_names=bake_apply.user_key_names(obj))


def run_job(ops_module, scene, obj, source, mode="SHAPE_KEYS", take_name="", model=None, config=None,
            **settings) -> BakeJob:
    """A job through the worker, then the bake with the scene's settings (``settings`` set on scene.jambatalk)."""
    for name, value in settings.items():
        setattr(scene.jambatalk, name, value)
    job = BakeJob(ops_module.MANAGER, config or _config(), source, request(obj, mode, take_name, model)).start()
    status = job.wait(timeout=120)
    assert status.state == "done", status.error
    job.info = bake_apply.apply_take(bpy.context, job.take, job.mode, obj)
    return job


def _config():
    from jambatalk_blender.preferences import worker_config
    return worker_config(bpy.context)


def expected_positions(job) -> tuple[np.ndarray, np.ndarray]:
    """(scene frames, template + worker offsets resampled to the scene rate) the bake must reproduce."""
    scene_fps = job.info["scene_fps"]
    offsets = timing.resample_to_scene(job.take.data, job.take.fps, scene_fps)
    frames = timing.scene_frames(job.info["first_frame"], offsets.shape[0])
    return frames, grid_coordinates()[None] + offsets


def check_frames(scene, obj, job, bound: float, samples: int = 7) -> float:
    frames, positions = expected_positions(job)
    integral = [j for j in range(len(frames)) if float(frames[j]).is_integer()]
    assert integral, "no take frame falls on a whole scene frame"
    picks = [integral[i] for i in np.linspace(0, len(integral) - 1, min(samples, len(integral))).astype(int)]
    worst = 0.0
    for j in picks:
        scene.frame_set(int(frames[j]))
        got = compat.evaluated_coordinates(obj)
        worst = max(worst, float(np.linalg.norm(got - positions[j], axis=1).max()))
    assert worst <= bound, (worst, bound)
    return worst


@needs_audio
def test_remote_worker_sends_float16_and_the_bake_matches_the_local_one(scene, ops_module, wav_path):
    obj = make_head()
    source = audio_source.from_strip(scene, add_strip(scene, wav_path))
    local = run_job(ops_module, scene, obj, source, take_name="local")
    assert local.take.data.dtype == np.float32
    client = ops_module.MANAGER.local.client  # the same worker, reached as a remote one: URL + token, no file handoff
    remote = WorkerConfig(mode="REMOTE", url=client.url, token=client.token)
    job = run_job(ops_module, scene, obj, source, take_name="remote", config=remote)
    assert job.take.data.dtype == np.float32  # widened on the job's thread
    scale = float(np.abs(local.take.data).max())
    assert not np.array_equal(job.take.data, local.take.data)  # it really travelled as float16 ...
    np.testing.assert_allclose(job.take.data, local.take.data, atol=1e-3 * scale)  # ... at float16's precision
    assert job.info["action"] == "JT_remote_001"


@needs_audio
@pytest.mark.parametrize("fps,fps_base", [(24, 1.0), (25, 1.0), (30, 1.0), (60, 1.0), (30, 1.001)])
def test_shape_keys_reproduce_worker_offsets_at_scene_fps(scene, ops_module, wav_path, fps, fps_base):
    scene.render.fps, scene.render.fps_base = fps, fps_base
    obj = make_head()
    strip = add_strip(scene, wav_path)
    source = audio_source.from_strip(scene, strip)
    eff = fps / fps_base
    t0 = (strip.frame_final_start - strip.frame_start) / eff
    assert source.start_s == pytest.approx(t0)
    assert source.end_s == pytest.approx(t0 + strip.frame_final_duration / eff)
    assert source.first_frame == strip.frame_final_start
    job = run_job(ops_module, scene, obj, source, take_name="t", timing_offset=2)
    info = job.info
    assert info["first_frame"] == strip.frame_final_start + 2
    assert info["scene_fps"] == pytest.approx(eff)
    expected_frames = timing.scene_frame_count(job.take.n_frames, job.take.fps, eff)
    key = obj.data.shape_keys
    assert key.animation_data.action.name == info["action"] == "JT_t_001"
    fcurves = compat.action_fcurves(key.animation_data.action)
    assert len(fcurves) == info["n_keys"]
    assert min(fc.range()[0] for fc in fcurves) == pytest.approx(info["first_frame"])
    assert max(fc.range()[1] for fc in fcurves) == pytest.approx(info["first_frame"] + expected_frames - 1)
    assert all(kp.interpolation == "LINEAR" for fc in fcurves for kp in fc.keyframe_points)
    bound = info["error_max_m"] + info["tolerance_m"] + 2e-6
    check_frames(scene, obj, job, bound)
    assert abs(job.take.data).max() > 1e-3  # the test would be vacuous on a still face


@needs_audio
@pytest.mark.parametrize("fps,fps_base", [(24, 1.0), (30, 1.001)])
def test_mesh_cache_reproduces_worker_offsets(scene, ops_module, wav_path, tmp_path, fps, fps_base):
    scene.render.fps, scene.render.fps_base = fps, fps_base
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    obj = make_head()
    strip = add_strip(scene, wav_path)
    job = run_job(ops_module, scene, obj, audio_source.from_strip(scene, strip), take_name="cache take",
                  mode="MESH_CACHE")
    assert job.info["filepath"] == "//jambatalk/cache_take.pc2"
    assert (tmp_path / "jambatalk" / "cache_take.pc2").is_file()
    mod = obj.modifiers["JambaTalk Cache"]
    assert (mod.type, mod.cache_format, mod.play_mode, mod.time_mode, mod.interpolation) == \
        ("MESH_CACHE", "PC2", "SCENE", "FRAME", "LINEAR")
    check_frames(scene, obj, job, 1e-5)


def test_audio_file_source_and_user_shape_keys_untouched(scene, ops_module, wav_path):
    obj = make_head()
    basis = obj.shape_key_add(name="Basis", from_mix=False)
    smile = obj.shape_key_add(name="smile", from_mix=False)
    smile_co = compat.key_block_coordinates(smile) + 0.001
    compat.set_key_block_coordinates(smile, smile_co)
    smile.value = 0.0
    job = run_job(ops_module, scene, obj, audio_source.from_file(str(wav_path), 5), take_name="file")
    assert job.info["first_frame"] == 5
    assert np.array_equal(compat.key_block_coordinates(smile), smile_co.astype(np.float32))
    assert smile.value == 0.0 and obj.data.shape_keys.reference_key == basis
    check_frames(scene, obj, job, job.info["error_max_m"] + job.info["tolerance_m"] + 2e-6)


@needs_audio
def test_operator_bakes_and_second_bake_keeps_the_first_action(scene, wav_path):
    obj = make_head()
    strip = add_strip(scene, wav_path)
    scene.jambatalk.strip_name = strip.name
    scene.jambatalk.take_name = "dialog"
    assert bpy.ops.jambatalk.animate_from_audio() == {"FINISHED"}
    first = bpy.data.actions["JT_dialog_001"]
    first_keys = [kb.name for kb in obj.data.shape_keys.key_blocks if kb.name.startswith("JT_dialog_001_")]
    assert first_keys and first.use_fake_user
    assert bpy.ops.jambatalk.animate_from_audio("INVOKE_DEFAULT") == {"FINISHED"}  # headless: runs execute()
    second = obj.data.shape_keys.animation_data.action
    assert second.name == "JT_dialog_002"
    assert "JT_dialog_001" in bpy.data.actions and first.use_fake_user
    names = {kb.name for kb in obj.data.shape_keys.key_blocks}
    assert set(first_keys) <= names  # the first take's keys (its Action's targets) survive
    assert all(obj.data.shape_keys.key_blocks[n].value == 0.0 for n in first_keys)
    assert bpy.context.window_manager.jambatalk_running is False


def test_wrong_vertex_count_gives_a_clear_message(scene, wav_path):
    obj = make_head(nx=7)  # 56 vertices
    scene.jambatalk.source = "FILE"
    scene.jambatalk.audio_file = str(wav_path)
    with pytest.raises(RuntimeError, match=f"This mesh has 56 vertices; the model animates {VERTICES}"):
        bpy.ops.jambatalk.animate_from_audio()
    assert obj.data.shape_keys is None and len(bpy.data.actions) == 0


def test_mesh_cache_needs_a_saved_blend(scene, wav_path):
    make_head()
    scene.jambatalk.source = "FILE"
    scene.jambatalk.audio_file = str(wav_path)
    scene.jambatalk.output_mode = "MESH_CACHE"
    assert bpy.data.filepath == ""
    with pytest.raises(RuntimeError, match="Save the .blend file first"):
        bpy.ops.jambatalk.animate_from_audio()


def test_cancel_writes_nothing_and_the_worker_stays_usable(scene, ops_module, tmp_path):
    obj = make_head()
    long_wav = write_wav(tmp_path / "long.wav", 40.0, seed=3)
    source = audio_source.from_file(str(long_wav), 1)
    job = BakeJob(ops_module.MANAGER, _config(), source, request(obj)).start()
    job.cancel()
    assert job.poll().state == "cancelled"
    final = job.join(timeout=60)
    assert final.state == "cancelled" and "cancelled" in final.error
    with pytest.raises(BakeError, match="no result"):
        bake_apply.apply_take(bpy.context, job.take, job.mode, obj)
    assert obj.data.shape_keys is None
    # A job cancelled while the worker runs it: the worker is told (DELETE) and keeps serving.
    job = BakeJob(ops_module.MANAGER, _config(), source, request(obj)).start()
    while job.poll().state == "starting" or job.poll().stage in ("connecting to the worker",):
        pass
    job.cancel()
    assert job.join(timeout=60).state == "cancelled"
    health = ops_module.MANAGER.client(_config()).health()
    assert health["models"][0]["state"] == "ready"


def test_packed_sound_is_read_from_the_blend(scene, tmp_path):
    if not bpy.app.build_options.audaspace:
        pytest.skip("no audaspace")
    wav = write_wav(tmp_path / "packed.wav", 1.0)
    strip = compat.new_sound_strip(scene, "packed", str(wav), frame_start=3)
    strip.sound.pack()
    wav.unlink()
    source = audio_source.from_strip(scene, strip)
    assert source.path is None and source.data[:4] == b"RIFF"


def c_output(capfd) -> str:
    """What Blender's C code printed since the last read (its warnings go to a buffered C stdout)."""
    ctypes.CDLL(None).fflush(None)
    captured = capfd.readouterr()
    return captured.out + captured.err


def test_plan_writer_stores_every_key_exactly_and_quietly(capfd):
    """write_plan alone (no worker): each planned curve's keys land as given, LINEAR, on the Key's Action, and
    Blender prints no RNA warning (reading a new Action's unset id_root printed one on 4.2)."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    obj = make_head()
    frames = np.linspace(0.0, 2.0 * np.pi, 40)
    bumps = np.stack([np.sin(frames), np.cos(3 * frames)], axis=1)  # (F, 2) weights of two smooth fields
    fields = np.random.default_rng(3).normal(0.0, 2e-3, (2, VERTICES * 3))
    take = Take("quiet", "vertices", (bumps @ fields).reshape(-1, VERTICES, 3), fps=24.0, first_frame=5.0)
    options = bake_plan.BakeOptions(mode="SHAPE_KEYS", tolerance_m=1e-5, variance_target=1.0, max_keys=2)
    plan = bake_plan.plan_bake(take, [bake_apply.target_mesh(obj)], options, 24.0, "JT_quiet_001")
    capfd.readouterr()
    info = bpy_writers.write_plan(plan, [obj])
    assert "id_root" not in c_output(capfd)
    action = obj.data.shape_keys.animation_data.action
    if "id_root" in action.bl_rna.properties:  # gone in 5.0 (slotted Actions)
        assert action.id_root == "KEY"
    by_path = {fc.data_path: fc for fc in compat.action_fcurves(action)}
    curves = plan.objects[0].curves
    assert info["keyframes"] == sum(c.frames.size for c in curves) == sum(len(fc.keyframe_points)
                                                                          for fc in by_path.values())
    for name, curve in zip(info["keys"], curves, strict=True):
        points = by_path[f'key_blocks["{name}"].value'].keyframe_points
        co = np.empty(2 * len(points), dtype=np.float32)
        points.foreach_get("co", co)
        assert np.array_equal(co[0::2], curve.frames.astype(np.float32)) and np.array_equal(co[1::2], curve.values)
        assert all(p.interpolation == "LINEAR" for p in points)
    assert keyframes.DEFAULT_TOLERANCE_M > 0


def test_worker_config_repr_hides_the_token():
    secret = "s3cret-token-0123456789"
    config = WorkerConfig(mode="REMOTE", url="http://127.0.0.1:1", token=secret)
    assert secret not in repr(config) and config.token == secret
