"""The shipped MakeHuman head asset and the head format: names, topology, landmarks, what each target moves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_core.cli import main as cli_main
from model_core.heads import REQUIRED_LANDMARKS, HeadFormatError, load_head, save_head
from model_core.heads.cli import SHIPPED_HEAD
from model_core.heads.identity import DEFAULT_MACRO, MacroSettings, macro_weights, random_identity

ARKIT_52 = {
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight", "tongueOut"}


@pytest.fixture(scope="module")
def head():
    return load_head(SHIPPED_HEAD)


def _gap(head, vertices, upper: str, lower: str) -> float:
    return float(vertices[head.landmarks[upper], 1] - vertices[head.landmarks[lower], 1])


def test_shipped_head_has_the_52_arkit_names_and_a_sound_topology(head):
    assert set(head.blendshape_names) == ARKIT_52 and len(head.blendshape_names) == 52
    assert 4000 < head.vertex_count < 6000
    used = np.unique(head.faces[head.faces >= 0])
    assert used.min() == 0 and used.max() == head.vertex_count - 1 and len(used) == head.vertex_count
    assert set(REQUIRED_LANDMARKS) <= set(head.landmarks)
    assert {"skin", "tongue", "teeth_upper", "teeth_lower", "eye_left", "eye_right"} <= set(head.parts)
    assert head.info["licence"].startswith("CC0")
    assert len(head.identity_names) > 50
    # Metres, y up, face towards +z: a head is about 20 cm tall here and the nose is the front-most point.
    extent = head.neutral.max(axis=0) - head.neutral.min(axis=0)
    assert 0.15 < extent[1] < 0.45 and 0.1 < extent[0] < 0.5
    skin = head.neutral[: head.parts["skin"][1]]
    assert head.neutral[head.landmarks["nose_tip"], 2] > np.percentile(skin[:, 2], 99)


def test_landmarks_are_where_a_face_has_them(head):
    v, m = head.neutral, head.landmarks
    y = {k: v[i, 1] for k, i in m.items()}
    assert y["eye_left_upper"] > y["eye_left_lower"] > y["nose_tip"] > y["lip_upper"] >= y["lip_lower"] > y["chin"]
    assert v[m["eye_left_upper"], 0] > 0 > v[m["eye_right_upper"], 0]  # +x is the subject's left
    assert v[m["mouth_corner_left"], 0] > 0.015 and v[m["mouth_corner_right"], 0] < -0.015
    assert abs(v[m["lip_upper"], 0]) < 1e-5 and abs(v[m["chin"], 0]) < 1e-5
    assert _gap(head, v, "lip_upper", "lip_lower") < 0.002  # the neutral's lips rest together
    assert 0.006 < _gap(head, v, "eye_left_upper", "eye_left_lower") < 0.016


def test_each_target_moves_what_its_name_says(head):
    n = head.neutral
    jaw = head.pose(head.weights_vector({"jawOpen": 1.0}))
    assert jaw[head.landmarks["chin"], 1] - n[head.landmarks["chin"], 1] < -0.015  # the chin drops > 1.5 cm
    assert _gap(head, jaw, "lip_upper", "lip_lower") > 0.02
    shut = head.pose(head.weights_vector({"jawOpen": 1.0, "mouthClose": 1.0}))
    assert abs(_gap(head, shut, "lip_upper", "lip_lower")) < 0.002  # mouthClose closes lips over an open jaw
    blink = head.pose(head.weights_vector({"eyeBlinkLeft": 1.0}))
    assert _gap(head, blink, "eye_left_upper", "eye_left_lower") < 0.002
    assert _gap(head, blink, "eye_right_upper", "eye_right_lower") == pytest.approx(
        _gap(head, n, "eye_right_upper", "eye_right_lower"), abs=1e-6)
    # On the visible face the left blink stays on the left: the Face Units data nudge the right eye's inner
    # corner by about a millimetre (and hidden vertices deep in the skull; z < 75 mm is inside the head).
    moved = np.linalg.norm(head.blendshape("eyeBlinkLeft"), axis=1)
    right_face = (n[:, 0] < -0.005) & (n[:, 2] > 0.075)
    assert moved[right_face].max() < 0.0015 and moved[head.landmarks["eye_left_upper"]] > 0.01
    funnel = head.pose(head.weights_vector({"mouthFunnel": 1.0}))
    assert funnel[head.landmarks["lip_upper"], 2] > n[head.landmarks["lip_upper"], 2]  # lips forward
    smile = head.pose(head.weights_vector({"mouthSmileLeft": 1.0}))
    left, right = head.landmarks["mouth_corner_left"], head.landmarks["mouth_corner_right"]
    assert smile[left, 1] > n[left, 1] and smile[left, 0] > n[left, 0]  # up and out
    # The right corner is only dragged along a little.
    assert np.linalg.norm(smile[right] - n[right]) < 0.2 * np.linalg.norm(smile[left] - n[left])
    tongue = head.blendshape("tongueOut")
    a, b = head.parts["tongue"]
    assert np.abs(tongue[a:b, 2]).max() > 0.01 and np.abs(tongue[: head.parts["skin"][1]]).max() < 0.01


def test_every_arkit_target_moves_something(head):
    for name in head.blendshape_names:
        assert np.abs(head.blendshape(name)).max() > 5e-4, name
        mirror = head.mirror_name(name)
        if mirror:
            d, e = head.blendshape(name), head.blendshape(mirror)
            assert abs(np.abs(d).max() - np.abs(e).max()) < 0.2 * np.abs(d).max(), name


def test_identities_differ_and_keep_the_landmarks_sane(head):
    faces = [head.identity_neutral(random_identity(np.random.default_rng(s), head.identity_names)
                                   .coefficients(head.identity_names)) for s in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(faces[a] - faces[b]).max() > 0.002
    for v in faces:
        assert v[head.landmarks["nose_tip"], 2] > v[head.landmarks["lip_upper"], 2]
        assert abs(_gap(head, v, "lip_upper", "lip_lower")) < 0.004
    zero = random_identity(np.random.default_rng(0), head.identity_names)
    assert zero.coefficients(head.identity_names).shape == (len(head.identity_names),)


def test_macro_weights_follow_makehuman_rules():
    w = macro_weights(DEFAULT_MACRO)
    assert sum(v for k, v in w.items() if not k.startswith("universal")) == pytest.approx(1.0)
    assert w["universal-female-young-averagemuscle-averageweight"] == pytest.approx(0.5)
    old_man = macro_weights(MacroSettings(sex=1.0, age=1.0, african=0, asian=0, caucasian=1))
    assert old_man["caucasian-male-old"] == pytest.approx(1.0) and old_man["caucasian-male-young"] == 0.0
    with pytest.raises(ValueError, match="age"):
        macro_weights(MacroSettings(age=0.2))


def test_head_file_round_trip_and_clear_errors(head, tmp_path):
    path = save_head(head, tmp_path / "h.safetensors", delta_dtype=np.float32)
    again = load_head(path)
    assert np.array_equal(again.blendshapes, head.blendshapes) and again.landmarks == head.landmarks
    (tmp_path / "junk.safetensors").write_bytes(b"not a head")
    with pytest.raises(HeadFormatError, match="junk.safetensors"):
        load_head(tmp_path / "junk.safetensors")
    broken = head.landmarks.copy()
    del broken["chin"]
    head_without = type(head)(**{**head.__dict__, "landmarks": broken})
    save_head(head_without, tmp_path / "nochin.safetensors")
    with pytest.raises(HeadFormatError, match="chin"):
        load_head(tmp_path / "nochin.safetensors")
    from safetensors.numpy import save_file
    save_file({"neutral": np.zeros((3, 3), np.float32)}, str(tmp_path / "meta.safetensors"),
              metadata={"head": json.dumps({"format_version": 99})})
    with pytest.raises(HeadFormatError, match="format 99"):
        load_head(tmp_path / "meta.safetensors")


def test_head_export_writes_a_posed_identity(tmp_path, head, capsys):
    out = tmp_path / "h.obj"
    assert cli_main(["head", "export", str(out), "--identity", "7", "--weights", "jawOpen=0.5"]) == 0
    lines = out.read_text().splitlines()
    v = np.array([[float(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    assert v.shape == (head.vertex_count, 3)
    assert sum(ln.startswith("f ") for ln in lines) == len(head.faces)
    assert v[head.landmarks["chin"], 1] < head.neutral[head.landmarks["chin"], 1] - 0.005
    assert cli_main(["head", "export", str(out), "--weights", "jawOpn=0.5"]) == 2
    assert "jawOpn" in capsys.readouterr().err
    assert cli_main(["head", "export", str(out), "--weights", "jawOpen"]) == 2
