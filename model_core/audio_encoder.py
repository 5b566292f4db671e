"""wav2vec 2.0 audio encoder with the official frame-rate rule: 50 Hz CNN features are resampled to the
motion frame rate *before* the feature projection and the transformer encoder (VOCASET), or the 50 Hz
encoder output is folded in frame pairs (BIWI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Wav2Vec2Config, Wav2Vec2Model

CNN_FPS = 50.0
CNN_HOP = 320  # samples between 50 Hz CNN frames at 16 kHz
CNN_FIELD = 400  # samples one CNN frame sees


def cnn_frame_count(num_samples: int) -> int:
    """Frames the XLSR/base CNN yields for a 16 kHz signal (receptive field 400, hop 320)."""
    return max(0, (num_samples - CNN_FIELD) // CNN_HOP + 1)


def official_motion_frames(cnn_frames: int, motion_fps: float) -> int:
    """The official inference length int(T50 / 50 * fps), truncated in floating point as released."""
    return int(cnn_frames / CNN_FPS * motion_fps)


def interpolate_frames(features: torch.Tensor, length: int) -> torch.Tensor:
    """Linear interpolation with align_corners=True along time of (batch, time, channels) (in float32 for 16-bit
    features, whose 8-bit fractions would blur the frame timing)."""
    out = F.interpolate(features.transpose(1, 2).float(), size=length, mode="linear", align_corners=True)
    return out.transpose(1, 2).to(features.dtype)


def build_wav2vec2(config: dict[str, Any], pretrained: str | Path | None = None) -> Wav2Vec2Model:
    """A wav2vec2 encoder from a config dict (random init), or pretrained weights from a local path / HF cache.

    Attention maps are never requested (the official forward forced them, which breaks sdpa attention and
    costs memory on long clips), so the fast attention implementation is always allowed.
    """
    if pretrained is not None:
        model = Wav2Vec2Model.from_pretrained(str(pretrained), local_files_only=True)
    else:
        cfg = Wav2Vec2Config(**config)
        model = Wav2Vec2Model(cfg)
    model.config.output_attentions = False
    return model


def interpolate_at(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of (batch, time, channels) at fractional frame `positions` (clamped to the ends).

    Used for windowed inference: every window samples the global frame grid of the whole clip, so a window
    yields the frames (and timing) the unwindowed pass would. Positions are float32, as in F.interpolate.
    """
    last = features.shape[1] - 1
    positions = positions.to(torch.float32).clamp(0, last)
    lower = positions.floor()
    frac = (positions - lower)[None, :, None]
    lower = lower.long()
    upper = (lower + 1).clamp(max=last)
    work = features.float()  # 16-bit features are blended in float32 too (a no-op for float32 ones)
    return (work[:, lower] * (1 - frac) + work[:, upper] * frac).to(features.dtype)


def grid_positions(cnn_frames: int, motion_frames: int, start: int, end: int) -> torch.Tensor:
    """CNN-frame positions of motion frames start..end-1 under the official align_corners rule.

    Computed in float32 exactly as F.interpolate does (scale = (in-1)/(out-1), position = scale * index),
    so windows reproduce the unwindowed pass bit for bit in their interior.
    """
    scale = torch.tensor(float(cnn_frames - 1), dtype=torch.float32) / max(motion_frames - 1, 1)
    if motion_frames <= 1:
        scale = torch.zeros((), dtype=torch.float32)
    return torch.arange(start, end, dtype=torch.float32) * scale


def window_span(num_samples: int, frame_mode: str, motion_frames: int, start: int,
                end: int) -> tuple[int, int, torch.Tensor | None]:
    """The audio samples [first, last) that motion frames start..end-1 of a take depend on, and (interpolate mode)
    those frames' CNN-frame positions counted from `first`'s CNN frame.

    fold_pairs: motion frame f is CNN frames 2f and 2f+1. interpolate: motion frame f sits at CNN frame
    f * (T50 - 1) / (T - 1), as in the unwindowed pass, so a window reproduces the whole take's frames.
    """
    if frame_mode == "fold_pairs":
        first, last = 2 * start, 2 * end - 1
        return first * CNN_HOP, last * CNN_HOP + CNN_FIELD, None
    cnn_total = cnn_frame_count(num_samples)
    positions = grid_positions(cnn_total, motion_frames, start, end)
    first = int(positions[0].floor())
    last = min(cnn_total - 1, int(positions[-1].ceil()))
    # Subtracting a whole number keeps float32 positions exact, so fractions equal the global ones.
    return first * CNN_HOP, last * CNN_HOP + CNN_FIELD, positions - first


def motion_frames_for(num_samples: int, frame_mode: str, motion_fps: float) -> int:
    """Motion frames the network predicts for `num_samples` of 16 kHz audio."""
    t50 = cnn_frame_count(num_samples)
    if frame_mode == "fold_pairs":
        return t50 // 2
    return official_motion_frames(t50, motion_fps)


def encode_audio(
    wav2vec2: Wav2Vec2Model,
    input_values: torch.Tensor,
    frame_mode: str,
    motion_fps: float,
    frame_count: int | None = None,
    frame_positions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalised 16 kHz audio (batch, samples) -> features (batch, T_motion, width) for the decoder.

    `frame_count` forces the motion-frame count (training aligns audio to ground-truth frames);
    `frame_positions` (interpolate mode) gives each motion frame's position in 50 Hz CNN frames instead. The
    wav2vec2 module is used as-is (not wrapped) so its parameters keep the official `audio_encoder.*` names.
    """
    features = wav2vec2.feature_extractor(input_values).transpose(1, 2)
    if frame_mode == "interpolate" and frame_positions is not None:
        features = interpolate_at(features, frame_positions)
    elif frame_mode == "interpolate":
        length = frame_count or official_motion_frames(features.shape[1], motion_fps)
        if length < 1:
            raise ValueError("The audio is too short to yield a single motion frame.")
        features = interpolate_frames(features, length)
    hidden = wav2vec2.feature_projection(features)
    hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    if wav2vec2.training and wav2vec2.config.apply_spec_augment:
        hidden = wav2vec2._mask_hidden_states(hidden)
    hidden = wav2vec2.encoder(hidden).last_hidden_state
    if frame_mode == "fold_pairs":
        pairs = hidden.shape[1] // 2
        if frame_count is not None:
            pairs = min(pairs, frame_count)
        hidden = hidden[:, : pairs * 2].reshape(hidden.shape[0], pairs, hidden.shape[2] * 2)
    return hidden


def encode_audio_batch(
    wav2vec2: Wav2Vec2Model,
    takes: list[torch.Tensor],
    frame_mode: str,
    motion_fps: float,
) -> tuple[torch.Tensor, list[int]]:
    """Several normalised takes (each (samples,)) -> right-padded (batch, T, width) features and each take's
    motion-frame count; frames past a take's count are padding.

    Each take gets the frames `encode_audio` gives it alone. The CNN runs per take: it never sees padding
    (whatever its norm), and on CPU a batched CNN is memory-bound and slower (docs/batch.md). The
    transformer encoder, where batching pays, runs once over the padded frames with the padding masked (and
    zeroed before its positional convolution, as that convolution's own padding is).
    """
    cnn = [wav2vec2.feature_extractor(take[None]).transpose(1, 2) for take in takes]
    cnn_counts = [c.shape[1] for c in cnn]
    if frame_mode == "interpolate":
        counts = [official_motion_frames(c, motion_fps) for c in cnn_counts]
        if min(counts) < 1:
            raise ValueError("The audio is too short to yield a single motion frame.")
        cnn = [interpolate_frames(c, t) for c, t in zip(cnn, counts, strict=True)]
        encoder_counts = counts
    else:
        counts = [c // 2 for c in cnn_counts]
        encoder_counts = cnn_counts
    width = max(encoder_counts)
    features = torch.cat([F.pad(c, (0, 0, 0, width - c.shape[1])) for c in cnn])
    mask = torch.arange(width, device=features.device)[None] < torch.tensor(encoder_counts,
                                                                          device=features.device)[:, None]
    hidden = wav2vec2.feature_projection(features)
    hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    hidden = wav2vec2.encoder(hidden, attention_mask=mask).last_hidden_state
    if frame_mode == "fold_pairs":
        pairs = max(counts)
        hidden = hidden[:, : pairs * 2].reshape(hidden.shape[0], pairs, hidden.shape[2] * 2)
    return hidden, counts
