"""Write takes into the blendshape corpus layout; vertices are never stored (the head computes them).

OUT/
  audio/<take>.flac        16 kHz mono 16-bit FLAC
  weights/<take>.npy       float32 (T, K) blendshape weights at meta.json's fps, names in meta.json
  takes/<take>.json        voice, source, language, text and its source, timing kind, phones, check, split
  head.safetensors         the head every take is animated on (neutral, blendshapes, identities, landmarks)
  speakers.json            voice -> identity (MakeHuman macro settings + shape values, and the coefficients),
                           speaking style, sex, source
  regions/lips.txt, regions/upper_face.txt   vertex indices of the head (for the lip and upper-face metrics)
  meta.json, splits.json, rejected.json, README.md
A take is named <voice>_<key>. Frame k of a take shows time k / fps.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.corpus.arkit_motion import SpeakingStyle, arkit_weights, lip_gap_coefficients, random_style
from model_core.corpus.takes import SAMPLE_RATE, SpokenTake
from model_core.heads.asset import HeadAsset
from model_core.heads.identity import Identity, random_identity
from model_core.synth.files import write_indices, write_json

CORPUS_GENERATOR = "jambatalk synth-corpus (blendshape)"
CORPUS_FORMAT = 2
STORAGE_FPS = 60.0
VAL_SHARE = 0.1  # of the takes without a fixed split
# Whole voices no training run may hear: a model is judged on unseen speakers (their faces too), not only on
# unseen sentences. Real speech is held out by prompt (the Asterisk test split): there is only one speaker.
HELD_OUT_VOICES = ("festival-ked", "flite-rms", "formant-06F")


def stable_int(*parts: object) -> int:
    """A number from names that does not change between runs or Python versions (unlike hash())."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little")


def split_of(take: SpokenTake) -> str:
    if take.split:
        return take.split
    if take.voice in HELD_OUT_VOICES:
        return "test"
    return "val" if stable_int("split", take.voice, take.key) % 1000 < VAL_SHARE * 1000 else "train"


def take_name(take: SpokenTake) -> str:
    key = "".join(c if c.isalnum() or c == "-" else "-" for c in take.key)
    return f"{take.voice}_{key}"


@dataclass
class Speaker:
    voice: str
    source: str
    sex: str | None
    identity: Identity
    coefficients: np.ndarray
    neutral: np.ndarray
    style: SpeakingStyle
    rest_gap: float


def regions(head: HeadAsset) -> dict[str, np.ndarray]:
    """Lip and upper-face vertex sets of a head, from its landmarks (skin only)."""
    v, m = head.neutral, head.landmarks
    a, b = head.parts.get("skin", [0, head.vertex_count])
    skin = np.zeros(head.vertex_count, dtype=bool)
    skin[a:b] = True
    half_width = abs(v[m["mouth_corner_left"], 0] - v[m["mouth_corner_right"], 0]) / 2 + 0.004
    top, bottom = v[m["lip_upper"], 1] + 0.012, v[m["lip_lower"], 1] - 0.012
    front = v[:, 2] > min(v[m["mouth_corner_left"], 2], v[m["mouth_corner_right"], 2]) - 0.01
    lips = skin & (np.abs(v[:, 0]) <= half_width) & (v[:, 1] <= top) & (v[:, 1] >= bottom) & front
    eye_low = min(v[m["eye_left_lower"], 1], v[m["eye_right_lower"], 1])
    upper = skin & (v[:, 1] > eye_low - 0.008) & (v[:, 2] > 0)
    return {"lips": np.flatnonzero(lips), "upper_face": np.flatnonzero(upper)}


def make_speaker(head: HeadAsset, voice: str, source: str, sex: str | None, seed: int) -> Speaker:
    """A voice's face and speaking style: the same for a voice name and seed in every corpus and demo."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stable_int("voice", voice) % 2**32,)))
    identity = random_identity(rng, head.identity_names, female=None if sex is None else sex == "F")
    coefficients = identity.coefficients(head.identity_names)
    neutral = head.identity_neutral(coefficients)
    lm = head.landmarks
    return Speaker(voice, source, sex, identity, coefficients, neutral, random_style(rng),
                   float(neutral[lm["lip_upper"], 1] - neutral[lm["lip_lower"], 1]))


class TakeAnimator:
    """Each voice's face and style, and the ARKit weights of a take on that face (the corpus's truth)."""

    def __init__(self, head: HeadAsset, seed: int) -> None:
        self.head, self.seed = head, seed
        self.gap = lip_gap_coefficients(head.blendshapes, head.landmarks["lip_upper"], head.landmarks["lip_lower"])
        self.speakers: dict[str, Speaker] = {}

    def speaker(self, take: SpokenTake) -> Speaker:
        if take.voice not in self.speakers:
            self.speakers[take.voice] = make_speaker(self.head, take.voice, take.source, take.sex, self.seed)
        return self.speakers[take.voice]

    def animate(self, take: SpokenTake, fps: float = STORAGE_FPS) -> np.ndarray:
        """(T, K) weights of a take on its speaker's face (seeded by the take's name)."""
        speaker = self.speaker(take)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(stable_int("face", take_name(take))
                                                                                 % 2**32,)))
        return arkit_weights(take.phones, take.duration, fps, speaker.style, self.head.blendshape_names, self.gap,
                             rng, rest_gap=speaker.rest_gap)


class CorpusWriter:
    """Animates each take on its speaker's face and writes it; keeps the counts the README reports."""

    def __init__(self, out: Path, head: HeadAsset, head_path: Path, seed: int) -> None:
        self.out, self.head, self.seed = out, head, seed
        for sub in ("audio", "weights", "takes", "regions"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(head_path, out / "head.safetensors")
        self.animator = TakeAnimator(head, seed)
        self.written: list[dict] = []
        self.rejected: list[dict] = []
        self.splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}

    def speaker(self, take: SpokenTake) -> Speaker:
        return self.animator.speaker(take)

    def add(self, take: SpokenTake) -> bool:
        """Write one take, or record why it was rejected; True when written."""
        name = take_name(take)
        if not take.ok:
            self.rejected.append({"take": name, "source": take.source, "voice": take.voice, "text": take.text,
                                  "seconds": round(take.duration, 3), "reasons": take.check.get("reasons", [])})
            return False
        import soundfile as sf

        weights = self.animator.animate(take)
        audio = np.clip(np.asarray(take.audio, dtype=np.float32), -1.0, 1.0)
        sf.write(self.out / "audio" / f"{name}.flac", audio, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
        np.save(self.out / "weights" / f"{name}.npy", weights, allow_pickle=False)
        split = split_of(take)
        record = {"take": name, "source": take.source, "voice": take.voice, "key": take.key,
                  "language": take.language, "text": take.text, "text_source": take.text_source,
                  "licence": take.licence, "timing": take.timing, "split": split, "seconds": round(take.duration, 4),
                  "fps": STORAGE_FPS, "frames": int(weights.shape[0]), "sample_rate": SAMPLE_RATE,
                  "phones": [p.to_json() for p in take.phones], "check": take.check}
        (self.out / "takes" / f"{name}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        self.splits[split].append(name)
        self.written.append({k: record[k] for k in ("take", "source", "voice", "language", "split", "seconds",
                                                    "licence", "text_source", "timing")})
        return True

    def finish(self, meta: dict) -> dict:
        """Write speakers, splits, regions, rejected and meta; returns meta with the counts filled in."""
        for region, idx in regions(self.head).items():
            write_indices(self.out / "regions" / f"{region}.txt", idx)
        speakers = {v: {"source": s.source, "sex": s.sex, "identity": s.identity.to_json(),
                        "coefficients": [round(float(c), 6) for c in s.coefficients], "style": s.style.to_json()}
                    for v, s in sorted(self.animator.speakers.items())}
        write_json(self.out / "speakers.json", speakers)
        write_json(self.out / "splits.json", {k: sorted(v) for k, v in self.splits.items()})
        write_json(self.out / "rejected.json", self.rejected)
        by_source: dict[str, dict] = {}
        for row in self.written:
            entry = by_source.setdefault(row["source"], {"takes": 0, "seconds": 0.0, "voices": {}})
            entry["takes"] += 1
            entry["seconds"] += row["seconds"]
            entry["voices"][row["voice"]] = round(entry["voices"].get(row["voice"], 0.0) + row["seconds"], 3)
            for key in ("licence", "text_source", "timing", "language"):
                entry.setdefault(f"{key}s", set()).add(row[key])
        for entry in by_source.values():
            entry["seconds"] = round(entry["seconds"], 3)
            for key in ("licences", "text_sources", "timings", "languages"):
                entry[key] = sorted(entry[key])
        meta = {**meta, "generator": CORPUS_GENERATOR, "format_version": CORPUS_FORMAT, "fps": STORAGE_FPS,
                "sample_rate": SAMPLE_RATE, "units": "metres",
                "axes": "y up, z forward (out of the face), +x the subject's left",
                "head": {"name": self.head.name, "file": "head.safetensors", "vertices": self.head.vertex_count,
                         "landmarks": self.head.landmarks, "licence": self.head.info.get("licence", ""),
                         "credits": self.head.info.get("credits", "")},
                "blendshape_names": list(self.head.blendshape_names),
                "takes": len(self.written), "seconds": round(sum(r["seconds"] for r in self.written), 3),
                "split_takes": {k: len(v) for k, v in self.splits.items()},
                "sources": by_source,
                "rejected": {"count": len(self.rejected), "seconds": round(sum(r["seconds"] for r in self.rejected), 3),
                             "takes": [r["take"] for r in self.rejected]}}
        write_json(self.out / "meta.json", meta)
        return meta

