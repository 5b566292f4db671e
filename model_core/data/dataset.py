"""A dataset folder as a list of takes (audio + vertex sequence + subject template), split into train/val/test.

Takes are named `<subject>_<sentence>` (FaceFormer: the subject is everything before the last underscore,
the sentence id the trailing digits). Audio is decoded to 16 kHz mono and normalised as the official
loader does; vertices keep every `stride`-th stored frame and are returned as (T, V*3) float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.audio_io import TARGET_SAMPLE_RATE, load_audio_file, normalise_for_wav2vec2
from model_core.data.layout import DatasetLayout, open_layout
from model_core.data.masks import RegionMask, load_region
from model_core.data.splits import SPLITS, SplitRule, split_rules
from model_core.data.templates import load_templates

_TRAILING_DIGITS = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class Take:
    name: str
    subject: str
    sentence: int | None
    wav: Path
    vertices: Path


@dataclass
class Sample:
    """One loaded take. `audio` is normalised 16 kHz; `vertices` are absolute positions at the motion fps."""

    take: Take
    audio: np.ndarray  # (S,) float32
    vertices: np.ndarray  # (T, V*3) float32
    template: np.ndarray  # (V*3,) float32
    fps: float
    weights: np.ndarray | None = None  # (T, K) blendshape weights when the corpus stores them (else None)
    phones: np.ndarray | None = None  # (T,) phone classes (data.phone_labels) when the corpus knows its phones

    @property
    def frames(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def subject(self) -> str:
        return self.take.subject


def parse_take_name(stem: str) -> tuple[str, int | None]:
    """(subject, sentence id) from a take name such as FaceTalk_170728_03272_TA_sentence01 or F2_e01."""
    subject = "_".join(stem.split("_")[:-1]) or stem
    match = _TRAILING_DIGITS.search(stem)
    return subject, int(match.group(1)) if match else None


class MotionCorpus:
    """Takes of a dataset folder, its templates, split rules and (on request) region masks."""

    def __init__(self, root: str | Path, layout: str = "auto", split_preset: str = "auto", cache: bool = True) -> None:
        self.layout: DatasetLayout = open_layout(root, layout)
        self.root = self.layout.root
        self.split_preset = self.layout.default_split if split_preset == "auto" else split_preset
        self.rules: dict[str, SplitRule] = split_rules(self.split_preset, self.root, self.layout.manifest)
        self.takes, self.without_vertices = self._scan()
        if not self.takes:
            raise ValueError(f"{self.root} has no takes: no wav/<name>.wav with a matching vertices_npy/<name>.npy.")
        self.templates = load_templates(self.root)
        self.vertex_count = int(next(iter(self.templates.values())).shape[0])
        self._cache: dict[str, Sample] | None = {} if cache else None

    @property
    def fps(self) -> float:
        return self.layout.fps

    def _scan(self) -> tuple[list[Take], list[str]]:
        takes, orphans = [], []
        for wav in sorted((self.root / "wav").glob("*.wav")):
            npy = self.root / "vertices_npy" / f"{wav.stem}.npy"
            if not npy.is_file():
                orphans.append(wav.stem)  # FaceFormer drops these silently; we report them
                continue
            subject, sentence = parse_take_name(wav.stem)
            takes.append(Take(wav.stem, subject, sentence, wav, npy))
        return takes, orphans

    def split(self, name: str, required: bool = True) -> list[Take]:
        """The takes of split `name` (train, val or test), with a clear error when it is empty and required."""
        if name not in SPLITS:
            raise ValueError(f"Unknown split {name!r}: choose train, val or test.")
        rule = self.rules[name]
        found = [t for t in self.takes if rule.matches(t.name, t.subject, t.sentence)]
        if not found and required:
            subjects = sorted({t.subject for t in self.takes})
            raise ValueError(
                f"The '{name}' split of preset '{self.split_preset}' is empty in {self.root}: it wants "
                f"{rule.describe()}, but the folder has subjects {', '.join(subjects[:12])}"
                f"{' ...' if len(subjects) > 12 else ''}. Choose another split preset or check the files."
            )
        return found

    def subjects(self, split: str) -> list[str]:
        return sorted({t.subject for t in self.split(split)})

    def template(self, subject: str) -> np.ndarray:
        if subject not in self.templates:
            raise ValueError(f"No neutral template for subject {subject} in {self.root}.")
        return self.templates[subject]

    def mean_template(self, subjects: list[str]) -> np.ndarray:
        """(V, 3) average neutral face of `subjects` (the checkpoint's template after training)."""
        return np.mean([self.template(s).astype(np.float64) for s in subjects], axis=0).astype(np.float32)

    def masks(self, lips: str | Path | None = None, upper: str | Path | None = None) -> tuple[RegionMask, RegionMask]:
        """The lip and upper-face masks (files the user named, else the folder's defaults)."""
        return (
            load_region(self.root, lips, self.layout.lips_file, "lip", self.vertex_count, "--lips / data.lips"),
            load_region(self.root, upper, self.layout.upper_face_file, "upper-face", self.vertex_count,
                        "--upper-face / data.upper_face"),
        )

    def load(self, take: Take) -> Sample:
        if self._cache is not None and take.name in self._cache:
            return self._cache[take.name]
        audio = load_audio_file(take.wav).samples
        stored = np.load(take.vertices, mmap_mode="r", allow_pickle=False)[:: self.layout.stride]
        vertices = np.asarray(stored, dtype=np.float32).reshape(len(stored), -1)
        if vertices.shape[1] != self.vertex_count * 3:
            raise ValueError(f"{take.vertices} has {vertices.shape[1]} values per frame; the templates have "
                             f"{self.vertex_count} vertices ({self.vertex_count * 3} values).")
        if not np.isfinite(vertices).all():
            raise ValueError(f"{take.vertices} contains NaN or infinite positions.")
        template = self.template(take.subject).reshape(-1)
        sample = Sample(take, normalise_for_wav2vec2(audio), vertices, template, self.fps)
        if self._cache is not None:
            self._cache[take.name] = sample
        return sample

    def describe(self) -> str:
        return (f"{self.root} ({self.layout.kind} layout, {self.fps:g} fps, {self.vertex_count} vertices, "
                f"{len(self.takes)} takes, split preset {self.split_preset})")


def crop_sample(sample: Sample, max_frames: int, rng: np.random.Generator) -> Sample:
    """A random window of at most `max_frames` motion frames and the audio that spans the same time.

    The window stays inside both the motion and the audio (their lengths differ slightly in VOCASET).
    """
    audio_frames = int(len(sample.audio) / TARGET_SAMPLE_RATE * sample.fps)
    usable = max(1, min(sample.frames, audio_frames))
    if max_frames <= 0 or usable <= max_frames:
        return sample
    start = int(rng.integers(0, usable - max_frames + 1))
    # A fixed sample count for a fixed frame count, so equal crops stack into one batch.
    length = int(round(max_frames / sample.fps * TARGET_SAMPLE_RATE))
    a0 = min(int(round(start / sample.fps * TARGET_SAMPLE_RATE)), len(sample.audio) - length)
    weights = None if sample.weights is None else sample.weights[start: start + max_frames]
    phones = None if sample.phones is None else sample.phones[start: start + max_frames]
    return Sample(sample.take, sample.audio[a0: a0 + length], sample.vertices[start: start + max_frames],
                  sample.template, sample.fps, weights, phones)
