"""ARKit weights out of the CLI: the Live Link Face CSV layout and the JSON, from a real blendshape checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from jambatalk_blender.core.livelink import LIVE_LINK_FACE_CHANNELS, arkit_columns, timecode
from model_core.arkit_formats import read_live_link_csv, write_live_link_csv
from model_core.checkpoint import CheckpointInfo, save_checkpoint
from model_core.cli import main as cli_main
from model_core.heads import load_head
from model_core.heads.cli import SHIPPED_HEAD
from model_core.inference import Animator
from tests.conftest import make_model, speech_like, tiny_config


def test_timecodes_count_frames_within_each_second():
    assert timecode(0, 30) == "00:00:00:00.000"
    assert timecode(31, 30) == "00:00:01:01.000"
    assert timecode(30 * 3723 + 29, 30) == "01:02:03:29.000"
    assert timecode(1, 24) == "00:00:00:01.000"


def test_columns_follow_live_link_face_order_case_insensitively():
    names = ["jawOpen", "eyeBlinkLeft", "notARKit"]
    cols = arkit_columns(np.array([[0.5, 0.25, 9.0]]), names)
    assert cols.shape == (1, 52)
    assert cols[0, LIVE_LINK_FACE_CHANNELS.index("JawOpen")] == 0.5
    assert cols[0, LIVE_LINK_FACE_CHANNELS.index("EyeBlinkLeft")] == 0.25
    assert cols.sum() == 0.75
    with pytest.raises(ValueError, match="ARKit"):
        arkit_columns(np.zeros((2, 2)), ["jaw_open", "blink"])


def test_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.random((40, 52)).astype(np.float32)
    names = [c[0].lower() + c[1:] for c in LIVE_LINK_FACE_CHANNELS][::-1]  # any order in, LLF order out
    path = write_live_link_csv(tmp_path / "t.csv", w, names, 30.0)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft"] and len(header) == 2 + 52 + 9
    channels, values = read_live_link_csv(path)
    assert channels == list(LIVE_LINK_FACE_CHANNELS)
    assert np.allclose(values, w[:, ::-1], atol=1e-6)
    assert path.read_text().splitlines()[1].split(",")[1] == "61"


def test_info_names_a_blendshape_models_channels(arkit_checkpoint, capsys):
    assert cli_main(["info", str(arkit_checkpoint)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["output_kind"] == "blendshapes" and len(info["blendshape_names"]) == 52


@pytest.fixture(scope="module")
def arkit_checkpoint(tmp_path_factory):
    head = load_head(SHIPPED_HEAD)
    config = tiny_config(vertex_count=head.vertex_count, output_kind="blendshapes",
                         blendshape_names=list(head.blendshape_names))
    model = make_model(config, head_std=0.5)
    model.set_blendshape_basis(head.blendshapes)
    path = tmp_path_factory.mktemp("arkit") / "arkit.safetensors"
    return save_checkpoint(path, model, CheckpointInfo(config=config), template=head.neutral)


def test_animate_writes_arkit_csv_and_json_matching_the_animator(arkit_checkpoint, tmp_path):
    wav = tmp_path / "take.wav"
    sf.write(wav, speech_like(2.0), 16000)
    for fmt in ("arkit-csv", "arkit-json"):
        assert cli_main(["animate", str(wav), "--checkpoint", str(arkit_checkpoint), "--out", str(tmp_path),
                         "--format", fmt, "--quiet", "--device", "cpu"]) == 0
    expected = Animator(arkit_checkpoint, device="cpu").animate_file(wav)
    _, csv_values = read_live_link_csv(tmp_path / "take.csv")
    data = json.loads((tmp_path / "take.json").read_text())
    assert csv_values.shape == (expected.shape[0], 52) and data["frames"] == expected.shape[0] and data["fps"] == 30
    assert data["names"][17] == "jawOpen" and np.allclose(np.array(data["weights"]), csv_values, atol=2e-6)
    head = load_head(SHIPPED_HEAD)
    order = [head.blendshape_names.index(c[0].lower() + c[1:]) for c in LIVE_LINK_FACE_CHANNELS]
    offsets = csv_values @ head.blendshapes[order].reshape(52, -1)
    assert np.abs(offsets.reshape(expected.shape) - expected).max() < 1e-5  # the same motion, to rounding


def test_arkit_formats_need_a_blendshape_model(tmp_path, capsys):
    model = make_model()
    path = save_checkpoint(tmp_path / "v.safetensors", model, CheckpointInfo(config=model.config))
    wav = tmp_path / "take.wav"
    sf.write(wav, speech_like(1.0), 16000)
    assert cli_main(["animate", str(wav), "--checkpoint", str(path), "--out", str(tmp_path), "--format",
                     "arkit-csv", "--quiet"]) == 2
    assert "needs a blendshape model" in capsys.readouterr().err
