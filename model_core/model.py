"""JambaTalk: wav2vec 2.0 audio encoder -> hybrid Mamba / MoE-Mamba / Transformer decoder -> vertex offsets.

Read top to bottom: the decoder input is the audio itself (projected to feature_dim), every motion frame is
predicted in one parallel pass, and the output head maps features to per-vertex offsets that are added to a
neutral template. With shared weights (the official layout) one module per layer kind serves every
occurrence of its letter in the pattern, and parameter names equal the official ones.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Wav2Vec2Model

from model_core.audio_encoder import (
    build_wav2vec2,
    encode_audio,
    encode_audio_batch,
    motion_frames_for,
    window_span,
)
from model_core.config import LAYER_KINDS, JambaTalkConfig
from model_core.layers.attention import GQATransformerLayer
from model_core.layers.mamba import MambaLayer
from model_core.layers.moe_mamba import MoEMambaLayer


def build_layer(kind: str, config: JambaTalkConfig) -> nn.Module:
    """One decoder layer of kind M (Mamba), E (MoE-Mamba) or T (Transformer), shaped by the config."""
    if kind == "M":
        return MambaLayer(config.feature_dim, config.mamba_d_state, config.mamba_d_conv, config.mamba_expand)
    if kind == "E":
        return MoEMambaLayer(config)
    if kind == "T":
        return GQATransformerLayer(config)
    raise ValueError(f"Unknown layer kind {kind!r}.")


class JambaTalk(nn.Module):
    def __init__(self, config: JambaTalkConfig, wav2vec2: Wav2Vec2Model | None = None) -> None:
        super().__init__()
        self.config = config
        self.audio_encoder = wav2vec2 if wav2vec2 is not None else build_wav2vec2(config.wav2vec2)
        self.audio_feature_map = nn.Linear(config.audio_feature_in, config.feature_dim)
        self.style_embedding = (
            nn.Linear(len(config.style_names), config.feature_dim, bias=False) if config.style_embedding else None
        )
        if config.share_weights:
            for kind in dict.fromkeys(config.pattern):
                self.add_module(LAYER_KINDS[kind], build_layer(kind, config))
            self.layers = None
        else:
            self.layers = nn.ModuleList(build_layer(kind, config) for kind in config.pattern)
        if config.output_kind == "blendshapes":
            # K named weights; the basis (K, V*3) is data, not trained: it comes with the head asset.
            self.blendshape_map = nn.Linear(config.feature_dim, len(config.blendshape_names))
            self.register_buffer("blendshape_basis", torch.zeros(len(config.blendshape_names), config.vertex_dim))
        else:
            self.vertice_map_r = nn.Linear(config.feature_dim, config.vertex_dim)
        # Zero output head: an untrained model predicts the neutral face (official init).
        nn.init.zeros_(self.output_map.weight)
        nn.init.zeros_(self.output_map.bias)

    # -- structure -----------------------------------------------------------------------------
    @property
    def output_map(self) -> nn.Linear:
        """The last linear map: to vertex offsets (official `vertice_map_r`) or to blendshape weights."""
        return self.blendshape_map if self.config.output_kind == "blendshapes" else self.vertice_map_r

    @property
    def outputs_blendshapes(self) -> bool:
        return self.config.output_kind == "blendshapes"

    def set_blendshape_basis(self, basis: torch.Tensor) -> None:
        """(K, V, 3) or (K, V*3) deltas of the head, in blendshape_names order."""
        k, d = len(self.config.blendshape_names), self.config.vertex_dim
        basis = torch.as_tensor(basis, dtype=torch.float32).reshape(k, d)
        self.blendshape_basis.copy_(basis.to(self.blendshape_basis.device))

    def decoder_layers(self) -> list[nn.Module]:
        """The decoder modules in application order (the same instance repeats when weights are shared)."""
        if self.layers is not None:
            return list(self.layers)
        return [getattr(self, LAYER_KINDS[kind]) for kind in self.config.pattern]

    def moe_layers(self) -> list[MoEMambaLayer]:
        return [m for m in self.modules() if isinstance(m, MoEMambaLayer)]

    def set_moe_policy(self, policy: str) -> None:
        """Inference rule for the second expert: "expected" (default), "all" or "random" (official)."""
        for layer in self.moe_layers():
            layer.policy_eval = policy

    def set_backend(self, backend: str) -> None:
        """"auto" uses mamba-ssm / causal-conv1d kernels on CUDA when they import; "torch" never does."""
        if backend not in ("auto", "torch"):
            raise ValueError(f"Unknown backend {backend!r}: choose auto or torch.")
        for m in self.modules():
            if isinstance(m, MambaLayer):
                m.use_kernels = backend == "auto"

    def right_padding_breaks(self) -> str | None:
        """Why right-padded takes in one batched pass would not give each take's own result (None: they do).

        wav2vec2's masked encoder, masked attention, causal Mamba scans and per-token MoE routing are exact under
        right padding (the CNN runs per take; see `encode_audio_batch`). But an MoE expert with less capacity
        than tokens drops tokens by queue position, which padding shifts, and the random second-expert rule
        draws differently in a batch.
        """
        for layer in self.moe_layers():
            if layer.policy_eval == "random":
                return "the MoE's random second-expert rule draws differently in a batch"
            if layer.capacity_factor_eval < layer.moe.gate.num_experts:
                return "the MoE experts have less capacity than tokens, so padding changes which tokens they drop"
        return None

    def moe_aux_loss(self) -> torch.Tensor:
        """Sum of the MoE load-balancing losses of the last forward pass (0 when there is no MoE layer)."""
        losses = [m.aux_loss for m in self.moe_layers() if m.aux_loss is not None]
        return torch.stack(losses).sum() if losses else torch.zeros(())

    def motion_frames_for(self, num_samples: int) -> int:
        return motion_frames_for(num_samples, self.config.audio_frame_mode, self.config.motion_fps)

    # -- computation ---------------------------------------------------------------------------
    def encode(
        self,
        input_values: torch.Tensor,
        frame_count: int | None = None,
        frame_positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cfg = self.config
        return encode_audio(
            self.audio_encoder, input_values, cfg.audio_frame_mode, cfg.motion_fps, frame_count, frame_positions
        )

    def encode_window(self, input_values: torch.Tensor, start: int, end: int, total: int) -> torch.Tensor:
        """Features (batch, end - start, width) of motion frames start..end-1 of a take of `total` frames, from
        only the audio those frames depend on: in their interior, the same values as `encode` on the whole take."""
        first, last, positions = window_span(input_values.shape[1], self.config.audio_frame_mode, total, start, end)
        clip = input_values[:, first:last]
        if positions is None:
            return self.encode(clip)[:, : end - start]
        return self.encode(clip, frame_positions=positions.to(input_values.device))

    def encode_batch(self, takes: list[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
        """Normalised takes (each (samples,)) -> right-padded features (batch, T, width), each take's frame count."""
        return encode_audio_batch(self.audio_encoder, takes, self.config.audio_frame_mode, self.config.motion_fps)

    def decode(
        self,
        audio_features: torch.Tensor,
        style: torch.Tensor | None = None,
        intermediates: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Audio features (batch, T, width) -> offsets (batch, T, vertex_dim), for either output kind.

        `style` is (batch, n_styles) weights (a one-hot, or an average for an unseen speaker). When
        `intermediates` is a list, the output of each step is appended to it (for tests and debugging).
        """
        return self.channels_to_offsets(self.decode_channels(audio_features, style, intermediates))

    def channels_to_offsets(self, channels: torch.Tensor) -> torch.Tensor:
        """The output map's values -> offsets: as they are, or clamp(weights, 0, 1) @ basis."""
        if not self.outputs_blendshapes:
            return channels
        return channels.clamp(0.0, 1.0) @ self.blendshape_basis.to(channels.dtype)

    def decode_channels(
        self,
        audio_features: torch.Tensor,
        style: torch.Tensor | None = None,
        intermediates: list[torch.Tensor] | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Audio features -> the output map's values (batch, T, C): offsets, or raw (unclamped) weights.

        `key_mask` (batch, T), True on real frames, lets right-padded takes share a pass: attention layers ignore
        the padding and Mamba layers are causal, so it cannot reach a real frame (see `right_padding_breaks`).
        """
        x = self.audio_feature_map(audio_features)
        if self.style_embedding is not None:
            if style is None:
                n = self.style_embedding.in_features
                style = torch.full((x.shape[0], n), 1.0 / n, device=x.device, dtype=x.dtype)
            x = x + self.style_embedding(style.to(x.dtype))[:, None, :]
        if intermediates is not None:
            intermediates.append(x)
        for layer in self.decoder_layers():
            x = layer(x, key_mask) if isinstance(layer, GQATransformerLayer) else layer(x)
            if intermediates is not None:
                intermediates.append(x)
        return self.output_map(x)

    def forward(
        self,
        input_values: torch.Tensor,
        style: torch.Tensor | None = None,
        frame_count: int | None = None,
    ) -> torch.Tensor:
        """Normalised 16 kHz audio (batch, samples) -> vertex offsets (batch, T, V, 3)."""
        offsets = self.decode(self.encode(input_values, frame_count), style)
        return offsets.view(offsets.shape[0], offsets.shape[1], self.config.vertex_count, 3)
