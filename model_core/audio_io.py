"""Decode user audio into the 16 kHz mono float32 signal the wav2vec2 encoder expects.

Everything a user can get wrong (format, length, silence, odd sample rates) is turned into an
``AudioError`` whose message is one sentence the user can act on. Deliberately torch-free so the
Blender side and the worker can share it.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from model_core.signal.stream_resample import (
    BLOCK_SAMPLES,
    TARGET_SAMPLE_RATE,
    GrowingOutput,
    SourceSpan,
    StreamResampler,
)

DEFAULT_MAX_SECONDS = 30 * 60
MIN_SECONDS = 0.1
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000
SILENCE_PEAK = 1e-4
# (channels, frames) arrays are only recognised up to this many channels (see prepare_samples).
MAX_CHANNELS_FIRST = 8
# libsndfile reports "unknown length" as a huge sentinel; treat anything this big as unknown.
_UNKNOWN_FRAMES = 2**62
_SUPPORTED = "Supported: WAV, FLAC, OGG, MP3 and the other formats libsndfile reads."


class AudioError(ValueError):
    """Audio the model cannot use; ``str(err)`` is a sentence meant for the end user."""


class _VirtualFile:
    """A read-only file over the caller's buffer (bytes, bytearray, memoryview): nothing is copied.

    soundfile's virtual-IO callback does ``file.seek(...); return file.tell()``; a bad seek (corrupt headers
    ask for negative positions) reports -1 from that tell(), the way lseek fails, so libsndfile fails cleanly
    instead of being told position 0.
    """

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(data).cast("B")
        self._pos = 0
        self._failed_seek = False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._view.nbytes}.get(whence, -1)
        if base < 0 or base + offset < 0:
            self._failed_seek = True
            return -1
        self._failed_seek = False
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        if self._failed_seek:
            # Only the tell() that immediately follows the failed seek reports the failure.
            self._failed_seek = False
            return -1
        return self._pos

    def readinto(self, buffer) -> int:
        target = memoryview(buffer).cast("B")
        start = min(self._pos, self._view.nbytes)
        count = min(target.nbytes, self._view.nbytes - start)
        target[:count] = self._view[start:start + count]
        self._pos = start + count
        return count

    def read(self, size: int = -1) -> bytes:
        start = min(self._pos, self._view.nbytes)
        end = self._view.nbytes if size is None or size < 0 else min(self._view.nbytes, start + size)
        self._pos = end
        return self._view[start:end].tobytes()

    def write(self, data: bytes) -> int:
        return 0  # read-only: libsndfile never writes when decoding

    def release(self) -> None:
        """Let go of the caller's buffer now (a traceback may keep this object alive for a while)."""
        self._view.release()


@dataclass(frozen=True, eq=False)
class DecodedAudio:
    """Mono float32 audio at 16 kHz plus what the source looked like (for messages/UI)."""

    samples: np.ndarray
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    duration_s: float


def _fmt_len(seconds: float, limit: float) -> tuple[str, str]:
    """Format a duration and a limit in the same unit, with enough digits to tell them apart."""
    scale, unit = (60.0, "minutes") if limit >= 60 else (1.0, "seconds")
    for digits in (1, 2, 3):
        a, b = f"{seconds / scale:.{digits}f}", f"{limit / scale:.{digits}f}"
        if a != b:
            break
    return f"{a} {unit}", f"{b} {unit}"


def _check_max_seconds(max_seconds: float) -> float:
    max_seconds = float(max_seconds)
    if not math.isfinite(max_seconds) or max_seconds <= 0:
        raise ValueError(f"max_seconds must be a positive finite number, got {max_seconds!r}")
    return max_seconds


def _check_rate(sample_rate: object, name: str) -> int:
    numeric = isinstance(sample_rate, (int, float, np.integer, np.floating)) and not isinstance(
        sample_rate, bool
    )
    if not numeric or not math.isfinite(float(sample_rate)) or float(sample_rate) != int(sample_rate):
        raise AudioError(
            f"{name} has an invalid sample rate {sample_rate!r}; it must be a whole number of Hz."
        )
    rate = int(sample_rate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{name} has a sample rate of {rate} Hz; supported rates are "
            f"{MIN_SAMPLE_RATE} Hz to {MAX_SAMPLE_RATE} Hz."
        )
    return rate


def _too_long(name: str, seconds: float, max_seconds: float, *, at_least: bool = False) -> AudioError:
    length, limit = _fmt_len(seconds, max_seconds)
    # at_least: we stopped decoding at the limit, so the true length is unknown but larger.
    what = f"longer than {limit}" if at_least else f"{length} long"
    return AudioError(f"{name} is {what}; the limit is {limit}, so trim it or split it into shorter clips.")


def _check_length(name: str, frames: int, rate: int, max_seconds: float) -> None:
    if frames <= 0:
        raise AudioError(f"{name} contains no audio samples.")
    seconds = frames / rate
    if seconds > max_seconds:
        raise _too_long(name, seconds, max_seconds)
    if seconds < MIN_SECONDS:
        raise AudioError(
            f"{name} is only {seconds:.3g} seconds long; at least {MIN_SECONDS} seconds of audio is needed."
        )


def _downmix(frames_first: np.ndarray) -> np.ndarray:
    """(frames, channels) float -> new mono float32 array (channel mean, accumulated in float64)."""
    # NaN/Inf/out-of-float32-range values are rejected later in _finish; don't warn about them here.
    with np.errstate(invalid="ignore", over="ignore"):
        if frames_first.shape[1] == 1:
            return frames_first[:, 0].astype(np.float32)
        return frames_first.mean(axis=1, dtype=np.float64).astype(np.float32)


def _resample(mono: np.ndarray, rate: int) -> np.ndarray:
    if rate == TARGET_SAMPLE_RATE:
        return mono
    g = math.gcd(rate, TARGET_SAMPLE_RATE)
    # Polyphase FIR with an anti-aliasing low-pass at the lower Nyquist; exact rational ratio.
    out = resample_poly(mono, TARGET_SAMPLE_RATE // g, rate // g)
    return np.ascontiguousarray(out, dtype=np.float32)


def _finish(mono: np.ndarray, rate: int, channels: int, max_seconds: float, name: str) -> DecodedAudio:
    """Shared tail of every entry point: validate a mono float32 signal and bring it to 16 kHz."""
    _check_length(name, mono.shape[0], rate, max_seconds)
    if not np.isfinite(mono).all():
        raise AudioError(
            f"{name} contains NaN or infinite sample values; re-export it as ordinary PCM audio."
        )
    # Judged after the downmix: a stereo pair in opposite phase is silence to the model too.
    peak = float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        raise AudioError(
            f"{name} is silent (peak level {peak:.1e}, below {SILENCE_PEAK:.0e}); "
            "check that the right file or track was exported."
        )
    samples = _resample(np.ascontiguousarray(mono, dtype=np.float32), rate)
    if not np.isfinite(samples).all():
        # Only reachable with absurd float input (~1e38) overflowing inside the resampling filter.
        raise AudioError(
            f"{name} has sample values too large to process (peak {peak:.3g}); "
            "re-export it as ordinary PCM audio."
        )
    return DecodedAudio(
        samples=samples,
        sample_rate=TARGET_SAMPLE_RATE,
        source_sample_rate=rate,
        source_channels=channels,
        duration_s=samples.shape[0] / TARGET_SAMPLE_RATE,
    )


def _undecodable(name: str, err: Exception) -> AudioError:
    # LibsndfileError's str() embeds the repr of the BytesIO; its error_string is the useful part.
    reason = str(getattr(err, "error_string", None) or err or type(err).__name__).strip().rstrip(".")
    return AudioError(f"{name} could not be decoded as audio (soundfile: {reason}). {_SUPPORTED}")


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says, before any sample is decoded."""

    sample_rate: int
    channels: int
    frames: int | None  # None: the format does not say (the decoder stops at the length limit)
    seekable: bool = True

    @property
    def range_decodable(self) -> bool:
        """Whether a range can be decoded on its own: the header gives the length and the file can seek."""
        return self.frames is not None and self.seekable

    def output_bytes(self, max_seconds: float, start_s: float = 0.0, end_s: float | None = None) -> int:
        """An upper bound of the decoded 16 kHz mono float32 signal's size: what holding it will cost (of the
        range [start_s, end_s) when the range is decoded on its own, see `range_decodable`)."""
        frames = max_seconds * self.sample_rate if self.frames is None else min(self.frames,
                                                                               max_seconds * self.sample_rate)
        if self.range_decodable and (start_s or end_s is not None):
            end = self.frames / self.sample_rate if end_s is None else float(end_s)
            reach = 0.05  # seconds of the resampling filter's reach decoded on each side
            frames = min(frames, max(0.0, end - float(start_s) + 2 * reach) * self.sample_rate)
        return 4 * (math.ceil(frames * TARGET_SAMPLE_RATE / self.sample_rate) + 1)


def _open(source: _VirtualFile | str, name: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(source)
    except (RuntimeError, ValueError, TypeError, OSError, EOFError) as err:
        raise _undecodable(name, err) from err


def _header(f: sf.SoundFile, name: str) -> AudioInfo:
    rate = _check_rate(f.samplerate, name)
    channels = int(f.channels)
    if channels < 1:
        raise AudioError(f"{name} reports {channels} audio channels; it is probably corrupt.")
    frames = int(f.frames)
    return AudioInfo(rate, channels, frames if 0 <= frames < _UNKNOWN_FRAMES else None, bool(f.seekable()))


def _check_cost(name: str, info: AudioInfo, max_seconds: float, max_source_samples: int | None) -> None:
    """Refuse, from the header alone, audio whose decoding would cost more than `max_source_samples`
    (frames x channels, counted up to the length limit): a tiny FLAC of 30 minutes of DC at 384 kHz is
    700 million samples to decode and resample."""
    if max_source_samples is None:
        return
    frames = math.floor(max_seconds * info.sample_rate) if info.frames is None else info.frames
    samples = frames * info.channels
    if samples > max_source_samples:
        rate_kHz = info.sample_rate / 1000
        raise AudioError(
            f"{name} holds {samples / 1e6:.0f} million samples ({info.channels} channel(s) at {rate_kHz:g} kHz); "
            f"this worker decodes at most {max_source_samples / 1e6:.0f} million, so export it at 48 kHz or "
            "lower, in mono, or shorter."
        )


@dataclass
class _Decoded:
    """What reading a run of frames gave: the 16 kHz samples, how many frames were read, their peak."""

    samples: np.ndarray
    frames: int
    peak: float
    finite: bool


def _read_resampled(f: sf.SoundFile, info: AudioInfo, count: int, name: str,
                    too_long: Callable[[int], AudioError] | None, resampler: StreamResampler,
                    expected: int) -> _Decoded:
    """Read up to `count` frames from f's position, downmixed and resampled block by block. With `too_long`, one
    frame more than `count` raises `too_long(frames)` (the header may understate the length)."""
    extra = 0 if too_long is None else 1
    block = max(1, BLOCK_SAMPLES // info.channels)
    output = GrowingOutput(expected)
    total, peak, finite = 0, 0.0, True
    try:
        while True:
            chunk = f.read(frames=min(block, count + extra - total), dtype="float32", always_2d=True)
            if chunk.shape[0] == 0:
                break
            total += chunk.shape[0]
            if too_long is not None and total > count:
                raise too_long(total)
            if not finite:
                continue  # refused by the caller, after the length checks; only count the rest
            mono = _downmix(chunk)
            del chunk
            if not np.isfinite(mono).all():
                finite = False
                continue
            peak = max(peak, float(np.max(np.abs(mono))))
            output.extend(resampler.feed(mono))
    except AudioError:
        raise
    except (RuntimeError, ValueError, TypeError, OSError, EOFError) as err:
        raise _undecodable(name, err) from err
    if finite:
        output.extend(resampler.finish())
    return _Decoded(output.result(), total, peak, finite)


def _checked(name: str, decoded: _Decoded, info: AudioInfo, *, silence: bool = True) -> DecodedAudio:
    if not decoded.finite:
        raise AudioError(f"{name} contains NaN or infinite sample values; re-export it as ordinary PCM audio.")
    if silence and decoded.peak < SILENCE_PEAK:
        raise AudioError(
            f"{name} is silent (peak level {decoded.peak:.1e}, below {SILENCE_PEAK:.0e}); "
            "check that the right file or track was exported."
        )
    if not np.isfinite(decoded.samples).all():
        raise AudioError(f"{name} has sample values too large to process (peak {decoded.peak:.3g}); "
                         "re-export it as ordinary PCM audio.")
    return DecodedAudio(samples=decoded.samples, sample_rate=TARGET_SAMPLE_RATE, source_sample_rate=info.sample_rate,
                        source_channels=info.channels, duration_s=decoded.samples.shape[0] / TARGET_SAMPLE_RATE)


def _decode_whole(f: sf.SoundFile, info: AudioInfo, max_seconds: float, name: str,
                  max_source_samples: int | None) -> DecodedAudio:
    rate = info.sample_rate
    # Header checks first: a 10-hour file is refused without decoding a single block.
    if info.frames is not None:
        _check_length(name, info.frames, rate, max_seconds)
    _check_cost(name, info, max_seconds, max_source_samples)
    resampler = StreamResampler(rate)
    expected = 0 if info.frames is None else resampler.output_length(info.frames)
    # Never read past the limit, even if the header understates the length.
    decoded = _read_resampled(f, info, int(math.floor(max_seconds * rate)), name,
                              lambda frames: _too_long(name, frames / rate, max_seconds, at_least=True),
                              resampler, expected)
    _check_length(name, decoded.frames, rate, max_seconds)
    return _checked(name, decoded, info)


def _decode_range(f: sf.SoundFile, info: AudioInfo, max_seconds: float, name: str, max_source_samples: int | None,
                  start_s: float, end_s: float | None) -> DecodedAudio:
    """Seek to the range and decode only it (with the resampling filter's reach on both sides): the same samples
    as decoding the whole file and `crop_seconds`, bit for bit. The limits apply to the range; the range is not
    judged silent (it was chosen on purpose); the whole file's length comes from the header."""
    frames = int(info.frames)
    _check_length(name, frames, info.sample_rate, math.inf)
    resampler = StreamResampler(info.sample_rate)
    first, stop = _crop_bounds(start_s, end_s, resampler.output_length(frames), TARGET_SAMPLE_RATE)
    seconds = (stop - first) / TARGET_SAMPLE_RATE
    what = f"{name} from {first / TARGET_SAMPLE_RATE:g} s to {stop / TARGET_SAMPLE_RATE:g} s"
    if seconds > max_seconds:
        raise _too_long(what, seconds, max_seconds)
    span = SourceSpan.plan(resampler, frames, first, stop)
    _check_cost(what, AudioInfo(info.sample_rate, info.channels, span.stop - span.start), max_seconds,
                max_source_samples)
    try:
        f.seek(span.start)
    except (RuntimeError, ValueError, TypeError, OSError, EOFError) as err:
        raise _undecodable(name, err) from err
    decoded = _read_resampled(f, info, span.stop - span.start, name, None, resampler,
                              resampler.output_length(span.stop - span.start))
    if decoded.frames < span.stop - span.start:
        raise _undecodable(name, ValueError("it ends before its header says"))
    # A view: the span's few extra samples on each side are not worth a second copy of the range.
    decoded.samples = decoded.samples[span.lead:span.lead + stop - first]
    return _checked(what, decoded, info, silence=False)


def _decode(source: _VirtualFile | str, max_seconds: float, name: str, max_source_samples: int | None = None,
            start_s: float = 0.0, end_s: float | None = None) -> DecodedAudio:
    """Decode, downmix, check and resample block by block: memory is the 16 kHz result plus a few blocks.

    With a range (`start_s` > 0 or an `end_s`), only the range is decoded when the file can seek and its
    header gives its length; otherwise the whole file is decoded (within the limits) and cut.
    """
    max_seconds = _check_max_seconds(max_seconds)
    ranged = bool(start_s) or end_s is not None
    with _open(source, name) as f:
        info = _header(f, name)
        if ranged and info.range_decodable:
            return _decode_range(f, info, max_seconds, name, max_source_samples, start_s, end_s)
        audio = _decode_whole(f, info, max_seconds, name, max_source_samples)
    return crop_seconds(audio, start_s, end_s) if ranged else audio


def probe_audio_bytes(data: bytes | bytearray | memoryview, *, name: str = "audio") -> AudioInfo:
    """Read only the header of an in-memory audio file (cheap); AudioError when it cannot be decoded."""
    if len(data) == 0:
        raise AudioError(f"{name} is empty (0 bytes); provide a WAV, FLAC, OGG or MP3 file.")
    source = _VirtualFile(data)
    try:
        with _open(source, name) as f:
            return _header(f, name)
    finally:
        source.release()


def decode_audio_bytes(
    data: bytes | bytearray | memoryview,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    name: str = "audio",
    max_source_samples: int | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
) -> DecodedAudio:
    """Decode an in-memory audio file (anything libsndfile reads: WAV, FLAC, OGG, MP3, ...).

    The buffer is read in place, never copied. ``name`` is only used in error messages (e.g. the uploaded
    file's name). ``max_source_samples`` refuses, from the header, files with more samples (frames x
    channels) than that to decode. ``start_s`` / ``end_s``: only that range (as `crop_seconds` cuts it),
    decoded on its own where the file allows, with the limits applying to the range.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise AudioError(f"{name} is empty (0 bytes); provide a WAV, FLAC, OGG or MP3 file.")
    source = _VirtualFile(data)
    try:
        return _decode(source, max_seconds, name, max_source_samples, start_s, end_s)
    finally:
        source.release()


def load_audio_file(
    path: str | os.PathLike[str], *, max_seconds: float = DEFAULT_MAX_SECONDS, start_s: float = 0.0,
    end_s: float | None = None,
) -> DecodedAudio:
    """Decode an audio file from disk (or only [start_s, end_s), as `decode_audio_bytes`); a missing or empty
    file is an ``AudioError`` too."""
    path = _check_audio_path(path)
    return _decode(path, max_seconds, path, None, start_s, end_s)


def read_audio_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """An audio file's bytes, undecoded (to hash, then `decode_audio_bytes`), with `load_audio_file`'s sentences
    for a missing, non-file or empty path."""
    path = _check_audio_path(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise AudioError(f"{path} could not be read ({err.strerror or err}); check its permissions.") from err


def _check_audio_path(path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"{path} does not exist; check the path.")
    if not os.path.isfile(path):
        raise AudioError(f"{path} is not a file; choose an audio file instead.")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path} is empty (0 bytes); provide a WAV, FLAC, OGG or MP3 file.")
    return path


def _to_float(samples: np.ndarray, name: str) -> np.ndarray:
    """Integer PCM -> float in [-1, 1) with the usual full-scale conventions; floats pass through."""
    dt = samples.dtype
    # kind/itemsize rather than dtype equality so big-endian arrays (e.g. '>i2') are accepted too.
    kind, size = dt.kind, dt.itemsize
    if kind == "i" and size == 2:
        return samples.astype(np.float32) / np.float32(32768.0)
    if kind == "i" and size == 4:
        # float64 first: float32 cannot hold every int32 exactly before the division.
        return (samples.astype(np.float64) / 2.0**31).astype(np.float32)
    if kind == "u" and size == 1:
        return (samples.astype(np.float32) - np.float32(128.0)) / np.float32(128.0)
    if kind == "f" and size in (4, 8):
        return samples
    raise AudioError(
        f"{name} has unsupported sample type {dt}; use int16, int32, uint8, float32 or float64 samples."
    )


def _to_frames_first(samples: np.ndarray, name: str) -> np.ndarray:
    """Return a (frames, channels) view of a 1-D or 2-D array.

    Rule: soundfile's (frames, channels) layout wins whenever the second axis is small
    (<= MAX_CHANNELS_FIRST). Otherwise a (channels, frames) array is accepted if its first axis is
    small (<= MAX_CHANNELS_FIRST) and shorter than the second. Anything else is ambiguous.
    """
    if samples.ndim == 1:
        return samples[:, None]
    if samples.ndim != 2:
        raise AudioError(f"{name} has shape {samples.shape}; expected mono (frames,) or (frames, channels).")
    rows, cols = samples.shape
    if 1 <= cols <= MAX_CHANNELS_FIRST:
        return samples
    if 1 <= rows <= MAX_CHANNELS_FIRST and cols > rows:
        return samples.T
    if rows == 0 or cols == 0:
        return samples.reshape(0, 1)
    raise AudioError(
        f"{name} has shape {samples.shape}; expected (frames, channels) with at most "
        f"{MAX_CHANNELS_FIRST} channels."
    )


def prepare_samples(
    samples: np.ndarray,
    sample_rate: int,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    name: str = "audio",
) -> DecodedAudio:
    """Validate, downmix (channel mean) and resample an in-memory array to 16 kHz mono float32.

    Layout rule: 1-D is mono. 2-D is read as soundfile's (frames, channels) whenever it has at most
    MAX_CHANNELS_FIRST (8) columns; otherwise it is read as (channels, frames) if it has at most
    8 rows and more columns than rows; anything else is refused as ambiguous. Integer PCM is scaled
    to [-1, 1): int16 / 32768, int32 / 2**31, uint8 (x - 128) / 128. The input is never modified
    and the result never shares memory with it.
    """
    max_seconds = _check_max_seconds(max_seconds)
    arr = np.asarray(samples)
    rate = _check_rate(sample_rate, name)
    frames_first = _to_frames_first(arr, name)
    if frames_first.shape[0] == 0:
        raise AudioError(f"{name} contains no audio samples.")
    # Length is checked before the float conversion so a huge array is refused cheaply.
    _check_length(name, frames_first.shape[0], rate, max_seconds)
    as_float = _to_float(frames_first, name)
    return _finish(_downmix(as_float), rate, as_float.shape[1], max_seconds, name)


def _crop_bounds(start_s: float, end_s: float | None, n: int, rate: int) -> tuple[int, int]:
    """Sample indices [i0, i1) of the range [start_s, end_s) in a signal of n samples (see `crop_seconds`)."""
    duration = n / rate
    start = float(start_s)
    end = duration if end_s is None else float(end_s)
    if not (math.isfinite(start) and math.isfinite(end)):
        raise AudioError(f"The crop range {start_s!r}..{end_s!r} must be finite numbers of seconds.")
    if start < 0:
        raise AudioError(f"The crop start {start:.3f} s is negative; it must be 0 s or later.")
    if start >= duration:
        raise AudioError(
            f"The crop start {start:.3f} s is at or past the end of the audio ({duration:.3f} s long)."
        )
    if end > duration + 1.0 / rate:
        raise AudioError(f"The crop end {end:.3f} s is past the end of the audio ({duration:.3f} s long).")
    if end <= start:
        raise AudioError(f"The crop end {end:.3f} s must be after the crop start {start:.3f} s.")
    i0 = min(n, int(round(start * rate)))
    i1 = min(n, int(round(end * rate)))
    if i1 <= i0:
        raise AudioError(f"The crop range {start:.4f}..{end:.4f} s contains no samples; widen it.")
    return i0, i1


def crop_seconds(audio: DecodedAudio, start_s: float, end_s: float | None) -> DecodedAudio:
    """Cut ``[start_s, end_s)`` (seconds, ``None`` = to the end) out of decoded audio.

    Boundaries are rounded to the nearest sample. An ``end_s`` up to one sample past the end is
    clamped, so passing ``audio.duration_s`` back in is always fine. The crop is not re-checked for
    silence: the user chose that range deliberately.
    """
    i0, i1 = _crop_bounds(start_s, end_s, audio.samples.shape[0], audio.sample_rate)
    cut = audio.samples[i0:i1].copy()
    return DecodedAudio(
        samples=cut,
        sample_rate=audio.sample_rate,
        source_sample_rate=audio.source_sample_rate,
        source_channels=audio.source_channels,
        duration_s=cut.shape[0] / audio.sample_rate,
    )


def normalise_for_wav2vec2(samples: np.ndarray) -> np.ndarray:
    """Zero-mean/unit-variance normalisation as the official loader's Wav2Vec2Processor does it.

    ``(x - mean) / sqrt(var + 1e-7)`` with the population variance, computed in float64 and cast
    to float32 at the end.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot normalise an empty signal")
    return ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)
