"""`jambatalk batch --engine ray` on a local Ray instance (this machine's CPUs): the local engine's results, and an
actor killed mid-run loses nothing and writes nothing twice. Skipped when Ray is not installed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.batch_helpers import (
    assert_each_line_once_and_finished_ones_untouched,
    jambatalk_batch,
    kill_one_mid_run,
    load_output,
    report,
    tiny_checkpoint,
    write_lines,
)
from tests.conftest import REPO


def test_without_ray_the_ray_engine_says_how_to_install_it(tmp_path):
    # `import ray` fails in this interpreter as it does where Ray is not installed.
    code = ("import sys; sys.modules['ray'] = None; from model_core.cli import main; "
            f"sys.exit(main(['batch', {str(tmp_path)!r}, '--out', {str(tmp_path / 'out')!r}, '--engine', 'ray']))")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "pip install 'jambatalk[scale]'" in run.stderr and "Traceback" not in run.stderr


pytest.importorskip("ray.data", reason="Ray is not installed (pip install 'jambatalk[scale]')")


def test_ray_writes_what_the_local_engine_writes(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.safetensors")
    paths = write_lines(tmp_path / "vo", [1.4, 2.1, 1.0, 1.7, 2.4])
    (tmp_path / "vo" / "broken.wav").write_bytes(b"RIFF....WAVEfmt ")
    results = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        run = jambatalk_batch(str(tmp_path / "vo"), "--out", str(out), "--checkpoint", str(checkpoint),
                              "--format", "npy,mdd", "--template", str(write_obj(tmp_path)), "--engine", engine,
                              "--workers", "2", "--batch-lines", "2", "--quiet")
        assert run.returncode == 1, run.stderr  # the broken file, in both
        results[engine] = {row["output"]: row for row in report(out)["lines"]}
    assert results["ray"].keys() == results["local"].keys() == {p.stem for p in paths} | {"broken"}
    assert results["ray"]["broken"]["error"] == results["local"]["broken"]["error"]
    for path in paths:
        local, ray = results["local"][path.stem], results["ray"][path.stem]
        assert ray["status"] == local["status"] == "done" and ray["files"] == local["files"]
        assert ray["fingerprint"] == local["fingerprint"]
        for name in local["files"]:
            np.testing.assert_allclose(load_output(tmp_path / "ray" / name), load_output(tmp_path / "local" / name),
                                       rtol=0, atol=1e-5)


def write_obj(tmp_path):
    path = tmp_path / "head.obj"
    if not path.exists():
        verts = np.random.default_rng(2).normal(size=(40, 3))
        path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in verts), encoding="utf-8")
    return path


def test_an_actor_killed_mid_run_loses_nothing_and_writes_nothing_twice(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.safetensors")
    paths = write_lines(tmp_path / "vo", [1.0 + 0.04 * i for i in range(20)])
    out = tmp_path / "out"
    killed = kill_one_mid_run([str(tmp_path / "vo"), "--out", str(out), "--checkpoint", str(checkpoint),
                               "--engine", "ray", "--workers", "2", "--batch-lines", "1", "--quiet"], out,
                              marker="MapWorker")
    assert killed["returncode"] == 0, killed["stderr"]
    assert_each_line_once_and_finished_ones_untouched(out, [p.stem for p in paths], killed)
    assert {p.name for p in out.glob("*.npy")} == {f"{p.stem}.npy" for p in paths}
