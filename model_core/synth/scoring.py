"""Score a checkpoint on the synthetic corpus with what an animator looks at, beside LVE.

- LVE (and FDD, MVE) of the model and of the static template, as `jambatalk evaluate` computes them;
- the jaw: Pearson correlation of the predicted chin-to-nose distance with the true one, per take;
- the lips: the predicted lip gap at the mouth centre during every bilabial closure (p, b, m), which the corpus
  records exactly. A closure counts as made when the predicted gap falls to `closed_mm` or less within one frame
  of the true closure interval (a frame of timing slack: 33 ms at 30 fps). The neutral mouth is closed, so a
  face that never moves would "make" every closure: the median gap where the true lips are apart says whether
  the mouth also opens.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_core.synth.measures import jaw_opening, lip_gap, load_meta

CLOSED_MM = 1.0
OPEN_MM = 2.0  # a closed neutral mouth also "makes" every closure: the open-mouth gap tells the two apart


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two equally long series; NaN when either is constant."""
    a = np.asarray(a, dtype=np.float64) - np.mean(a)
    b = np.asarray(b, dtype=np.float64) - np.mean(b)
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / denominator) if denominator > 0 else float("nan")


def closure_frames(start: float, release: float, fps: float, frames: int, slack: int = 1) -> np.ndarray:
    """Frame indices showing [start, release] seconds (frame k shows time k / fps), widened by `slack` frames."""
    first = max(0, math.floor(start * fps) - slack)
    last = min(frames - 1, math.ceil(release * fps) + slack)
    return np.arange(first, last + 1)


@dataclass
class TakeScore:
    take: str
    jaw_pearson: float
    lip_gap_pearson: float
    closure_pred_mm: list[float]  # predicted minimum lip gap in each closure window
    closure_true_mm: list[float]
    open_pred_mm: float  # median predicted lip gap on the frames where the true lips are apart by OPEN_MM or more
    open_true_mm: float

    def as_dict(self) -> dict[str, Any]:
        return {"take": self.take, "jaw_pearson": self.jaw_pearson, "lip_gap_pearson": self.lip_gap_pearson,
                "closure_pred_mm": self.closure_pred_mm, "closure_true_mm": self.closure_true_mm,
                "open_pred_mm": self.open_pred_mm, "open_true_mm": self.open_true_mm}


def score_take(name: str, pred: np.ndarray, true: np.ndarray, meta: dict[str, Any],
               closures: list[tuple[float, float]], fps: float) -> TakeScore:
    """pred, true: (T, V, 3) or (T, V*3) absolute vertices of the same length at `fps`."""
    gap_pred, gap_true = lip_gap(pred, meta), lip_gap(true, meta)
    pred_mm, true_mm = [], []
    for start, release in closures:
        window = closure_frames(start, release, fps, len(gap_true))
        if window.size == 0:
            continue  # the closure lies beyond the frames both sides share
        pred_mm.append(round(float(gap_pred[window].min()) * 1000.0, 3))
        true_mm.append(round(float(gap_true[window].min()) * 1000.0, 3))
    apart = gap_true * 1000.0 >= OPEN_MM
    open_pred = float(np.median(gap_pred[apart])) * 1000.0 if apart.any() else float("nan")
    open_true = float(np.median(gap_true[apart])) * 1000.0 if apart.any() else float("nan")
    return TakeScore(name, pearson(jaw_opening(pred, meta), jaw_opening(true, meta)), pearson(gap_pred, gap_true),
                     pred_mm, true_mm, open_pred, open_true)


def summarise(takes: list[TakeScore], closed_mm: float = CLOSED_MM) -> dict[str, Any]:
    jaw = np.array([t.jaw_pearson for t in takes])
    gap = np.array([t.lip_gap_pearson for t in takes])
    pred = np.array([v for t in takes for v in t.closure_pred_mm])
    true = np.array([v for t in takes for v in t.closure_true_mm])
    return {
        "takes": len(takes),
        "jaw_pearson_mean": float(np.nanmean(jaw)) if jaw.size else float("nan"),
        "jaw_pearson_median": float(np.nanmedian(jaw)) if jaw.size else float("nan"),
        "jaw_pearson_min": float(np.nanmin(jaw)) if jaw.size else float("nan"),
        "lip_gap_pearson_mean": float(np.nanmean(gap)) if gap.size else float("nan"),
        "bilabial_closures": int(pred.size),
        "closed_mm": closed_mm,
        "closures_made": float(np.mean(pred <= closed_mm)) if pred.size else float("nan"),
        "closures_within_2mm": float(np.mean(pred <= 2.0)) if pred.size else float("nan"),
        # Each closure against the same take's own open-mouth gap: "shut to under half of open".
        "closures_below_half_open": float(np.mean([v <= 0.5 * t.open_pred_mm for t in takes
                                                   for v in t.closure_pred_mm])) if pred.size else float("nan"),
        "closure_gap_pred_median_mm": float(np.median(pred)) if pred.size else float("nan"),
        "closure_gap_true_median_mm": float(np.median(true)) if true.size else float("nan"),
        "open_gap_pred_median_mm": float(np.nanmedian([t.open_pred_mm for t in takes])) if takes else float("nan"),
        "open_gap_true_median_mm": float(np.nanmedian([t.open_true_mm for t in takes])) if takes else float("nan"),
    }


def closures_of(corpus_dir: Path, take: str) -> list[tuple[float, float]]:
    record = json.loads((corpus_dir / "phonemes" / f"{take}.json").read_text(encoding="utf-8"))
    return [(float(a), float(b)) for a, b in record["bilabial_closures"]]


def score_checkpoint(checkpoint: str | Path, corpus_dir: str | Path, split: str = "test") -> dict[str, Any]:
    """Scores of a checkpoint on one split of a synthetic corpus: {'summary': ..., 'takes': [...]}."""
    import torch

    from model_core.checkpoint import load_checkpoint
    from model_core.data.dataset import MotionCorpus
    from model_core.metrics import MetricAccumulator, align
    from model_core.training.evaluate import predict_offsets

    corpus_dir = Path(corpus_dir)
    meta = load_meta(corpus_dir)
    corpus = MotionCorpus(corpus_dir, "synthetic", "synthetic", cache=False)
    lips, upper = corpus.masks()
    loaded = load_checkpoint(checkpoint)
    model = loaded.model.eval()
    if loaded.config.vertex_count != corpus.vertex_count:
        raise ValueError(f"{checkpoint} animates {loaded.config.vertex_count} vertices; the corpus has "
                         f"{corpus.vertex_count}.")
    ours, static = MetricAccumulator(lips.indices, upper.indices), MetricAccumulator(lips.indices, upper.indices)
    takes = []
    for take in corpus.split(split):
        sample = corpus.load(take)
        offsets = predict_offsets(model, sample.audio, None, torch.device("cpu"))
        template = sample.template.astype(np.float64)
        flat_pred, flat_true = offsets.astype(np.float64) + template[None], sample.vertices.astype(np.float64)
        ours.add(flat_pred, flat_true, template)
        static.add(np.broadcast_to(template, flat_true.shape), flat_true, template)
        pred, true = align(flat_pred, flat_true)
        takes.append(score_take(take.name, pred, true, meta, closures_of(corpus_dir, take.name), corpus.fps))
    model_metrics, baseline = ours.result(), static.result()
    summary = summarise(takes)
    summary.update({
        "split": split,
        "speakers": corpus.subjects(split),
        "lve": model_metrics["lve"],
        "lve_static": baseline["lve"],
        "lve_ratio": model_metrics["lve"] / baseline["lve"],
        "mve_mm": model_metrics["mve"] * 1000.0,
        "fdd": model_metrics["fdd"],
    })
    return {"checkpoint": Path(checkpoint).name, "summary": summary, "takes": [t.as_dict() for t in takes]}
