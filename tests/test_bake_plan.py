"""The pure bake (jambatalk_blender/core): takes and their sidecars, the plan from a take, AUTO's mode choice,
the WAV reader the prosody uses. No bpy: the Blender suite checks the same plans written into real scenes."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from jambatalk_blender.core import bake_plan, keyframes, timing
from jambatalk_blender.core.audio import AudioSource, read_wav, source_samples
from jambatalk_blender.core.bake_plan import BakeOptions, ChannelAdjust, PlanError, TargetMesh, plan_bake
from jambatalk_blender.core.job import resolve_mode
from jambatalk_blender.core.life import LifeSettings
from jambatalk_blender.core.names import ARKIT_52, Target
from jambatalk_blender.core.prosody import Prosody
from jambatalk_blender.core.take import Take, TakeError, load_take, save_take

FPS = 30.0


def weights_take(seconds: float = 4.0, seed: int = 0, prosody: bool = False) -> Take:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FPS))[:, None] / FPS
    data = 0.5 + 0.45 * np.sin(2 * np.pi * rng.uniform(0.5, 4, (1, 52)) * t + rng.uniform(0, 6, (1, 52)))
    track = None
    if prosody:
        n = data.shape[0]
        speech = (np.arange(n) % 60) < 45  # 1.5 s phrases, 0.5 s pauses
        track = Prosody(FPS, np.where(speech, -20.0, -70.0).astype(np.float32),
                        np.where(speech, 150.0, np.nan).astype(np.float32), speech)
    return Take("line 1", "weights", data, FPS, first_frame=10.0, channels=ARKIT_52, prosody=track)


def character(name: str = "face", keys=ARKIT_52, slider=(0.0, 1.0)) -> TargetMesh:
    return TargetMesh(name, 100, tuple(keys), {k: slider for k in keys})


def curve_values(curve: bake_plan.CurvePlan, first: float, n: int) -> np.ndarray:
    return keyframes.evaluate_linear(np.rint(curve.frames - first).astype(int), curve.values, n)


def test_gaussian_smoothing_keeps_constants_and_mass():
    flat = np.full((50, 3), 0.7, np.float32)
    np.testing.assert_allclose(bake_plan.gaussian_smooth(flat, 3.0), flat, atol=1e-6)
    impulse = np.zeros((101, 1), np.float32)
    impulse[50] = 1.0
    smoothed = bake_plan.gaussian_smooth(impulse, 2.0)
    assert smoothed.sum() == pytest.approx(1.0, abs=1e-5) and smoothed.max() < 0.25
    np.testing.assert_array_equal(bake_plan.gaussian_smooth(impulse, 0.0), impulse)
    assert bake_plan.gaussian_smooth(np.ones((2, 4)), 30.0).shape == (2, 4)  # a kernel wider than the take


@pytest.mark.parametrize("sigma", [0.7, 3.0, 40.0])
def test_gaussian_smoothing_is_the_workers(sigma):
    from scipy.ndimage import gaussian_filter1d

    data = np.random.default_rng(1).normal(size=(30, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(bake_plan.gaussian_smooth(data, sigma),
                               gaussian_filter1d(data, sigma, axis=0, mode="nearest"), atol=2e-6)


def test_character_plan_follows_strength_adjustments_and_tolerance():
    take = weights_take()
    options = BakeOptions(strength=0.8, adjust={"jawOpen": ChannelAdjust(0.5, 0.1)}, timing_offset_frames=2.5)
    plan = plan_bake(take, [character()], options, 24.0, "JT_line_1_001")
    assert plan.first_frame == 12.5 and plan.n_frames == timing.scene_frame_count(take.n_frames, FPS, 24.0)
    scene = timing.resample_to_scene(take.data * 0.8, FPS, 24.0)
    curves = {c.key: c for c in plan.objects[0].curves}
    assert set(curves) == set(ARKIT_52)
    jaw = curve_values(curves["jawOpen"], plan.first_frame, plan.n_frames)
    want = np.clip(timing.resample_to_scene(take.data[:, [ARKIT_52.index("jawOpen")]] * 0.8 * 0.5 + 0.1, FPS,
                                            24.0)[:, 0], 0, 1)
    assert np.abs(jaw - want).max() <= options.weight_tolerance + 1e-6
    funnel = curve_values(curves["mouthFunnel"], plan.first_frame, plan.n_frames)
    assert np.abs(funnel - np.clip(scene[:, ARKIT_52.index("mouthFunnel")], 0, 1)).max() <= 0.002 + 1e-6
    assert plan.keyframes < 52 * plan.n_frames  # the reduction kept fewer keys than frames


def test_keys_driven_by_several_channels_sum_and_clip_to_their_slider_range():
    take = weights_take()
    mapping = {"jawOpen": (Target("mouthOpen"),), "mouthClose": (Target("mouthOpen", -0.5),)}
    target = TargetMesh("rig", 100, ("mouthOpen",), {"mouthOpen": (0.0, 0.6)})
    plan = plan_bake(take, [target], BakeOptions(mapping=mapping), FPS, "JT_x_001")
    (curve,) = plan.objects[0].curves
    got = curve_values(curve, plan.first_frame, plan.n_frames)
    raw = take.data[:, ARKIT_52.index("jawOpen")] - 0.5 * take.data[:, ARKIT_52.index("mouthClose")]
    assert np.abs(got - np.clip(raw, 0.0, 0.6)).max() <= 0.002 + 1e-6
    assert got.max() <= 0.6 + 1e-6


def test_life_layer_owns_the_upper_face_channels_it_drives():
    take = weights_take(20.0, prosody=True)
    plan = plan_bake(take, [character()], BakeOptions(life=LifeSettings(seed=1)), FPS, "JT_life_001")
    mouth = {c.key for c in plan.objects[0].curves}
    life = {c.key for c in plan.objects[0].life_curves}
    assert {"eyeBlinkLeft", "eyeBlinkRight", "browInnerUp"} <= life and not (mouth & life)
    assert "jawOpen" in mouth and len(plan.life.blinks) >= 3
    again = plan_bake(take, [character()], BakeOptions(life=LifeSettings(seed=1)), FPS, "JT_life_001")
    assert all(np.array_equal(a.values, b.values) for a, b in zip(plan.objects[0].life_curves,
                                                                 again.objects[0].life_curves, strict=True))
    no_life = plan_bake(take, [character()], BakeOptions(), FPS, "JT_life_002")
    assert "eyeBlinkLeft" in {c.key for c in no_life.objects[0].curves}  # the model's own channel, life off


def test_other_objects_get_only_their_keys_and_the_active_one_must_match():
    take = weights_take()
    teeth = character("teeth", ["Jaw_Open", "Tongue_Out"])
    plan = plan_bake(take, [character(), teeth, character("hat", ["brim"])], BakeOptions(), FPS, "JT_t_001")
    assert [o.object_name for o in plan.objects] == ["face", "teeth"]
    assert {c.key for c in plan.objects[1].curves} == {"Jaw_Open", "Tongue_Out"}
    assert any("hat" in n and "left alone" in n for n in plan.notes)
    with pytest.raises(PlanError, match="mapping"):
        plan_bake(take, [character("blob", ["squash"])], BakeOptions(), FPS, "JT_t_002")


def test_modes_refuse_the_wrong_take_with_a_sentence():
    take = weights_take()
    with pytest.raises(PlanError, match="blendshape weights"):
        plan_bake(take, [character()], BakeOptions(mode="MESH_CACHE"), FPS, "JT_x_001")
    vertices = Take("v", "vertices", np.zeros((10, 100, 3), np.float32), FPS, 1.0)
    with pytest.raises(PlanError, match="vertex offsets"):
        plan_bake(vertices, [character()], BakeOptions(mode="CHARACTER"), FPS, "JT_x_001")
    with pytest.raises(PlanError, match="has 7 vertices"):
        plan_bake(vertices, [TargetMesh("small", 7)], BakeOptions(mode="SHAPE_KEYS"), FPS, "JT_x_001")
    with pytest.raises(PlanError, match="Unknown output mode"):
        BakeOptions(mode="FLIPBOOK")


def test_editable_basis_and_mesh_cache_plans_reproduce_the_offsets():
    rng = np.random.default_rng(2)
    t = np.arange(60)[:, None] / FPS
    fields = rng.normal(0, 2e-3, (2, 40 * 3))
    offsets = (np.hstack([np.sin(7 * t), np.cos(3 * t)]) @ fields).reshape(60, 40, 3).astype(np.float32)
    take = Take("v", "vertices", offsets, FPS, 1.0)
    basis = plan_bake(take, [TargetMesh("head", 40)], BakeOptions(mode="SHAPE_KEYS", strength=2.0), FPS, "JT_v_001")
    new = basis.objects[0].new_keys
    assert new.names == tuple(f"JT_v_001_{k:02d}" for k in range(len(new.names)))
    weights = np.stack([curve_values(c, 1.0, 60) for c in basis.objects[0].curves], axis=1)
    rebuilt = np.einsum("fk,kvc->fvc", weights, new.shapes)
    assert np.abs(rebuilt - 2.0 * offsets).max() < 3e-4  # strength 2 doubles the decomposition's tolerance
    assert (new.slider_max >= weights.max(axis=0) - 1e-6).all()
    cache = plan_bake(take, [TargetMesh("head", 40)], BakeOptions(mode="MESH_CACHE", smoothing_s=0.0), FPS, "JT")
    np.testing.assert_array_equal(cache.objects[0].mesh_cache, offsets)


def test_take_sidecar_round_trip_and_damage(tmp_path):
    take = weights_take(prosody=True)
    path = save_take(take, tmp_path / "jambatalk" / "line_1.npz")
    back = load_take(path)
    assert (back.name, back.kind, back.fps, back.first_frame, back.channels) == \
        (take.name, take.kind, take.fps, take.first_frame, take.channels)
    np.testing.assert_array_equal(back.data, take.data)
    np.testing.assert_array_equal(back.prosody.speech, take.prosody.speech)
    assert list(tmp_path.joinpath("jambatalk").iterdir()) == [tmp_path / "jambatalk" / "line_1.npz"]  # no temp
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(TakeError, match="damaged"):
        load_take(tmp_path / "bad.npz")
    np.savez(tmp_path / "pickled.npz", header=np.array([{"evil": 1}], dtype=object), data=np.zeros((2, 2)))
    with pytest.raises(TakeError):
        load_take(tmp_path / "pickled.npz")  # object arrays would need pickle: refused
    with pytest.raises(TakeError, match="cannot be read"):
        load_take(tmp_path / "missing.npz")


def test_auto_mode_picks_what_the_model_and_mesh_allow():
    arkit = {"output_kind": "blendshapes", "channels": list(ARKIT_52), "vertex_count": 4924}
    vertex = {"output_kind": "vertices", "channels": [], "vertex_count": 5023}
    assert resolve_mode("AUTO", arkit, ("Jaw_Open", "Mouth_Close"), 900) == "CHARACTER"
    assert resolve_mode("AUTO", arkit, (), 4924) == "SHAPE_KEYS"  # the model's own head, no keys yet
    assert resolve_mode("AUTO", arkit, ("blob",), 900) == "CHARACTER"  # its plan explains the missing keys
    assert resolve_mode("AUTO", vertex, ("jawOpen",), 5023) == "SHAPE_KEYS"
    assert resolve_mode("SOLVE", vertex, (), 5023) == "SOLVE"


def _wav_bytes(samples: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        scale = {2: 32767, 4: 2**31 - 1}[width]
        w.writeframes((np.clip(samples, -1, 1) * scale).astype(f"<i{width}").tobytes())
    return buffer.getvalue()


def test_wav_reader_and_the_take_window():
    rate = 8000
    stereo = np.stack([np.linspace(-0.5, 0.5, rate * 2), np.zeros(rate * 2)], axis=1).ravel()
    data = _wav_bytes(stereo, rate, channels=2)
    samples, got_rate = read_wav(data)
    assert got_rate == rate and samples.shape == (rate * 2,)
    np.testing.assert_allclose(samples, np.linspace(-0.25, 0.25, rate * 2), atol=1e-4)
    window = source_samples(AudioSource(data, 0.5, 1.5, 1.0, "x"))
    assert window[0].shape == (rate,) and window[1] == rate
    assert source_samples(AudioSource(b"fLaC not a wav", 0.0, None, 1.0, "x")) is None  # no decoder: no prosody
    decoded = source_samples(AudioSource(b"OggS", 0.0, None, 1.0, "x"),
                             decoder=lambda data, path: (np.ones(rate, np.float32), rate))
    assert decoded[0].shape == (rate,)
    _, rate32 = read_wav(_wav_bytes(np.zeros(100), 16000, width=4))
    assert rate32 == 16000
