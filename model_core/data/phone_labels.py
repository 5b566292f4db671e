"""Frame-level phone labels: which phone of the unified inventory sounds at each motion frame.

Training can ask the audio encoder to name the phone it hears (`train.phone_weight`): a direct signal for
what separates p, b, m from t, d, k and an open vowel from a closed one, which the vertex losses only give
through the face. Pure logic: no torch, no files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from model_core.corpus.phones import PHONES, SILENCE

PHONE_CLASSES: tuple[str, ...] = PHONES  # class i is PHONES[i]; silence is a class too
SILENCE_CLASS = PHONE_CLASSES.index(SILENCE)


def phone_class(symbol: str) -> int:
    """The class index of a unified-inventory symbol (ValueError for anything else)."""
    try:
        return PHONE_CLASSES.index(symbol)
    except ValueError:
        raise ValueError(f"'{symbol}' is not a phone of the unified inventory ({', '.join(PHONE_CLASSES)}).") \
            from None


def frame_labels(phones: Iterable[Mapping], frames: int, fps: float) -> np.ndarray:
    """(frames,) int64 class of the phone sounding at each frame's time (frame i at i / fps); silence where no
    phone covers a frame. `phones` are dicts or objects with symbol, start and end in seconds."""
    labels = np.full(frames, SILENCE_CLASS, dtype=np.int64)
    times = np.arange(frames) / fps
    for phone in phones:
        symbol, start, end = (phone["symbol"], phone["start"], phone["end"]) if isinstance(phone, Mapping) \
            else (phone.symbol, phone.start, phone.end)
        labels[(times >= float(start)) & (times < float(end))] = phone_class(str(symbol))
    return labels


def retime_labels(labels: np.ndarray, rate: float, count: int) -> np.ndarray:
    """`count` labels where output frame j is input frame j * rate (the nearest: classes do not interpolate),
    the companion of signal.timescale.retime_frames for a tempo change."""
    positions = np.minimum(np.rint(np.arange(count) * rate), len(labels) - 1).astype(np.int64)
    return np.asarray(labels)[positions]
