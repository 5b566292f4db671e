"""What audio to send to the worker, and where its first frame lands on the timeline.

A VSE sound strip: the file it plays (on disk, resolved against the .blend or its library, or the bytes packed
into the .blend), the window of that file the strip plays (`timing.strip_audio_range`) and the strip's first
visible frame. Or a plain audio file placed at a given frame. Main thread only (reads bpy data); the result is a
plain object the worker thread can use.
"""

from __future__ import annotations

import os

import bpy

from . import compat
from .blend_paths import absolute_path, relative_to_unsaved_blend
from .core import timing
from .core.audio import AudioSource


class AudioSourceError(RuntimeError):
    """The audio cannot be found or read; str() is a sentence for the animator."""


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise AudioSourceError(f"The audio file of {what} cannot be read ({exc.strerror or exc}): {path}. "
                               "Check the path, or pack the sound into the .blend.") from None


def sound_bytes(sound: bpy.types.Sound, what: str) -> tuple[bytes, str | None]:
    """The bytes of a Sound datablock's file: packed data first, else the file it points to."""
    packed = getattr(sound, "packed_file", None)
    if packed is not None and packed.size > 0:
        return bytes(packed.data), None
    raw = sound.filepath
    if not raw:
        raise AudioSourceError(f"{what} has no sound file.")
    path = bpy.path.abspath(raw, library=sound.library)
    if relative_to_unsaved_blend(raw, sound.library):
        raise AudioSourceError(f"{what} uses a path relative to the .blend ({raw}), but the .blend is not saved "
                               "yet. Save it, or use an absolute path.")
    return _read(os.path.normpath(path), what), path


def find_strip(scene: bpy.types.Scene, name: str):
    """The sound strip called ``name`` (inside metas too); with an empty name, the only / active sound strip."""
    strips = compat.sound_strips(scene)
    if name:
        for strip in strips:
            if strip.name == name:
                return strip
        raise AudioSourceError(f"There is no sound strip called {name!r} in the scene's sequencer.")
    se = scene.sequence_editor
    active = se.active_strip if se is not None else None
    if active is not None and active.type == "SOUND":
        return active
    if len(strips) == 1:
        return strips[0]
    if not strips:
        raise AudioSourceError("The scene has no sound strip. Add the dialogue to the Video Sequencer, or choose "
                               "an audio file.")
    raise AudioSourceError("The scene has several sound strips: choose one.")


def from_strip(scene: bpy.types.Scene, strip) -> AudioSource:
    """The audio a VSE sound strip plays; frame 0 of the take lands on the strip's first visible frame."""
    what = f"Sound strip {strip.name!r}"
    if strip.type != "SOUND" or strip.sound is None:
        raise AudioSourceError(f"{what} has no sound.")
    if len(getattr(strip, "retiming_keys", ())) > 0 or abs(getattr(strip, "speed_factor", 1.0) - 1.0) > 1e-6:
        raise AudioSourceError(f"{what} is retimed or has a speed change, which is not supported yet. Remove "
                               "the retiming, or mix the strip down to a file and use that.")
    fps = compat.scene_fps(scene)
    t0, t1 = timing.strip_audio_range(strip.frame_start, strip.frame_final_start, strip.frame_final_duration,
                                      strip.sound_offset, fps)
    if t1 <= max(t0, 0.0):
        raise AudioSourceError(f"{what} plays no part of its sound file.")
    first = float(strip.frame_final_start)
    if t0 < 0.0:  # the strip starts with silence before the file: animate from the file's first sample
        first += -t0 * fps
        t0 = 0.0
    data, path = sound_bytes(strip.sound, what)
    return AudioSource(data=data, start_s=t0, end_s=t1, first_frame=first, label=strip.name, path=path)


def from_file(path: str, first_frame: float) -> AudioSource:
    """A whole audio file whose first sample lands on scene frame ``first_frame``."""
    if not path:
        raise AudioSourceError("Choose an audio file or a sound strip.")
    absolute = absolute_path(path, "audio", AudioSourceError)
    data = _read(absolute, "the chosen file")
    label = os.path.splitext(os.path.basename(absolute))[0]
    return AudioSource(data=data, start_s=0.0, end_s=None, first_frame=float(first_frame), label=label,
                       path=absolute)
