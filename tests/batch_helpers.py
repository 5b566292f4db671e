"""What the batch tests share: lines of synthetic speech, small checkpoints on disk, the CLI as a subprocess,
and the processes a run started (read from /proc, Linux)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from model_core.checkpoint import CheckpointInfo, save_checkpoint
from tests.conftest import REPO, make_model, speech_like, tiny_config

SHIPPED = REPO / "models" / "arkit" / "jambatalk-arkit-small.safetensors"


def write_lines(folder: Path, seconds: list[float], prefix: str = "line") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, s in enumerate(seconds):
        path = folder / f"{prefix}{i:03d}.wav"
        sf.write(path, speech_like(s, seed=i), 16000, subtype="PCM_16")
        paths.append(path)
    return paths


def tiny_checkpoint(path: Path, **overrides) -> Path:
    model = make_model(tiny_config(**overrides))
    return save_checkpoint(path, model, CheckpointInfo(config=model.config, name="tiny"))


def batch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "model_core.cli", "batch", *args, "--device", "cpu"]


def jambatalk_batch(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(batch_command(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout)


def report(out: Path) -> dict:
    return json.loads((out / "batch-report.json").read_text(encoding="utf-8"))


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    """Every visible output file: (inode, mtime_ns), to tell whether a re-run wrote it again."""
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith("batch-report")
             and not any(part.startswith(".") for part in p.relative_to(out).parts)]
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}


def temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*.tmp")]


def descendants(pid: int) -> list[int]:
    """The processes below `pid` now (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def load_output(path: Path) -> np.ndarray:
    """An output file's numbers, whatever its format (values the tests compare)."""
    from model_core.arkit_formats import read_live_link_csv
    from model_core.mesh_cache import read_mdd, read_pc2

    if path.suffix == ".csv":
        return read_live_link_csv(path)[1]
    if path.suffix == ".json":
        return np.asarray(json.loads(path.read_text(encoding="utf-8"))["weights"], dtype=np.float32)
    if path.suffix == ".pc2":
        return read_pc2(path)[0]
    if path.suffix == ".mdd":
        return read_mdd(path)[0]
    return np.load(path, allow_pickle=False)


def kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill_one_mid_run(args: list[str], out: Path, marker: str, after_records: int = 3) -> dict:
    """Run `jambatalk batch ARGS`, SIGKILL one of its processes whose command line holds `marker` (a worker, a
    Ray actor) once `after_records` lines are finished, and let the run end. Returns what the test checks."""
    import signal
    import time

    records = out / ".jambatalk-batch" / "records"
    process = subprocess.Popen(batch_command(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and len(list(records.glob("*.json"))) < after_records \
                and process.poll() is None:
            time.sleep(0.02)
        victims = [pid for pid in descendants(process.pid) if marker in command_line(pid)]
        assert victims and process.poll() is None, "the run finished before a process could be killed"
        kill(victims[0], signal.SIGKILL)
        finished = {p.stem for p in records.glob("*.json")}
        before = snapshot(out)
        _, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            kill(process.pid, signal.SIGTERM)
            process.communicate(timeout=60)
    return {"returncode": process.returncode, "stderr": stderr, "finished": finished, "before": before,
            "victims": victims}


def assert_each_line_once_and_finished_ones_untouched(out: Path, names: list[str], killed: dict) -> list[dict]:
    """After a kill and the run's (or a re-run's) end: every line in the report once, done or skipped, no temp
    file, and the files of lines finished before the kill never written again."""
    rows = report(out)["lines"]
    assert sorted(row["output"] for row in rows) == sorted(names)
    assert all(row["status"] in ("done", "skipped") for row in rows)
    assert temp_files(out) == [] and len(killed["finished"]) < len(names)
    after = snapshot(out)
    for name, identity in killed["before"].items():
        if name.rsplit(".", 1)[0] in killed["finished"]:
            assert after[name] == identity, f"{name} was written again"
    return rows
