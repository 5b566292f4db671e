"""What every voice source hands the corpus writer: one spoken take with its phone timings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_core.corpus.phones import TimedPhone
from model_core.corpus.tools import SAMPLE_RATE


@dataclass
class SpokenTake:
    """A sentence spoken by one voice: 16 kHz mono float32 audio and unified phones (seconds)."""

    source: str  # formant, festival, flite, asterisk
    voice: str  # the speaker: one identity and speaking style each, e.g. festival-kal, flite-awb
    key: str  # stable id within the voice (prompt name, sentence number)
    language: str  # BCP-47-ish: en, it, cs, fi ...
    text: str
    text_source: str  # where the words come from (generated, public domain collection, Asterisk prompts)
    audio: np.ndarray
    phones: list[TimedPhone]
    timing: str  # "exact" (the synthesiser's own) or "aligned" (forced alignment)
    licence: str  # of the audio
    sex: str | None = None  # "F" / "M" when the voice's speaker is known to be one: the face follows it
    split: str | None = None  # a fixed split (Asterisk's held-out test prompts); None: decided by hash
    check: dict = field(default_factory=dict)  # alignment check: {"ok": bool, "reasons": [...], ...}

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def ok(self) -> bool:
        return bool(self.check.get("ok", True))
