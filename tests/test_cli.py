"""The `jambatalk` command line, run as a user would run it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from model_core.mesh_cache import read_mdd, read_pc2
from tests.conftest import REPO, speech_like


def jambatalk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model_core.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_init_info_animate_to_npy_pc2_and_mdd(tmp_path):
    ck = tmp_path / "small.safetensors"
    assert jambatalk("init", "--preset", "small", "--random-head", "--out", str(ck)).returncode == 0
    info = json.loads(jambatalk("info", str(ck)).stdout)
    assert info["vertex_count"] == 5023 and info["motion_fps"] == 30.0 and info["pattern"] == "METEME"
    assert info["output_kind"] == "vertices" and info["blendshape_names"] == [] and info["training_sources"] == []
    wav = tmp_path / "take.wav"
    sf.write(wav, speech_like(2.5, sample_rate=44100), 44100, subtype="PCM_16")

    run = jambatalk("animate", str(wav), "--checkpoint", str(ck), "--out", str(tmp_path / "out"), "--json",
                    "--quiet")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    offsets = np.load(tmp_path / "out" / "take.npy")
    assert offsets.shape == (summary[0]["frames"], 5023, 3) and offsets.shape[0] == 74
    assert np.abs(offsets).max() > 0

    template = np.random.default_rng(0).normal(size=(5023, 3)).astype(np.float32)
    obj = tmp_path / "head.obj"
    obj.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in template) + "f 1 2 3\n")
    for fmt, reader in (("pc2", read_pc2), ("mdd", read_mdd)):
        run = jambatalk("animate", str(wav), "--checkpoint", str(ck), "--out", str(tmp_path / "out"),
                        "--format", fmt, "--template", str(obj), "--quiet")
        assert run.returncode == 0, run.stderr
        frames, _ = reader(tmp_path / "out" / f"take.{fmt}")
        np.testing.assert_allclose(frames, offsets + template[None], atol=1e-5)


def test_errors_are_one_sentence_without_traceback(tmp_path):
    junk = tmp_path / "vocaset.pth"
    junk.write_bytes(b"garbage")
    run = jambatalk("convert-official", str(junk), "--preset", "vocaset", "--out", str(tmp_path / "x.safetensors"))
    assert run.returncode == 2
    assert "not a readable PyTorch checkpoint" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1

    ck = tmp_path / "small.safetensors"
    jambatalk("init", "--preset", "small", "--out", str(ck))
    notaudio = tmp_path / "notes.wav"
    notaudio.write_text("not audio")
    run = jambatalk("animate", str(notaudio), "--checkpoint", str(ck), "--out", str(tmp_path))
    assert run.returncode == 2 and "could not be decoded as audio" in run.stderr and "Traceback" not in run.stderr
    run = jambatalk("animate", str(notaudio), "--checkpoint", str(ck), "--out", str(tmp_path), "--format", "pc2")
    assert run.returncode == 2 and "--template" in run.stderr
