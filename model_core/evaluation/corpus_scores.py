"""Scores of a checkpoint on a blendshape corpus's held-out synthetic voices: what an animator looks at.

Per take of the chosen sources in the split: LVE against the truth (and against the static template, the
model that never moves), the Pearson r of the jaw opening (chin drop) against the truth, the lip gap at
bilabial closures, and the lip gap on open vowels against the truth's (a model that closes p, b and m by keeping
the mouth nearly shut shows here). Truth and prediction are meshes of the take's own speaker (the corpus
reader's vertices).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.metrics import lve_per_frame
from model_core.synth.scoring import pearson


def score_corpus_split(checkpoint: str | Path, corpus_dir: str | Path, split: str = "test",
                       sources: tuple[str, ...] = ("festival", "flite", "formant"), limit: int = 0) -> dict:
    import json

    from model_core.corpus.arkit_motion import bilabial_closures
    from model_core.corpus.phones import TimedPhone
    from model_core.data.blendshape_corpus import BlendshapeCorpus
    from model_core.evaluation.speech_scorecard import OPEN_VOWELS, class_mask, mouth_tracks
    from model_core.inference import Animator

    corpus = BlendshapeCorpus(corpus_dir, cache=False)
    animator = Animator(checkpoint, device="cpu", precision="fp32")
    lips, _ = corpus.masks()
    marks = corpus.head.landmarks
    rows, model_lve, static_lve = [], [], []
    takes = [t for t in corpus.split(split) if json.loads((corpus.root / "takes" / f"{t.name}.json").read_text(
        encoding="utf-8"))["source"] in sources]
    for take in takes[: limit or None]:
        sample = corpus.load(take)
        truth = sample.vertices.reshape(sample.frames, -1, 3)
        neutral = sample.template.reshape(-1, 3)
        pred = animator.animate_16k(sample.audio) + neutral[None]
        n = min(len(pred), len(truth))
        pred, truth = pred[:n], truth[:n]
        model_lve.append(lve_per_frame(pred, truth, lips.indices))
        static_lve.append(lve_per_frame(np.repeat(neutral[None], n, axis=0), truth, lips.indices))
        # The scorecard's own tracks (mm): jaw drop, and the lip gap relative to the neutral's.
        mine, true = (mouth_tracks(v, neutral, marks, corpus.fps) for v in (pred, truth))
        rest_gap_mm = (neutral[marks["lip_upper"], 1] - neutral[marks["lip_lower"], 1]) * 1000
        record = json.loads((corpus.root / "takes" / f"{take.name}.json").read_text(encoding="utf-8"))
        phones = [TimedPhone.from_json(p) for p in record["phones"]]
        closures = []  # the smallest absolute lip gap (mm) around each closure
        for start, end in bilabial_closures(phones):
            a, b = int(np.floor(start * corpus.fps)) - 1, int(np.ceil(end * corpus.fps)) + 1
            window = mine.lip_gap_mm[max(0, a): min(n, b + 1)]
            if len(window):
                closures.append(float(window.min()) + rest_gap_mm)
        vowels = class_mask(phones, OPEN_VOWELS, corpus.fps, n)
        rows.append({"take": take.name, "voice": take.subject, "frames": n,
                     "jaw_r": pearson(mine.jaw_mm, true.jaw_mm), "jaw_true_max_mm": float(true.jaw_mm.max()),
                     "closure_gaps_mm": closures, "open_vowel_frames": int(vowels.sum()),
                     "open_vowel_gap_mm": float(mine.lip_gap_mm[vowels].mean()) if vowels.any() else 0.0,
                     "open_vowel_gap_true_mm": float(true.lip_gap_mm[vowels].mean()) if vowels.any() else 0.0})
    model = float(np.concatenate(model_lve).mean()) if model_lve else float("nan")
    static = float(np.concatenate(static_lve).mean()) if static_lve else float("nan")
    gaps = np.array([g for r in rows for g in r["closure_gaps_mm"]])
    jaw_r = np.array([r["jaw_r"] for r in rows if np.isfinite(r["jaw_r"])])
    vowel_frames = [r["open_vowel_frames"] for r in rows]

    def over_vowel_frames(key: str) -> float:
        return float(np.average([r[key] for r in rows], weights=vowel_frames)) if sum(vowel_frames) else 0.0

    vowel_gap, vowel_gap_true = over_vowel_frames("open_vowel_gap_mm"), over_vowel_frames("open_vowel_gap_true_mm")
    summary = {"takes": len(rows), "voices": sorted({r["voice"] for r in rows}), "lve_model_m2": model,
               "lve_static_m2": static, "lve_ratio": model / static if static else float("nan"),
               "jaw_r_mean": float(jaw_r.mean()) if len(jaw_r) else float("nan"),
               "jaw_r_median": float(np.median(jaw_r)) if len(jaw_r) else float("nan"),
               "closures": int(len(gaps)), "closures_within_1mm": float((gaps <= 1).mean()) if len(gaps) else 0.0,
               "closures_within_2mm": float((gaps <= 2).mean()) if len(gaps) else 0.0,
               "open_vowel_gap_mm": vowel_gap, "open_vowel_gap_true_mm": vowel_gap_true,
               "open_vowel_gap_ratio": vowel_gap / vowel_gap_true if vowel_gap_true > 0 else float("nan")}
    return {"split": split, "sources": list(sources), "summary": summary, "takes": rows}
