"""The demo take: a sentence the demo model never heard, spoken by one of its unseen test speakers, with the truth.

The demo model (models/demo/) is trained on the synthetic corpus `DEMO_CORPUS`; `DEMO_SPEAKER` is one of that
corpus's held-out test speakers. Sentence numbers above the corpus's 30 give new sentences, so the demo shows
the model on a voice, a face and words it was not trained on, and the generator's exact motion is the truth
the preview compares against.

    python -m model_core.synth.demo_take OUT [--seconds 6]   # OUT/demo.wav, demo_head.obj, demo_truth.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_core.heads.asset import write_obj
from model_core.synth.blendshapes import build_head
from model_core.synth.corpus import STORAGE_FPS, CorpusOptions, generate_sentence, make_subjects
from model_core.synth.files import write_wav
from model_core.synth.head import build_topology
from model_core.synth.measures import jaw_opening, lip_gap
from model_core.synth.motion import bilabial_closures
from model_core.synth.voice import SAMPLE_RATE

# The corpus the demo model is trained on (scripts/train_demo_model.py): 20 speakers (14 train, 3 validation,
# 3 test) x 30 sentences of 2-5 s on a 3033-vertex head.
DEMO_CORPUS = CorpusOptions(seed=0, subjects=20, sentences=30, min_seconds=2.0, max_seconds=5.0, vertices=3000)
DEMO_SPEAKER = "Synth_18_F"
DEMO_SENTENCE = 1001  # the corpus has sentences 1-30: this one is new
MOTION_FPS = STORAGE_FPS / 2  # the model's 30 fps (the corpus stores 60)


@dataclass
class DemoTake:
    speaker: str
    sentence: int
    audio: np.ndarray  # (S,) float32 at SAMPLE_RATE
    template: np.ndarray  # (V, 3) neutral head, metres, y up, z forward
    faces: np.ndarray  # (F, 3) vertex indices
    vertices: np.ndarray  # (T, V, 3) true motion at MOTION_FPS
    landmarks: dict[str, int]
    closures: list[tuple[float, float]]  # bilabial closures (start, release) in seconds
    phones: list[dict[str, Any]]

    def truth(self) -> dict[str, Any]:
        """What the preview plots: per-frame jaw opening and lip gap (mm), closures and phones."""
        meta = {"vertex_count": int(self.template.shape[0]), "landmarks": self.landmarks}
        return {
            "speaker": self.speaker, "sentence": self.sentence, "fps": MOTION_FPS,
            "frames": int(self.vertices.shape[0]), "seconds": len(self.audio) / SAMPLE_RATE,
            "vertex_count": int(self.template.shape[0]), "landmarks": self.landmarks,
            "jaw_opening_mm": (jaw_opening(self.vertices, meta, self.template) * 1000.0).round(4).tolist(),
            "lip_gap_mm": (lip_gap(self.vertices, meta) * 1000.0).round(4).tolist(),
            "bilabial_closures": [[round(a, 4), round(b, 4)] for a, b in self.closures],
            "phones": self.phones, "truth_label": "truth (synthetic speaker)",
            "title": f"an unseen synthetic speaker ({self.speaker}), a new sentence",
        }


def make_demo_take(seconds: float = 6.0, sentence: int = DEMO_SENTENCE, speaker: str = DEMO_SPEAKER) -> DemoTake:
    """Generate the take (deterministic: the same arguments give the same audio and motion)."""
    if not 1.0 <= seconds <= 60.0:
        raise ValueError(f"The demo take must last 1 to 60 seconds (got {seconds}).")
    options = dataclasses.replace(DEMO_CORPUS, min_seconds=seconds, max_seconds=seconds)
    subjects = {s.name: s for s in make_subjects(options)}
    if speaker not in subjects:
        raise ValueError(f"No speaker {speaker} in the demo corpus; choose one of {', '.join(subjects)}.")
    subject = subjects[speaker]
    topology = build_topology(options.vertices)
    head = build_head(topology, subject.head)
    spoken, audio, vertices, _ = generate_sentence(options, subject, head, sentence)
    frames = vertices.reshape(len(vertices), -1, 3)[::2]  # 60 -> 30 fps, as the corpus loaders do
    phones = [{"symbol": p.symbol, "start": p.start, "end": p.end} for p in spoken.phones]
    return DemoTake(speaker, sentence, audio.astype(np.float32), head.template.astype(np.float32),
                    np.asarray(topology.faces), frames.astype(np.float32), dict(head.landmarks),
                    bilabial_closures(spoken), phones)


def write_demo_take(out: str | Path, seconds: float = 6.0) -> dict[str, Path]:
    """OUT/demo.wav (16-bit PCM), OUT/demo_head.obj (the speaker's neutral head), OUT/demo_truth.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    take = make_demo_take(seconds)
    paths = {"audio": out / "demo.wav", "head": out / "demo_head.obj", "truth": out / "demo_truth.json"}
    write_wav(paths["audio"], take.audio, SAMPLE_RATE)
    write_obj(paths["head"], take.template, take.faces,
              header=f"{take.speaker}: neutral head of an unseen test speaker of the JambaTalk demo corpus")
    paths["truth"].write_text(json.dumps(take.truth()) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the demo take: audio, head mesh and true motion curves.")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the utterance (default 6)")
    args = parser.parse_args(argv)
    for kind, path in write_demo_take(args.out, args.seconds).items():
        print(f"[demo] {kind:<5} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
