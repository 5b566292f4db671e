"""Drive the animator's own character: ARKit weights onto its shape keys by name (several objects, several
conventions, a mapping file), the life layer on its own NLA track, Re-bake without the worker (equal to a fresh
bake, edits kept), the take's sidecar across save and reload, a solve onto a mesh's keys, glTF / FBX / Live Link
exports re-imported and compared."""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest
from conftest import VERTICES, make_head, write_wav

from jambatalk_blender import bake_apply, bpy_writers, compat, exporters
from jambatalk_blender.core import livelink, names, timing

ARKIT = names.ARKIT_52
CC4 = {"jawOpen": "Jaw_Open", "mouthClose": "Mouth_Close", "eyeLookDownLeft": "Eye_L_Look_Down"}  # CC4 Extended


def add_keys(obj, key_names, seed: int = 0, slider=(0.0, 1.0)) -> None:
    """A Basis and one shape key per name, each moving the grid a little (random, seeded)."""
    rng = np.random.default_rng(seed)
    basis = obj.shape_key_add(name="Basis", from_mix=False)
    neutral = compat.key_block_coordinates(basis)
    for name in key_names:
        kb = obj.shape_key_add(name=name, from_mix=False)
        compat.set_key_block_coordinates(kb, neutral + rng.normal(0.0, 0.002, neutral.shape))
        kb.slider_min, kb.slider_max = slider
        kb.value = 0.0


def character(name="face", key_names=ARKIT, active=True, seed=0):
    obj = make_head(name, active=active)
    add_keys(obj, key_names, seed)
    obj.select_set(True)
    return obj


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("long") / "line10.wav", 10.0, seed=5)


def animate(scene, wav, take="line", mode="CHARACTER", life=False, **settings) -> None:
    s = scene.jambatalk
    s.source, s.audio_file, s.file_start_frame = "FILE", str(wav), 1
    s.model, s.output_mode, s.take_name, s.life_enabled = "arkit", mode, take, life
    for key, value in settings.items():
        setattr(s, key, value)
    assert bpy.ops.jambatalk.animate_from_audio() == {"FINISHED"}


def expected_channels(scene, take_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(scene frames, (F, 52) raw weights resampled to the scene rate) of a take."""
    take = bake_apply.TAKES[take_name]
    weights = timing.resample_to_scene(take.data, take.fps, compat.scene_fps(scene))
    return timing.scene_frames(take.first_frame, weights.shape[0]), weights


def key_values(scene, obj, key_names, frames) -> np.ndarray:
    out = np.zeros((len(frames), len(key_names)))
    for i, f in enumerate(frames):
        scene.frame_set(int(f))
        out[i] = [obj.data.shape_keys.key_blocks[k].value for k in key_names]
    return out


def fcurve_arrays(action) -> dict[str, np.ndarray]:
    out = {}
    for fc in compat.action_fcurves(action):
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[fc.data_path] = co
    return out


def test_character_keys_follow_the_weights_on_every_selected_object(scene, long_wav):
    face = character()
    teeth = character("teeth", list(CC4.values()), active=False, seed=1)
    bpy.context.view_layer.objects.active = face
    animate(scene, long_wav, "both")
    frames, weights = expected_channels(scene, "both")
    picks = frames[np.linspace(0, len(frames) - 1, 9).astype(int)]
    rows = np.searchsorted(frames, picks)
    tolerance = scene.jambatalk.weight_tolerance + 1e-6
    got = key_values(scene, face, ARKIT, picks)
    np.testing.assert_allclose(got, np.clip(weights[rows], 0, 1), atol=tolerance)
    assert np.ptp(got[:, ARKIT.index("jawOpen")]) > 0.05  # the test would be vacuous on a still face
    got_teeth = key_values(scene, teeth, list(CC4.values()), picks)
    want_teeth = weights[rows][:, [ARKIT.index(c) for c in CC4]]
    np.testing.assert_allclose(got_teeth, np.clip(want_teeth, 0, 1), atol=tolerance)
    assert face.data.shape_keys.animation_data.action.name == "JT_both_001"
    assert teeth.data.shape_keys.animation_data.action.name == "JT_both_001.teeth"
    assert "Character Creator" in bpy.context.window_manager.jambatalk_stage


def test_multiplier_offset_and_strength_shape_the_curves(scene, long_wav):
    face = character()
    adjust = scene.jambatalk.channel_adjust.add()
    adjust.name, adjust.multiplier, adjust.offset = "jawOpen", 0.5, 0.1
    animate(scene, long_wav, "adj", strength=0.8)
    frames, weights = expected_channels(scene, "adj")
    picks = frames[::17]
    rows = np.searchsorted(frames, picks)
    got = key_values(scene, face, ["jawOpen", "mouthFunnel"], picks)
    # Strength and the channel adjustment act on the model rate before resampling: both linear, so equal here.
    jaw = weights[rows, ARKIT.index("jawOpen")] * 0.8 * 0.5 + 0.1
    funnel = weights[rows, ARKIT.index("mouthFunnel")] * 0.8
    np.testing.assert_allclose(got[:, 0], np.clip(jaw, 0, 1), atol=0.0021)
    np.testing.assert_allclose(got[:, 1], np.clip(funnel, 0, 1), atol=0.0021)


def test_life_layer_lives_on_its_own_track_and_mutes_without_touching_the_lips(scene, long_wav):
    face = character()
    animate(scene, long_wav, "alive", life=True)
    key = face.data.shape_keys
    mouth = key.animation_data.action
    mouth_paths = set(fcurve_arrays(mouth))
    assert 'key_blocks["jawOpen"].value' in mouth_paths
    assert not any("eyeBlink" in p or "eyeLook" in p for p in mouth_paths)
    track = key.animation_data.nla_tracks[bpy_writers.LIFE_TRACK]
    life_action = track.strips[0].action
    assert life_action.name == "JT_alive_001_life"
    life_paths = set(fcurve_arrays(life_action))
    assert {'key_blocks["eyeBlinkLeft"].value', 'key_blocks["eyeBlinkRight"].value'} <= life_paths
    frames = np.arange(int(mouth.frame_range[0]), int(mouth.frame_range[1]) + 1)
    with_life = key_values(scene, face, ["eyeBlinkLeft", "jawOpen"], frames)
    assert with_life[:, 0].max() > 0.5  # at least one full blink in 10 s (26 a minute while talking)
    track.mute = True
    muted = key_values(scene, face, ["eyeBlinkLeft", "jawOpen"], frames)
    assert np.abs(muted[:, 0]).max() == 0.0
    np.testing.assert_array_equal(muted[:, 1], with_life[:, 1])


def test_rebake_rewrites_its_action_and_equals_a_fresh_bake(scene, long_wav):
    face = character()
    animate(scene, long_wav, "re", life=True)
    scene.jambatalk.strength = 0.6
    scene.jambatalk.smoothing_s = 0.05
    scene.jambatalk.life_seed = 3
    assert bpy.ops.jambatalk.rebake() == {"FINISHED"}
    rebaked = face.data.shape_keys.animation_data.action
    assert rebaked.name == "JT_re_001"
    assert not any(a.name == "JT_re_002" for a in bpy.data.actions)
    animate(scene, long_wav, "re", life=True, strength=0.6, smoothing_s=0.05, life_seed=3)  # worker again
    fresh = face.data.shape_keys.animation_data.action
    assert fresh.name == "JT_re_002"
    a, b = fcurve_arrays(bpy.data.actions["JT_re_001"]), fcurve_arrays(fresh)
    assert a.keys() == b.keys() and all(np.array_equal(a[p], b[p]) for p in a)
    la, lb = fcurve_arrays(bpy.data.actions["JT_re_001_life"]), fcurve_arrays(bpy.data.actions["JT_re_002_life"])
    assert la.keys() == lb.keys() and all(np.array_equal(la[p], lb[p]) for p in la)


def test_rebake_keeps_an_action_the_animator_edited(scene, long_wav):
    face = character()
    animate(scene, long_wav, "edit")
    action = face.data.shape_keys.animation_data.action
    fc = next(f for f in compat.action_fcurves(action) if "jawOpen" in f.data_path)
    fc.keyframe_points[3].co.y = 0.77
    edited = fcurve_arrays(action)
    scene.jambatalk.strength = 0.5
    assert bpy.ops.jambatalk.rebake() == {"FINISHED"}
    assert face.data.shape_keys.animation_data.action.name == "JT_edit_002"
    kept = bpy.data.actions["JT_edit_001"]
    assert all(np.array_equal(edited[p], v) for p, v in fcurve_arrays(kept).items())


def test_the_take_survives_save_and_reload(scene, long_wav, tmp_path):
    character()
    animate(scene, long_wav, "unsaved")  # before the .blend has a folder: the take waits in memory
    blend = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    assert (tmp_path / "jambatalk" / "unsaved.npz").is_file()  # written by the save handler
    animate(scene, long_wav, "saved")
    assert (tmp_path / "jambatalk" / "saved.npz").is_file()  # written at once
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    assert bake_apply.TAKES == {}
    face = bpy.data.objects["face"]
    bpy.context.view_layer.objects.active = face
    before = fcurve_arrays(face.data.shape_keys.animation_data.action)
    assert bpy.ops.jambatalk.rebake() == {"FINISHED"}  # from the sidecar: no worker, no audio needed
    after = fcurve_arrays(face.data.shape_keys.animation_data.action)
    assert face.data.shape_keys.animation_data.action.name == "JT_saved_001"
    assert before.keys() == after.keys() and all(np.array_equal(before[p], after[p]) for p in before)


def test_nothing_the_animator_made_is_overwritten(scene, long_wav):
    face = character(key_names=[*ARKIT, "myWink"])
    key = face.data.shape_keys
    wink = key.key_blocks["myWink"]
    wink.value = 0.3
    wink_co = compat.key_block_coordinates(wink).copy()
    jaw_co = compat.key_block_coordinates(key.key_blocks["jawOpen"]).copy()
    own = bpy.data.actions.new("MyFaceAction")
    compat.write_fcurve(compat.fcurves_for(key, own), 'key_blocks["myWink"].value', np.array([1.0, 9.0]),
                        np.array([0.0, 1.0]))
    animate(scene, long_wav, "safe")
    assert "MyFaceAction" in bpy.data.actions and bpy.data.actions["MyFaceAction"].use_fake_user
    assert len(fcurve_arrays(bpy.data.actions["MyFaceAction"])) == 1
    assert np.array_equal(compat.key_block_coordinates(wink), wink_co)
    assert np.array_equal(compat.key_block_coordinates(key.key_blocks["jawOpen"]), jaw_co)
    assert 'key_blocks["myWink"].value' not in fcurve_arrays(key.animation_data.action)


def test_a_mesh_without_matching_keys_gets_one_sentence_and_nothing_is_written(scene, long_wav):
    face = character(key_names=["blob", "squash"])
    with pytest.raises(RuntimeError, match="mapping"):
        animate(scene, long_wav, "none")
    assert face.data.shape_keys.animation_data is None and len(bpy.data.actions) == 0


def test_user_mapping_file_drives_renamed_keys(scene, long_wav, tmp_path):
    face = character(key_names=["MyJaw", "LipsTogether"])
    mapping = tmp_path / "rig.json"
    mapping.write_text(json.dumps({"jawOpen": "MyJaw", "mouthClose": {"key": "LipsTogether", "factor": 0.5}}))
    animate(scene, long_wav, "mapped", mapping_file=str(mapping))
    frames, weights = expected_channels(scene, "mapped")
    picks = frames[::23]
    rows = np.searchsorted(frames, picks)
    got = key_values(scene, face, ["MyJaw", "LipsTogether"], picks)
    np.testing.assert_allclose(got[:, 0], np.clip(weights[rows, ARKIT.index("jawOpen")], 0, 1), atol=0.0021)
    np.testing.assert_allclose(got[:, 1], np.clip(0.5 * weights[rows, ARKIT.index("mouthClose")], 0, 1),
                               atol=0.0021)


def test_solve_onto_a_meshs_own_keys_respects_their_slider_ranges(scene, long_wav):
    face = make_head()
    add_keys(face, [f"expr_{i:02d}" for i in range(6)], seed=4, slider=(-0.5, 0.5))
    s = scene.jambatalk
    s.source, s.audio_file, s.model, s.output_mode, s.take_name = "FILE", str(long_wav), "tiny", "SOLVE", "solved"
    s.life_enabled = False
    assert bpy.ops.jambatalk.animate_from_audio() == {"FINISHED"}
    arrays = fcurve_arrays(face.data.shape_keys.animation_data.action)
    assert len(arrays) == 6
    values = np.concatenate([co[1::2] for co in arrays.values()])
    assert values.min() >= -0.5 - 1e-6 and values.max() <= 0.5 + 1e-6
    assert "mm" in bpy.context.window_manager.jambatalk_stage  # the remaining error is reported


def test_live_link_csv_holds_the_baked_curves(scene, long_wav, tmp_path):
    face = character()
    animate(scene, long_wav, "llf", life=True)
    path = tmp_path / "face.csv"
    assert bpy.ops.jambatalk.export_live_link(filepath=str(path)) == {"FINISHED"}
    channels, values = livelink.parse_live_link_csv(path.read_text())
    lo, hi = exporters.take_frame_range(face)
    frames = np.arange(lo, hi + 1)
    assert values.shape == (len(frames), 52)
    picks = [0, len(frames) // 3, len(frames) - 1]
    want = key_values(scene, face, ["jawOpen", "eyeBlinkLeft"], frames[picks])
    np.testing.assert_allclose(values[picks][:, [channels.index("JawOpen"), channels.index("EyeBlinkLeft")]],
                               want, atol=2e-6)


@pytest.mark.parametrize("fmt", ["glb", "fbx"])
def test_engine_exports_round_trip_the_character_keys(scene, long_wav, tmp_path, fmt):
    scene.render.fps = 30
    face = character()
    animate(scene, long_wav, "engine", life=True)
    lo, hi = face.data.shape_keys.animation_data.action.frame_range
    scene.frame_start, scene.frame_end = int(lo), int(hi)
    picks = [int(lo) + 3, (int(lo) + int(hi)) // 2, int(hi) - 2]
    checked = ["jawOpen", "mouthClose", "eyeBlinkLeft"]
    want = key_values(scene, face, checked, picks)
    path = tmp_path / f"face.{fmt}"
    operator = bpy.ops.jambatalk.export_gltf if fmt == "glb" else bpy.ops.jambatalk.export_fbx
    assert operator(filepath=str(path)) == {"FINISHED"}
    face.name = "source"
    before = set(bpy.data.objects)
    if fmt == "glb":
        bpy.ops.import_scene.gltf(filepath=str(path))
    else:
        bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0)
    imported = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    assert len(imported) == 1
    if fmt == "fbx":  # glTF splits vertices along flat-shaded edges, so only FBX keeps the count
        assert len(imported[0].data.vertices) == VERTICES
    got_names = {kb.name for kb in imported[0].data.shape_keys.key_blocks}
    assert set(ARKIT) <= got_names
    got = key_values(scene, imported[0], checked, picks)
    np.testing.assert_allclose(got, want, atol=2e-3)
