"""Data order and batches, derived from (seed, epoch, position) alone so a resumed run sees exactly the
takes and crops an uninterrupted one would, without storing any sampler state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model_core.data.dataset import Sample, crop_sample
from model_core.training.config import AugmentOptions


def epoch_order(seed: int, epoch: int, count: int) -> list[int]:
    """A fresh shuffle of the training takes for every epoch."""
    return [int(i) for i in np.random.default_rng([seed, epoch]).permutation(count)]


def epoch_batches(seed: int, epoch: int, count: int, batch_size: int) -> list[list[int]]:
    order = epoch_order(seed, epoch, count)
    return [order[i: i + batch_size] for i in range(0, count, batch_size)]


def crop_for(sample: Sample, max_seconds: float, seed: int, epoch: int, position: int,
             augment: AugmentOptions | None = None) -> Sample:
    """The training window of a take at this point of the run (the whole take when max_seconds is 0), augmented
    when `augment` is enabled (its draws also derive from (seed, epoch, position))."""
    if augment is not None and augment.enabled:
        from model_core.training.augment import augment_crop  # only augmenting runs import scipy's DSP

        return augment_crop(sample, max_seconds, augment, seed, epoch, position)[0]
    if max_seconds <= 0:
        return sample
    rng = np.random.default_rng([seed, epoch, position, 1])
    return crop_sample(sample, max(1, int(round(max_seconds * sample.fps))), rng)


@dataclass
class Batch:
    audio: torch.Tensor  # (B, samples) normalised 16 kHz
    motion: torch.Tensor  # (B, T, V*3) ground truth minus template
    style: torch.Tensor | None  # (B, n_styles) one-hot, or None without a style embedding
    subjects: list[str]
    weights: torch.Tensor | None = None  # (B, T, K) true blendshape weights, when the corpus stores them
    phones: torch.Tensor | None = None  # (B, T) phone classes, when the corpus knows every take's phones

    @property
    def size(self) -> int:
        return int(self.audio.shape[0])


def collate(samples: list[Sample], style_names: list[str] | None, device: torch.device) -> list[Batch]:
    """Stack samples of equal length into batches (crops usually are); unequal ones go in separate groups."""
    groups: dict[tuple[int, int], list[Sample]] = {}
    for s in samples:
        groups.setdefault((len(s.audio), s.frames), []).append(s)
    out = []
    for group in groups.values():
        audio = torch.from_numpy(np.stack([s.audio for s in group]).astype(np.float32))
        motion = np.stack([s.vertices.astype(np.float64) - s.template.astype(np.float64)[None] for s in group])
        style = None
        if style_names:
            style = torch.zeros(len(group), len(style_names))
            for row, s in enumerate(group):
                style[row, style_names.index(s.subject)] = 1.0
            style = style.to(device)
        weights = None
        if all(s.weights is not None for s in group):
            weights = torch.from_numpy(np.stack([s.weights for s in group]).astype(np.float32)).to(device)
        phones = None
        if all(s.phones is not None for s in group):
            phones = torch.from_numpy(np.stack([s.phones for s in group]).astype(np.int64)).to(device)
        out.append(Batch(audio.to(device), torch.from_numpy(motion.astype(np.float32)).to(device), style,
                         [s.subject for s in group], weights, phones))
    return out
