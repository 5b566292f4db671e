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
    from model_core.evaluation.speech_scorecard import OPEN_VOWELS, class_mask
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
        jaw_pred = neutral[marks["chin"], 1] - pred[:, marks["chin"], 1]
        jaw_true = neutral[marks["chin"], 1] - truth[:, marks["chin"], 1]
        gap_pred = pred[:, marks["lip_upper"], 1] - pred[:, marks["lip_lower"], 1]
        rest_gap = neutral[marks["lip_upper"], 1] - neutral[marks["lip_lower"], 1]
        gap_true = truth[:, marks["lip_upper"], 1] - truth[:, marks["lip_lower"], 1]
        record = json.loads((corpus.root / "takes" / f"{take.name}.json").read_text(encoding="utf-8"))
        phones = [TimedPhone.from_json(p) for p in record["phones"]]
        closures = []
        for start, end in bilabial_closures(phones):
            a, b = int(np.floor(start * corpus.fps)) - 1, int(np.ceil(end * corpus.fps)) + 1
            window = gap_pred[max(0, a): min(n, b + 1)]
            if len(window):
                closures.append(float(window.min()))
        vowels = class_mask(phones, OPEN_VOWELS, corpus.fps, n)
        rows.append({"take": take.name, "voice": take.subject, "frames": n, "jaw_r": pearson(jaw_pred, jaw_true),
                     "jaw_true_max_mm": float(jaw_true.max() * 1000), "closure_gaps_mm": [c * 1000 for c in closures],
                     "open_vowel_frames": int(vowels.sum()),
                     "open_vowel_gap_mm": float((gap_pred[vowels] - rest_gap).mean() * 1000) if vowels.any() else 0.0,
                     "open_vowel_gap_true_mm": float((gap_true[vowels] - rest_gap).mean() * 1000) if vowels.any()
                     else 0.0})
    model = float(np.concatenate(model_lve).mean()) if model_lve else float("nan")
    static = float(np.concatenate(static_lve).mean()) if static_lve else float("nan")
    gaps = np.array([g for r in rows for g in r["closure_gaps_mm"]])
    jaw_r = np.array([r["jaw_r"] for r in rows if np.isfinite(r["jaw_r"])])
    vowel_frames = np.array([r["open_vowel_frames"] for r in rows], dtype=np.float64)
    vowel_gap, vowel_gap_true = (
        float(np.array([r[key] for r in rows]) @ vowel_frames / vowel_frames.sum()) if vowel_frames.sum() else 0.0
        for key in ("open_vowel_gap_mm", "open_vowel_gap_true_mm"))
    summary = {"takes": len(rows), "voices": sorted({r["voice"] for r in rows}), "lve_model_m2": model,
               "lve_static_m2": static, "lve_ratio": model / static if static else float("nan"),
               "jaw_r_mean": float(jaw_r.mean()) if len(jaw_r) else float("nan"),
               "jaw_r_median": float(np.median(jaw_r)) if len(jaw_r) else float("nan"),
               "closures": int(len(gaps)), "closures_within_1mm": float((gaps <= 1).mean()) if len(gaps) else 0.0,
               "closures_within_2mm": float((gaps <= 2).mean()) if len(gaps) else 0.0,
               "open_vowel_gap_mm": vowel_gap, "open_vowel_gap_true_mm": vowel_gap_true,
               "open_vowel_gap_ratio": vowel_gap / vowel_gap_true if vowel_gap_true > 0 else float("nan")}
    return {"split": split, "sources": list(sources), "summary": summary, "takes": rows}
