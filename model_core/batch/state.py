"""What makes a batch resumable: a fingerprint per line and a record per finished line, in the output folder.

A line's fingerprint is a SHA-256 of its audio file's bytes, its model file's bytes and every parameter that
changes its files (formats, subject, strength, smoothing, range, template, precision, MoE rule). When all of a
line's files are written (each atomically: a temp file in the same folder, then `os.replace`), its record
`.jambatalk-batch/records/<output>.json` is written the same way, listing each file's size and SHA-256. A line is
done when its record has the fingerprint the line has now and every file it lists is intact; anything else is
redone. A kill at any moment leaves finished files, at worst an orphan temp file (swept at the next start), and
never a half-written output or a record for files that were not all written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from model_core.mesh_cache import atomic_open
from model_core.output_files import file_suffix

STATE_FOLDER = ".jambatalk-batch"
FINGERPRINT_VERSION = 1  # bump when a writer or the network's numbers change, so old outputs are redone
_CHUNK = 1 << 20


def sha256_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class DigestCache:
    """File SHA-256s, computed once per process for files that stay put (models, templates)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, int, str]] = {}

    def digest(self, path: str | Path) -> str:
        key = os.path.abspath(path)
        stat = os.stat(key)
        known = self._known.get(key)
        if known is None or known[:2] != (stat.st_size, stat.st_mtime_ns):
            known = (stat.st_size, stat.st_mtime_ns, sha256_file(key))
            self._known[key] = known
        return known[2]


def line_fingerprint(audio_sha256: str, model_sha256: str, params: dict) -> str:
    payload = json.dumps({"version": FINGERPRINT_VERSION, "audio": audio_sha256, "model": model_sha256,
                          "params": params}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Record:
    fingerprint: str
    files: dict[str, dict]  # path relative to the output folder -> {"bytes": n, "sha256": hex}
    info: dict  # frames, fps, audio_seconds, compute_s, finished (UTC)


class OutputFolder:
    """The output folder: where a line's files go, their records, the run lock and left-over temp files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.state = self.root / STATE_FOLDER

    def target(self, output: str, fmt: str) -> Path:
        return self.root / f"{output}.{file_suffix(fmt)}"

    def record_path(self, output: str) -> Path:
        return self.state / "records" / f"{output}.json"

    def read_record(self, output: str) -> Record | None:
        try:
            data = json.loads(self.record_path(output).read_text(encoding="utf-8"))
            return Record(data["fingerprint"], dict(data["files"]), dict(data.get("info", {})))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none yet, or unreadable: the line is redone

    def done(self, output: str, fingerprint: str) -> Record | None:
        """The line's record when it matches `fingerprint` and every file it lists is intact, else None."""
        record = self.read_record(output)
        if record is None or record.fingerprint != fingerprint:
            return None
        for relative, meta in record.files.items():
            path = self.root / relative
            try:
                if path.stat().st_size != meta["bytes"] or sha256_file(path) != meta["sha256"]:
                    return None
            except OSError:
                return None
        return record

    def commit(self, output: str, fingerprint: str, files: list[Path], info: dict) -> Record:
        """Record a line whose files are all written; files an earlier version of the line wrote and this one
        did not (a format no longer asked for) are removed, so the folder holds only current results."""
        previous = self.read_record(output)
        listed = {}
        for path in files:
            listed[path.relative_to(self.root).as_posix()] = {"bytes": path.stat().st_size,
                                                              "sha256": sha256_file(path)}
        record = Record(fingerprint, listed, {**info, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        target = self.record_path(output)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target) as fh:
            fh.write(json.dumps(record.__dict__, indent=1, sort_keys=True).encode("utf-8"))
        for stale in set(previous.files if previous else ()) - set(listed):
            with contextlib.suppress(OSError):
                (self.root / stale).unlink()
        return record

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One batch at a time per output folder (POSIX; elsewhere unlocked). The lock dies with its process."""
        self.state.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:
            yield
            return
        path = self.state / "lock"
        with open(path, "a+", encoding="utf-8") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise ValueError(f"Another jambatalk batch ({holder}) is writing to {self.root}; wait for it to "
                                 "finish or choose another --out.") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
            fh.flush()
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def sweep_temporaries(self, outputs: Iterable[tuple[str, tuple[str, ...]]]) -> int:
        """Remove the temp files a killed run left beside these outputs and their records (`.NAME.XXXX.tmp`)."""
        names: dict[Path, set[str]] = {}
        for output, formats in outputs:
            for path in [self.target(output, fmt) for fmt in formats] + [self.record_path(output)]:
                names.setdefault(path.parent, set()).add(path.name)
        removed = 0
        for folder, wanted in names.items():
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                name = entry.name
                if not (name.startswith(".") and name.endswith(".tmp")) or not entry.is_file():
                    continue
                stem = name[1:-4]
                if stem in wanted or stem.rsplit(".", 1)[0] in wanted:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed += 1
        return removed
