"""Generate the synthetic corpus in the VOCASET / FaceFormer layout.

OUT/
  wav/<subject>_sentenceNN.wav          16 kHz mono 16-bit PCM
  vertices_npy/<subject>_sentenceNN.npy float32 (T60, V*3) absolute positions at 60 fps (loaders take [::2])
  phonemes/<subject>_sentenceNN.json    exact phone timings, closures and per-frame shape weights (60 fps)
  templates.npz                         subject -> (V, 3) float32 neutral (np.load(..., allow_pickle=False))
  regions/lips.txt, upper_face.txt, jaw.txt   comma-separated vertex indices
  mesh/<subject>.obj                    neutral mesh with faces
  meta.json, splits.json, README.md

Every random draw comes from a numpy SeedSequence keyed by (seed, subject, sentence, stream), so a sentence
does not change when the number of subjects or sentences does, and the same seed gives identical bytes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from model_core.heads.asset import write_obj
from model_core.synth.blendshapes import SHAPE_NAMES, Head, build_head
from model_core.synth.files import write_indices, write_json, write_npy, write_npz, write_wav
from model_core.synth.head import HeadParams, Topology, build_topology, random_head_params
from model_core.synth.motion import Articulation, animate, bilabial_closures, random_articulation
from model_core.synth.phonemes import Sentence, make_sentence
from model_core.synth.readme import corpus_readme
from model_core.synth.voice import SAMPLE_RATE, Voice, random_voice, synthesize

STORAGE_FPS = 60.0  # VOCASET stores 60 fps; FaceFormer-style loaders keep every second frame (30 fps)
FORMAT_VERSION = 1
_STREAM_SUBJECT, _STREAM_TEXT, _STREAM_VOICE, _STREAM_FACE = 0, 1, 2, 3
_OUR_FILES = ("wav/*.wav", "vertices_npy/*.npy", "phonemes/*.json", "mesh/*.obj", "regions/*.txt",
              "templates.npz", "meta.json", "splits.json", "README.md")


@dataclass(frozen=True)
class CorpusOptions:
    seed: int = 0
    subjects: int = 12
    sentences: int = 40
    min_seconds: float = 2.0
    max_seconds: float = 5.0
    vertices: int = 3000

    def validate(self) -> None:
        if not 1 <= self.subjects <= 99:
            raise ValueError(f"--subjects must be between 1 and 99 (got {self.subjects}).")
        if not 1 <= self.sentences <= 999:
            raise ValueError(f"--sentences must be between 1 and 999 (got {self.sentences}).")
        if not 1.0 <= self.min_seconds <= self.max_seconds <= 60.0:
            raise ValueError("Sentence lengths must satisfy 1 <= --min-seconds <= --max-seconds <= 60 "
                             f"(got {self.min_seconds} and {self.max_seconds}).")
        if not 600 <= self.vertices <= 40000:
            raise ValueError(f"--vertices must be between 600 and 40000 (got {self.vertices}).")
        if self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer (got {self.seed}).")


@dataclass(frozen=True)
class Subject:
    index: int  # 1-based
    name: str
    female: bool
    split: str
    rate: float  # speaking rate (1: nominal phone durations)
    head: HeadParams
    voice: Voice
    style: Articulation


@dataclass
class CorpusSummary:
    out: Path
    vertex_count: int
    face_count: int
    subjects: list[str]
    sentences: int
    audio_seconds: dict[str, float] = field(default_factory=dict)
    bytes_written: int = 0
    elapsed_seconds: float = 0.0

    @property
    def total_audio_seconds(self) -> float:
        return float(sum(self.audio_seconds.values()))


def rng_for(seed: int, subject: int, sentence: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(subject, sentence, stream)))


def split_counts(subjects: int) -> tuple[int, int, int]:
    """(train, val, test) subject counts: 8/2/2 for 12, one each for 3, everything in train below 3."""
    if subjects < 3:
        return subjects, 0, 0
    held = max(1, round(subjects / 6))
    return subjects - 2 * held, held, held


def make_subjects(options: CorpusOptions) -> list[Subject]:
    """Alternating male/female speakers; the last subjects are held out for validation and test."""
    train, val, _ = split_counts(options.subjects)
    out = []
    for i in range(1, options.subjects + 1):
        female = i % 2 == 0
        rng = rng_for(options.seed, i, 0, _STREAM_SUBJECT)
        split = "train" if i <= train else "val" if i <= train + val else "test"
        out.append(Subject(i, f"Synth_{i:02d}_{'F' if female else 'M'}", female, split,
                           rate=float(rng.uniform(0.85, 1.15)), head=random_head_params(rng),
                           voice=random_voice(rng, female), style=random_articulation(rng)))
    return out


def sentence_name(subject: Subject, k: int, total: int) -> str:
    return f"{subject.name}_sentence{k:0{max(2, len(str(total)))}d}"


def _phoneme_record(subject: Subject, k: int, sentence: Sentence, weights: np.ndarray, n_samples: int) -> dict:
    phones = [{"symbol": p.symbol, "kind": p.phoneme.kind, "start": p.start, "end": p.end, "start_ms": p.start_ms,
               "end_ms": p.end_ms, "word": p.word, "stressed": p.stressed, "accent": round(p.accent, 4),
               "bilabial": p.phoneme.is_bilabial} for p in sentence.phones]
    return {
        "subject": subject.name, "sentence": k, "sample_rate": SAMPLE_RATE, "num_samples": n_samples,
        "duration_ms": sentence.duration_ms, "fps": STORAGE_FPS, "num_frames": int(weights.shape[0]),
        "frame_time": "frame k shows time k / fps seconds",
        "phonemes": phones,
        "bilabial_closures": [[round(a, 4), round(b, 4)] for a, b in bilabial_closures(sentence)],
        "weights": {"names": list(SHAPE_NAMES),
                    "values": [[round(float(v), 6) for v in row] for row in weights]},
    }


def generate_sentence(options: CorpusOptions, subject: Subject, head: Head,
                      k: int) -> tuple[Sentence, np.ndarray, np.ndarray, np.ndarray]:
    """(sentence, audio float32, vertices float32 (T60, V*3), weights (T60, K)) of subject's sentence k."""
    sentence = make_sentence(rng_for(options.seed, subject.index, k, _STREAM_TEXT), subject.rate,
                             options.min_seconds, options.max_seconds)
    audio = synthesize(sentence, subject.voice, rng_for(options.seed, subject.index, k, _STREAM_VOICE))
    motion = animate(sentence, head, subject.style, STORAGE_FPS, rng_for(options.seed, subject.index, k, _STREAM_FACE))
    vertices = motion.vertices(head).reshape(len(motion.times), -1).astype(np.float32)
    return sentence, audio, vertices, motion.weights


def clear_previous(out: Path) -> None:
    """Delete the files an earlier run of this generator wrote (and nothing else), so no stale take survives."""
    for pattern in _OUR_FILES:
        for path in sorted(out.glob(pattern)):
            if path.is_file():
                path.unlink()


def _meta(options: CorpusOptions, top: Topology, reference: Head, subjects: list[Subject]) -> dict:
    return {
        "generator": "jambatalk synth-corpus", "format_version": FORMAT_VERSION, "options": asdict(options),
        "vertex_count": top.vertex_count, "face_count": int(len(top.faces)), "fps": STORAGE_FPS,
        "loader_fps": STORAGE_FPS / 2, "sample_rate": SAMPLE_RATE, "units": "metres",
        "axes": "y up, z forward (out of the face), +x the subject's left",
        "shape_names": list(SHAPE_NAMES), "landmarks": reference.landmarks,
        "lip_pairs": [[int(u), int(lo)] for u, lo in zip(top.mouth.upper, top.mouth.lower, strict=True)],
        "regions": {name: int(len(idx)) for name, idx in reference.regions.items()},
        "subjects": [{"name": s.name, "split": s.split, "sex": "F" if s.female else "M", "rate": round(s.rate, 4),
                      "head": asdict(s.head), "voice": asdict(s.voice), "articulation": asdict(s.style)}
                     for s in subjects],
    }


def _splits(options: CorpusOptions, subjects: list[Subject]) -> dict:
    ranges = {}
    for split in ("train", "val", "test"):
        ranges[split] = {"subjects": [s.name for s in subjects if s.split == split],
                         "sentences": [1, options.sentences]}
    return {**ranges, "fps": STORAGE_FPS, "sample_rate": SAMPLE_RATE,
            "note": "train subjects use all their sentences; val/test subjects are unseen speakers, all sentences"}


def generate_corpus(out: str | Path, options: CorpusOptions, progress: bool = True) -> CorpusSummary:
    """Write the whole corpus to `out` (created if needed) and return what was written."""
    from tqdm import tqdm

    options.validate()
    started = time.perf_counter()
    out = Path(out)
    for sub in ("wav", "vertices_npy", "phonemes", "mesh", "regions"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    top = build_topology(options.vertices)
    reference = build_head(top, HeadParams())
    subjects = make_subjects(options)
    summary = CorpusSummary(out, top.vertex_count, int(len(top.faces)), [s.name for s in subjects], options.sentences)

    templates = {}
    with tqdm(total=len(subjects) * options.sentences, desc="synth-corpus", unit="sentence",
              disable=not progress) as bar:
        for subject in subjects:
            head = build_head(top, subject.head)
            templates[subject.name] = head.template.astype(np.float32)
            write_obj(out / "mesh" / f"{subject.name}.obj", head.template, top.faces,
                      header=f"{subject.name}: neutral head generated by jambatalk synth-corpus (seed {options.seed})")
            seconds = 0.0
            for k in range(1, options.sentences + 1):
                sentence, audio, vertices, weights = generate_sentence(options, subject, head, k)
                name = sentence_name(subject, k, options.sentences)
                write_wav(out / "wav" / f"{name}.wav", audio, SAMPLE_RATE)
                write_npy(out / "vertices_npy" / f"{name}.npy", vertices)
                write_json(out / "phonemes" / f"{name}.json",
                           _phoneme_record(subject, k, sentence, weights, len(audio)))
                seconds += len(audio) / SAMPLE_RATE
                bar.update(1)
            summary.audio_seconds[subject.name] = seconds

    write_npz(out / "templates.npz", templates)
    for region, idx in reference.regions.items():
        write_indices(out / "regions" / f"{region}.txt", idx)
    meta = _meta(options, top, reference, subjects)
    write_json(out / "meta.json", meta)
    write_json(out / "splits.json", _splits(options, subjects))
    (out / "README.md").write_text(corpus_readme(meta, summary_seconds=summary.audio_seconds), encoding="utf-8",
                                   newline="\n")
    summary.bytes_written = sum(p.stat().st_size for pattern in _OUR_FILES for p in out.glob(pattern))
    summary.elapsed_seconds = time.perf_counter() - started
    return summary
