"""A take: the worker's raw result for one piece of audio, kept so every later bake is a pure function of it.

The raw result is what the model said at strength 1 with no smoothing: ARKit weights (T, K) of a blendshape
model or vertex offsets (T, V, 3), at the model's frame rate, plus the audio's prosody (for the life layer)
and where the take starts on the timeline. Strength, smoothing, timing, mapping and the life layer are applied
by the bake (bake_plan.py), so changing them never calls the worker again.

On disk a take is one ``.npz`` next to the .blend (``//jambatalk/<take>.npz``): arrays only plus a JSON
header, read with ``allow_pickle=False``, written atomically, so a take survives saving and reloading.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .prosody import Prosody

KINDS = ("weights", "vertices")
SIDECAR_DIR = "jambatalk"  # next to the .blend, shared with the mesh caches
FORMAT = "jambatalk-take/1"
MAX_SIDECAR_BYTES = 2 * 1024**3  # a 30-minute vertex take of FLAME in float32 is ~1.6 GB
_MAX_NAME = 40  # ID names are limited (63 bytes before 4.3): leave room for suffixes


class TakeError(ValueError):
    """A take that cannot be read or used; str() is a sentence for the animator."""


def clean_take_name(take_name: str) -> str:
    """A take name safe inside data paths, file names and ID names."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(take_name or "").strip()).strip("._")
    return (name or "take")[:_MAX_NAME]


def audio_digest(data: bytes) -> str:
    """The sha256 of the audio file's bytes: tells a take's audio apart from another file of the same name."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, eq=False)
class Take:
    """One take's raw worker result (module note). ``data`` is float32 weights (T, K) or offsets (T, V, 3)."""

    name: str
    kind: str
    data: np.ndarray
    fps: float
    first_frame: float
    channels: tuple[str, ...] = ()
    model: str = ""
    source: str = ""
    audio_sha256: str = ""
    prosody: Prosody | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TakeError(f"A take holds weights or vertices, not {self.kind!r}.")
        data = np.asarray(self.data)
        want = 2 if self.kind == "weights" else 3
        if data.ndim != want or data.shape[0] < 1 or (self.kind == "vertices" and data.shape[2] != 3):
            raise TakeError(f"A {self.kind} take needs {'(frames, channels)' if want == 2 else '(frames, V, 3)'} "
                            f"data; got shape {data.shape}.")
        if not np.isfinite(data).all():
            raise TakeError("The take's data contains NaN or infinite values; animate it again.")
        if self.kind == "weights" and len(self.channels) != data.shape[1]:
            raise TakeError(f"The take has {data.shape[1]} weight channels but {len(self.channels)} names.")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise TakeError(f"The take's frame rate must be positive; got {self.fps!r}.")
        object.__setattr__(self, "data", np.ascontiguousarray(data, dtype=np.float32))
        object.__setattr__(self, "name", clean_take_name(self.name))
        object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))

    @property
    def n_frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def vertex_count(self) -> int | None:
        return int(self.data.shape[1]) if self.kind == "vertices" else None

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps


def sidecar_relative_path(take_name: str) -> str:
    """The Blender-relative path of a take's sidecar (``//jambatalk/<take>.npz``)."""
    return f"//{SIDECAR_DIR}/{clean_take_name(take_name)}.npz"


def save_take(take: Take, path: str | os.PathLike[str]) -> str:
    """Write ``take`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    path = os.fspath(path)
    header = {"format": FORMAT, "name": take.name, "kind": take.kind, "fps": float(take.fps),
              "first_frame": float(take.first_frame), "channels": list(take.channels), "model": take.model,
              "source": take.source, "audio_sha256": take.audio_sha256, "extra": take.extra}
    arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8), "data": take.data}
    if take.prosody is not None:
        arrays.update(prosody_fps=np.float64(take.prosody.fps), loudness_db=take.prosody.loudness_db,
                      f0_hz=take.prosody.f0_hz, speech=take.prosody.speech)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_take(path: str | os.PathLike[str]) -> Take:
    """Read a take written by `save_take`; every problem is a `TakeError` sentence. Never unpickles."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise TakeError(f"The take file {path} cannot be read ({exc.strerror or exc}); animate the take again.") \
            from None
    if size > MAX_SIDECAR_BYTES:
        raise TakeError(f"The take file {path} is {size / 2**30:.1f} GB, more than a take can be; it is not ours.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(bytes(npz["header"]).decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise TakeError(f"{path} is not a JambaTalk take file.")
            prosody = None
            if "loudness_db" in npz.files:
                prosody = Prosody(fps=float(npz["prosody_fps"]), loudness_db=npz["loudness_db"],
                                  f0_hz=npz["f0_hz"], speech=npz["speech"].astype(bool))
            return Take(name=str(header["name"]), kind=str(header["kind"]), data=npz["data"],
                        fps=float(header["fps"]), first_frame=float(header["first_frame"]),
                        channels=tuple(header.get("channels") or ()), model=str(header.get("model", "")),
                        source=str(header.get("source", "")), audio_sha256=str(header.get("audio_sha256", "")),
                        prosody=prosody, extra=dict(header.get("extra") or {}))
    except TakeError:
        raise
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise TakeError(f"The take file {path} is damaged ({exc}); animate the take again.") from None
