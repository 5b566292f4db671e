"""The high-level entry point: audio in, per-frame vertex offsets (T, V, 3) out, at the model's fps."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model_core import precision as precisions
from model_core.audio_io import DEFAULT_MAX_SECONDS, load_audio_file, normalise_for_wav2vec2, prepare_samples
from model_core.checkpoint import LoadedCheckpoint, load_checkpoint
from model_core.windowing import crossfade_weights, plan_windows

ProgressCallback = Callable[[float, str], None]


class JobCancelled(RuntimeError):
    """Raised at a window boundary when the caller asked to stop."""


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no CUDA GPU is available; use --device cpu.")
    return torch.device(device)


class Animator:
    """Loads a checkpoint once and turns audio into vertex offsets.

    Long takes run in windows of at most `window_seconds` that overlap by `overlap_seconds` and are
    cross-faded linearly, so memory stays bounded. Each window samples the global frame grid of the whole
    take, so a take that fits in one window is computed exactly as the official `predict` does.

    `precision` (model_core/precision.py) is resolved once; a bf16 or int8 Animator converts the checkpoint's
    model in place, so give it a model no one else uses.
    """

    def __init__(
        self,
        checkpoint: str | Path | LoadedCheckpoint,
        device: str = "auto",
        precision: str = "auto",
        backend: str = "auto",
        moe_policy: str | None = None,
        window_seconds: float = 20.0,
        overlap_seconds: float = 2.0,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ) -> None:
        loaded = checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)
        self.checkpoint = loaded
        self.device = resolve_device(device)
        # fp32, bf16, fp16 or int8 (model_core/precision.py): the audio encoder runs in it, the decoder in float32.
        self.precision = precisions.resolve(self.device, precision,
                                            precisions.accurate_paths(loaded.info.provenance))
        self.autocast_dtype = precisions.autocast_dtype(self.precision)
        self.encoder_dtype = precisions.encoder_dtype(self.precision)
        self.model = loaded.model.to(self.device).eval()
        precisions.prepare(self.model, self.precision, self.device)
        self.model.set_backend(backend)
        if moe_policy is not None:
            self.model.set_moe_policy(moe_policy)
        if overlap_seconds < 0 or window_seconds <= 2 * overlap_seconds:
            raise ValueError("window_seconds must be more than twice overlap_seconds.")
        self.window_seconds = window_seconds
        self.overlap_seconds = overlap_seconds
        self.max_seconds = max_seconds

    # -- what the model is ---------------------------------------------------------------------
    @property
    def fps(self) -> float:
        return self.model.config.motion_fps

    @property
    def vertex_count(self) -> int:
        return self.model.config.vertex_count

    @property
    def style_names(self) -> list[str]:
        return list(self.model.config.style_names) if self.model.config.style_embedding else []

    @property
    def template(self) -> np.ndarray | None:
        return self.checkpoint.template

    @property
    def output_kind(self) -> str:
        """"vertices" or "blendshapes" (then `blendshape_names` and `animate_weights*` apply too)."""
        return self.model.config.output_kind

    @property
    def blendshape_names(self) -> list[str]:
        return list(self.model.config.blendshape_names)

    @property
    def blendshape_basis(self) -> np.ndarray:
        """(K, V, 3) float32: offsets = weights @ basis (blendshape models only)."""
        self._require_blendshapes()
        return self.model.blendshape_basis.float().cpu().numpy().reshape(-1, self.vertex_count, 3)

    def weights_to_offsets(self, weights: np.ndarray) -> np.ndarray:
        """(T, K) weights -> (T, V, 3) offsets, exactly as the model maps them (clamped to 0..1)."""
        basis = self.blendshape_basis.reshape(len(self.blendshape_names), -1)
        w = np.clip(np.asarray(weights, dtype=np.float32), 0.0, 1.0)
        return (w @ basis).reshape(len(w), self.vertex_count, 3)

    def _require_blendshapes(self) -> None:
        if self.output_kind != "blendshapes":
            raise ValueError("This model outputs vertex offsets, not blendshape weights.")

    # -- entry points --------------------------------------------------------------------------
    def animate(
        self,
        samples: np.ndarray,
        sample_rate: int,
        subject: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """Any-rate, mono or multichannel, int or float PCM -> offsets (T, V, 3) float32 at `self.fps`."""
        audio = prepare_samples(samples, sample_rate, max_seconds=self.max_seconds)
        return self.animate_16k(audio.samples, subject, progress=progress, should_cancel=should_cancel)

    def animate_file(self, path: str | Path, subject: str | None = None, **kwargs) -> np.ndarray:
        audio = load_audio_file(path, max_seconds=self.max_seconds)
        return self.animate_16k(audio.samples, subject, **kwargs)

    def animate_16k(
        self,
        samples: np.ndarray,
        subject: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """Validated 16 kHz mono float samples -> offsets (T, V, 3), for every kind of model."""
        channels = self._animate_channels(samples, subject, progress, should_cancel)
        if self.output_kind == "blendshapes":
            return self.weights_to_offsets(channels)
        return channels.reshape(len(channels), self.vertex_count, 3)

    def animate_weights(self, samples: np.ndarray, sample_rate: int, subject: str | None = None,
                        **kwargs) -> np.ndarray:
        """Blendshape models: any PCM -> weights (T, K) in 0..1, named by `blendshape_names`."""
        audio = prepare_samples(samples, sample_rate, max_seconds=self.max_seconds)
        return self.animate_weights_16k(audio.samples, subject, **kwargs)

    def animate_weights_16k(
        self,
        samples: np.ndarray,
        subject: str | None = None,
        *,
        progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> np.ndarray:
        """Blendshape models: validated 16 kHz mono samples -> weights (T, K) float32 in 0..1."""
        self._require_blendshapes()
        return self._animate_channels(samples, subject, progress, should_cancel)

    def animate_batch_16k(self, takes: list[np.ndarray], subjects: list[str | None] | None = None) -> list[np.ndarray]:
        """Several validated 16 kHz takes -> each take's output: weights (T, K) for blendshape models (in 0..1),
        offsets (T, V, 3) for vertex models; the same as one take at a time, within float rounding.

        Takes that fit in one window share right-padded forward passes (masked; see
        `JambaTalk.right_padding_breaks`); where padding would change the result only takes of equal length share
        a pass. Longer takes are windowed one at a time.
        """
        subjects = list(subjects) if subjects is not None else [None] * len(takes)
        if len(subjects) != len(takes):
            raise ValueError("animate_batch_16k needs one subject (or None) per take.")
        window = max(1, round(self.window_seconds * self.fps))
        results: list[np.ndarray | None] = [None] * len(takes)
        groups: dict[int, list[int]] = {}
        exact_padding = self.model.right_padding_breaks() is None
        for i, take in enumerate(takes):
            if self.model.motion_frames_for(len(take)) > window:
                results[i] = self._animate_channels(take, subjects[i], None, None)
            else:
                groups.setdefault(0 if exact_padding else len(take), []).append(i)
        for members in groups.values():
            if len(members) == 1:
                results[members[0]] = self._animate_channels(takes[members[0]], subjects[members[0]], None, None)
                continue
            outputs = self._predict_padded([takes[i] for i in members], [subjects[i] for i in members])
            for i, out in zip(members, outputs, strict=True):
                results[i] = out
        if self.output_kind == "blendshapes":
            return results
        return [r.reshape(len(r), self.vertex_count, 3) for r in results]

    def _animate_channels(self, samples: np.ndarray, subject: str | None, progress: ProgressCallback | None,
                          should_cancel: Callable[[], bool] | None) -> np.ndarray:
        """(T, C): offsets flattened, or clamped weights (cross-faded weights map to cross-faded offsets)."""
        report = progress or (lambda fraction, stage: None)
        style = self._style_vector(subject)
        # Cast once for the whole take: the encoder's dtype (bfloat16 on the bf16 path), sliced per window below.
        audio = torch.from_numpy(normalise_for_wav2vec2(samples)).to(self.device, self.encoder_dtype)[None]
        total = self.model.motion_frames_for(audio.shape[1])
        if total < 1:
            raise ValueError("The audio is too short to animate (less than one motion frame).")
        window = max(1, round(self.window_seconds * self.fps))
        overlap = round(self.overlap_seconds * self.fps)
        windows = plan_windows(total, window, overlap)
        single = len(windows) == 1
        # One window is the whole output as it is; several are cross-faded into a zeroed buffer.
        out = None if single else np.zeros((total, self.model.config.output_channels), dtype=np.float32)
        # float32 weights: float64 ones promote every (window, V*3) product to a float64 temporary.
        weights = [w.astype(np.float32) for w in crossfade_weights(windows)]
        for index, ((start, end), weight) in enumerate(zip(windows, weights, strict=True)):
            if should_cancel is not None and should_cancel():
                raise JobCancelled("The job was cancelled.")
            report(index / len(windows), f"window {index + 1} of {len(windows)}")
            if single:
                out = self._predict(audio, style)
                break
            pred = self._predict(audio, style, (start, end, total))
            pred *= weight[:, None]  # in place: pred is this window's own fresh array
            out[start:end] += pred
        report(1.0, "done")
        return out

    # -- internals -----------------------------------------------------------------------------
    def _style_vector(self, subject: str | None) -> torch.Tensor | None:
        names = self.style_names
        if subject is None or subject == "":
            return None  # the model averages over its styles (unseen speaker)
        if not names:
            raise ValueError("This model has no subjects/styles to choose from; leave the subject empty.")
        if subject not in names:
            raise ValueError(f"Unknown subject {subject!r}; this model knows: {', '.join(names)}.")
        vec = torch.zeros(1, len(names), device=self.device)
        vec[0, names.index(subject)] = 1.0
        return vec

    def _autocast(self):
        """fp16 (CUDA) runs under autocast, which keeps the ops that need float32's range in float32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    @torch.inference_mode()
    def _predict(self, audio: torch.Tensor, style: torch.Tensor | None,
                 window: tuple[int, int, int] | None = None) -> np.ndarray:
        """(T, C) of the whole take, or of motion frames start..end-1 of its `total` for window=(start, end, total)."""
        with self._autocast():
            features = self.model.encode(audio) if window is None else self.model.encode_window(audio, *window)
        return self._channels(features, style)[0].cpu().numpy()

    @torch.inference_mode()
    def _predict_padded(self, takes: list[np.ndarray], subjects: list[str | None]) -> list[np.ndarray]:
        """Takes that fit in one window, right-padded into one pass -> each take's (T, C) channels."""
        audio = [torch.from_numpy(normalise_for_wav2vec2(take)).to(self.device, self.encoder_dtype) for take in takes]
        styles = [self._style_vector(s) for s in subjects]
        style = None
        if self.model.config.style_embedding:
            n = len(self.style_names)
            # The model's own choice for no subject: the average of its styles.
            style = torch.cat([s if s is not None else torch.full((1, n), 1.0 / n, device=self.device)
                               for s in styles])
        with self._autocast():
            features, frames = self.model.encode_batch(audio)
        key_mask = torch.arange(features.shape[1], device=self.device)[None] < torch.tensor(
            frames, device=self.device)[:, None]
        channels = self._channels(features, style, key_mask).cpu().numpy()
        return [channels[i, :t] for i, t in enumerate(frames)]

    def _channels(self, features: torch.Tensor, style: torch.Tensor | None,
                  key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder, always in float32: it is a small share of the time, and the output's precision (offsets of
        a few mm, weights in 0..1) is what the bake tolerance judges."""
        out = self.model.decode_channels(features.float(), style, key_mask=key_mask)
        return out.clamp(0.0, 1.0) if self.output_kind == "blendshapes" else out
