"""`jambatalk batch` run as a studio runs it (a real subprocess): formats, isolated failures, the report, resuming,
kill -9 and Ctrl-C, --workers, the lock."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from model_core.arkit_formats import arkit_columns
from model_core.audio_io import load_audio_file
from model_core.batch.state import OutputFolder
from model_core.inference import Animator
from model_core.mesh_cache import read_pc2
from tests.batch_helpers import (
    SHIPPED,
    alive,
    assert_each_line_once_and_finished_ones_untouched,
    batch_command,
    descendants,
    jambatalk_batch,
    kill,
    kill_one_mid_run,
    load_output,
    report,
    snapshot,
    temp_files,
    tiny_checkpoint,
    write_lines,
)
from tests.conftest import REPO


def test_a_folder_to_arkit_files_with_bad_lines_reported_and_the_rest_done(tmp_path):
    audio = tmp_path / "vo"
    good = write_lines(audio, [2.0, 1.3, 2.6])
    sf.write(audio / "silent.wav", np.zeros(16000, np.float32), 16000)
    (audio / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    out = tmp_path / "out"
    run = jambatalk_batch(str(audio), "--out", str(out), "--checkpoint", str(SHIPPED),
                          "--format", "arkit-csv,arkit-json,npy", "--quiet")
    assert run.returncode == 1, run.stderr  # something failed: the exit status says so
    assert "3 done, 0 skipped (already done), 2 failed" in run.stdout
    data = report(out)
    rows = {row["output"]: row for row in data["lines"]}
    assert data["summary"]["failed"] == 2 and data["summary"]["done"] == 3
    assert "is silent" in rows["silent"]["error"] and "could not be decoded as audio" in rows["corrupt"]["error"]
    assert f"line {rows['silent']['line']} (silent): " in run.stdout

    animator = Animator(SHIPPED, device="cpu")
    for path in good:
        row = rows[path.stem]
        assert row["status"] == "done" and row["error"] == "" and row["compute_s"] > 0
        assert row["files"] == [f"{path.stem}.csv", f"{path.stem}.json", f"{path.stem}.npy"]
        weights = animator.animate_weights_16k(load_audio_file(path).samples)
        assert row["frames"] == len(weights) and row["audio_seconds"] == pytest.approx(sf.info(path).duration)
        columns = arkit_columns(weights, animator.blendshape_names)  # Live Link Face order
        np.testing.assert_allclose(load_output(out / f"{path.stem}.csv"), columns, atol=2e-6)
        np.testing.assert_allclose(load_output(out / f"{path.stem}.json"), columns, atol=2e-6)
        offsets = load_output(out / f"{path.stem}.npy")
        np.testing.assert_allclose(offsets, animator.weights_to_offsets(weights), atol=1e-5)
    header = (out / "batch-report.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("line,audio,output,status,error,audio_seconds,frames,fps,compute_s")


def test_a_rerun_skips_what_is_done_and_redoes_exactly_what_changed(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.safetensors")
    template = tmp_path / "head.npy"
    np.save(template, np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32))
    paths = write_lines(tmp_path / "vo", [1.5, 2.2, 1.1, 1.8, 1.3, 1.6])
    manifest = tmp_path / "lines.csv"

    def write_manifest(strength_of_b: str = "", formats_of_c: str = "") -> None:
        rows = [f"vo/{paths[0].name},a,,,Guard", f"vo/{paths[1].name},b,{strength_of_b},,Guard",
                f"vo/{paths[2].name},c,,{formats_of_c},Innkeeper"]
        rows += [f"vo/{path.name},{name},,,Innkeeper" for path, name in zip(paths[3:], "def", strict=True)]
        manifest.write_text("audio,output,strength,format,speaker\n" + "\n".join(rows) + "\n", encoding="utf-8")

    def run(*extra: str) -> dict:
        result = jambatalk_batch(str(manifest), "--out", str(out), "--checkpoint", str(checkpoint),
                                 "--format", "npy,pc2", "--template", str(template), "--quiet", *extra)
        assert result.returncode == 0, result.stderr + result.stdout
        return {row["output"]: row["status"] for row in report(out)["lines"]}

    out = tmp_path / "out"
    write_manifest()
    (out / ".a.npy.k2j4x_q.tmp").parent.mkdir(parents=True)
    (out / ".a.npy.k2j4x_q.tmp").write_bytes(b"what a killed run left")
    assert run() == dict.fromkeys("abcdef", "done")
    assert temp_files(out) == [] and report(out)["summary"]["temp_files_removed"] == 1
    assert report(out)["lines"][0]["extra"] == {"speaker": "Guard"}
    frames, _ = read_pc2(out / "a.pc2")
    np.testing.assert_allclose(frames, np.load(out / "a.npy") + np.load(template)[None], atol=1e-6)
    before = snapshot(out)
    b_before = np.load(out / "b.npy")

    assert run() == dict.fromkeys("abcdef", "skipped")
    assert snapshot(out) == before  # nothing written again

    paths[0].write_bytes(paths[1].read_bytes())  # line a: its audio replaced
    write_manifest(strength_of_b="0.5", formats_of_c="npy")  # line b: weaker; line c: no PC2 any more
    (out / "d.npy").unlink()  # line d: an output lost by hand
    (out / "e.pc2").write_bytes(b"corrupted on disk")  # line e: an output damaged
    assert run() == {**dict.fromkeys("abcde", "done"), "f": "skipped"}
    np.testing.assert_allclose(np.load(out / "a.npy"), b_before, atol=1e-6)
    np.testing.assert_allclose(np.load(out / "b.npy"), 0.5 * b_before, atol=1e-6)
    assert not (out / "c.pc2").exists()  # what a changed line no longer asks for goes
    assert snapshot(out)["f.npy"] == before["f.npy"]
    assert run("--force") == dict.fromkeys("abcdef", "done")


def test_kill_9_mid_run_leaves_no_half_written_file_and_the_rerun_finishes_each_line_once(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.safetensors")
    paths = write_lines(tmp_path / "vo", [1.0 + 0.05 * i for i in range(24)])
    out = tmp_path / "out"
    records = OutputFolder(out).state / "records"
    args = (str(tmp_path / "vo"), "--out", str(out), "--checkpoint", str(checkpoint), "--format", "npy,mdd",
            "--template", str(write_template(tmp_path)), "--workers", "2", "--batch-lines", "1", "--quiet")
    process = subprocess.Popen(batch_command(*args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(records.glob("*.json"))) < 4:
        workers = workers or [p for p in descendants(process.pid)]
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.02)
    workers = descendants(process.pid) or workers
    kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    finished = {p.stem for p in records.glob("*.json")}
    assert 4 <= len(finished) < len(paths), "the run was not stopped in the middle"
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers and not any(alive(pid) for pid in workers), "worker processes outlived the killed batch"
    for path in out.glob("*.*"):  # every visible file is complete, never half-written
        if not path.name.startswith("."):
            assert len(load_output(path)) > 0
    before = snapshot(out)

    rerun = jambatalk_batch(*args)
    assert rerun.returncode == 0, rerun.stderr
    rows = report(out)["lines"]
    assert sorted(row["output"] for row in rows) == sorted(p.stem for p in paths)  # each line once
    assert {row["output"] for row in rows if row["status"] == "skipped"} == finished
    assert temp_files(out) == []
    after = snapshot(out)
    assert all(after[name] == before[name] for name in before if name.rsplit(".", 1)[0] in finished)
    animator = Animator(checkpoint, device="cpu")
    for path in paths[::5]:
        np.testing.assert_allclose(np.load(out / f"{path.stem}.npy"), animator.animate_file(path), atol=1e-5)


def write_template(tmp_path):
    path = tmp_path / "head.obj"
    verts = np.random.default_rng(1).normal(size=(40, 3))
    path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in verts), encoding="utf-8")
    return path


def test_ctrl_c_stops_cleanly_with_a_partial_report_and_the_rerun_resumes(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.safetensors")
    write_lines(tmp_path / "vo", [1.2] * 30)
    out = tmp_path / "out"
    args = (str(tmp_path / "vo"), "--out", str(out), "--checkpoint", str(checkpoint), "--batch-lines", "1",
            "--quiet")
    # Ctrl-C's SIGINT at its default, as a terminal gives it: a test run started in the background (nohup, `&`)
    # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt.
    process = subprocess.Popen(batch_command(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    records = OutputFolder(out).state / "records"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(records.glob("*.json"))) < 3 and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    summary = report(out)["summary"]
    assert summary["interrupted"] and 3 <= summary["done"] < 30 and summary["not_run"] == 30 - summary["done"]
    assert "Interrupted" in stdout and "Run the same command again to resume" in stdout
    assert temp_files(out) == []
    rerun = jambatalk_batch(*args)
    assert rerun.returncode == 0
    assert report(out)["summary"]["skipped"] >= summary["done"] and report(out)["summary"]["failed"] == 0


def test_one_batch_per_output_folder_and_errors_are_one_sentence(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.safetensors")
    write_lines(tmp_path / "vo", [1.0])
    out = tmp_path / "out"
    with OutputFolder(out).lock():
        run = jambatalk_batch(str(tmp_path / "vo"), "--out", str(out), "--checkpoint", str(checkpoint))
    assert run.returncode == 2 and "Another jambatalk batch (pid" in run.stderr and "Traceback" not in run.stderr
    run = jambatalk_batch(str(tmp_path / "vo"), "--out", str(out), "--checkpoint", str(checkpoint),
                          "--format", "arkit-csv", "--quiet")
    assert run.returncode == 1 and "needs a blendshape model" in report(out)["lines"][0]["error"]
    run = jambatalk_batch(str(tmp_path / "nowhere"), "--out", str(out), "--checkpoint", str(checkpoint))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "does not exist" in run.stderr


def test_a_worker_killed_mid_run_has_its_lines_redone_by_a_fresh_one(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.safetensors")
    paths = write_lines(tmp_path / "vo", [1.0 + 0.04 * i for i in range(20)])
    out = tmp_path / "out"
    killed = kill_one_mid_run([str(tmp_path / "vo"), "--out", str(out), "--checkpoint", str(checkpoint),
                               "--workers", "2", "--batch-lines", "1", "--quiet"], out, marker="spawn_main")
    assert killed["returncode"] == 0, killed["stderr"]
    rows = assert_each_line_once_and_finished_ones_untouched(out, [p.stem for p in paths], killed)
    # `victims` are both workers as they were at the kill: rows from another process come from a replacement.
    assert {int(row["worker"].rsplit(":", 1)[1]) for row in rows} - set(killed["victims"])
