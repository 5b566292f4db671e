"""Score a model on a split: LVE, FDD, MVE (and the official validation vertex MSE), next to the static
template baseline (a model that predicts no motion). Used for validation during training and by
`jambatalk evaluate`.

Predictions use the inference rule (`int(T50 / 50 * fps)` frames, as the official `predict` and our Animator)
and are cut to the ground truth's length, as the reference metric scripts do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from model_core.data.dataset import Sample
from model_core.metrics import METRICS, MetricAccumulator, MetricScales, align
from model_core.model import JambaTalk


def style_vector(model: JambaTalk, subject: str, device: torch.device) -> torch.Tensor | None:
    """One-hot for a subject the model was trained on; None (the average style) for anyone else."""
    cfg = model.config
    if not cfg.style_embedding or subject not in cfg.style_names:
        return None
    vec = torch.zeros(1, len(cfg.style_names), device=device)
    vec[0, cfg.style_names.index(subject)] = 1.0
    return vec


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def predict_offsets(model: JambaTalk, audio: np.ndarray, style: torch.Tensor | None, device: torch.device,
                    autocast_dtype: torch.dtype | None = None) -> np.ndarray:
    """Normalised 16 kHz audio -> offsets (T, V*3) float32, one parallel pass (the model must be in eval mode)."""
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(device)[None]
    with autocast(device, autocast_dtype):
        offsets = model.decode(model.encode(x), style)
    return offsets[0].float().cpu().numpy()


@dataclass
class EvalResult:
    model: dict[str, float]
    baseline: dict[str, float]
    sequences: list[dict[str, Any]] = field(default_factory=list)


def evaluate_samples(
    model: JambaTalk,
    samples: Iterable[Sample],
    lips: np.ndarray | None,
    upper: np.ndarray | None,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
) -> EvalResult:
    """Metrics of the model and of the static template over `samples` (absolute positions, data units)."""
    was_training = model.training
    model.eval()
    ours, static = MetricAccumulator(lips, upper), MetricAccumulator(lips, upper)
    sequences, mse = [], []
    try:
        for sample in samples:
            style = style_vector(model, sample.subject, device)
            offsets = predict_offsets(model, sample.audio, style, device, autocast_dtype)
            template = sample.template.astype(np.float64)
            pred = offsets.astype(np.float64) + template[None]
            gt = sample.vertices.astype(np.float64)
            p, g = align(pred, gt)
            mse.append(float(((p - g) ** 2).mean()))
            row = {"take": sample.take.name, "subject": sample.subject, "vertex_mse": mse[-1]}
            row.update({f"model_{k}": v for k, v in ours.add(pred, gt, template).items()})
            still = np.broadcast_to(template, gt.shape)
            row.update({f"baseline_{k}": v for k, v in static.add(still, gt, template).items() if k != "frames"})
            sequences.append(row)
    finally:
        model.train(was_training)
    result = ours.result()
    result["vertex_mse"] = float(np.mean(mse)) if mse else float("nan")
    return EvalResult(result, static.result(), sequences)


def format_table(result: EvalResult, scales: MetricScales, units: str) -> str:
    """Rows LVE / FDD / MVE; columns scaled (as papers print) and raw, for the model and the baseline."""
    labels = {"lve": "LVE (max lip sq. error)", "fdd": "FDD (gt - pred, signed)", "mve": "MVE (mean L2 error)"}
    lines = [f"Scaled columns: value / scale ({scales.label}: {scales.header()}); raw columns in the data's units "
             f"({units}; LVE and FDD are squared units).",
             f"{'metric':<26}{'model (scaled)':>16}{'static (scaled)':>17}{'model (raw)':>14}{'static (raw)':>14}"]
    for metric in METRICS:
        if metric not in result.model:
            continue
        m, b = result.model[metric], result.baseline[metric]
        lines.append(f"{labels[metric]:<26}{scales.scaled(metric, m):>16.4f}{scales.scaled(metric, b):>17.4f}"
                     f"{m:>14.4e}{b:>14.4e}")
    if "lve" in result.model and result.model["lve"] > 0:
        lines.append(f"LVE ratio static / model: {result.baseline['lve'] / result.model['lve']:.2f}x")
    return "\n".join(lines)
