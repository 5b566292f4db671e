"""The official lip-reading branch (SelfTalk's): training-only supervision of the lip motion.

Predicted lip offsets -> `lip_map` -> resampled to the ASR's 50 Hz frames -> a Transformer lip encoder ->
features that should match a frozen wav2vec2-CTC model's last hidden state (MSE), and logits that should
spell that model's own greedy transcript (CTC). The ASR model must be available locally; nothing is
downloaded. The frozen ASR runs in eval mode (the official code left it in train mode, so its dropout and
SpecAugment noised the targets; we keep the targets clean).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model_core.audio_encoder import interpolate_frames

_ASR_HINT = ("a local folder holding a transformers Wav2Vec2ForCTC (config.json + weights) and its processor "
             "(preprocessor_config.json, vocab.json, tokenizer files), e.g. a download of "
             "jonatasgrosman/wav2vec2-large-xlsr-53-english, the official choice")


class AsrTeacher:
    """A frozen Wav2Vec2ForCTC: hidden states and greedy pseudo-transcripts of the training audio."""

    def __init__(self, path: str | Path, device: torch.device | str = "cpu") -> None:
        from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

        path = Path(path)
        if not path.is_dir():
            raise ValueError(f"lip_reading.asr_model {path} does not exist; it must be {_ASR_HINT}.")
        try:
            self.model = Wav2Vec2ForCTC.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"No Wav2Vec2ForCTC model could be loaded from {path} ({exc}); it must be {_ASR_HINT}.") \
                from exc
        try:
            self.processor = Wav2Vec2Processor.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"No Wav2Vec2 processor/tokenizer could be loaded from {path} ({exc}); it must be "
                             f"{_ASR_HINT}.") from exc
        self.model.config.output_attentions = False
        self.model.eval().requires_grad_(False).to(device)
        self.blank = int(self.processor.tokenizer.pad_token_id or 0)
        self.vocab_size = int(self.model.config.vocab_size)
        self.hidden_size = int(self.model.config.hidden_size)

    @torch.no_grad()
    def __call__(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[list[int]]]:
        """Normalised 16 kHz audio (batch, samples) -> hidden (batch, T50, H) and token ids per item."""
        hidden = self.model.wav2vec2(audio).last_hidden_state
        ids = self.model.lm_head(hidden).argmax(dim=-1)
        texts = self.processor.batch_decode(ids.cpu())
        targets = [list(self.processor.tokenizer(text).input_ids) for text in texts]
        return hidden.float(), targets


class LipReader(nn.Module):
    """lip_map -> nn.Transformer(x, x) -> lm_head; parameter names as in the official code."""

    def __init__(self, lip_indices: np.ndarray, hidden: int, vocab_size: int, layers: int = 6, heads: int = 8,
                 ffn_dim: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"lip_reading.heads ({heads}) must divide the ASR model's hidden size ({hidden}).")
        # Duplicated indices are kept (the official FLAME mask has 254 entries, 250 unique).
        self.register_buffer("lips", torch.as_tensor(np.asarray(lip_indices), dtype=torch.long), persistent=False)
        self.lip_map = nn.Linear(len(lip_indices) * 3, hidden)
        self.transformer = nn.Transformer(d_model=hidden, nhead=heads, num_encoder_layers=layers,
                                          num_decoder_layers=layers, dim_feedforward=ffn_dim, dropout=dropout,
                                          batch_first=True)
        self.lm_head = nn.Linear(hidden, vocab_size)

    def forward(self, offsets: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets (batch, T, V*3), before the template is added -> features and logits at `length` frames."""
        b, t = offsets.shape[:2]
        lips = offsets.reshape(b, t, -1, 3)[:, :, self.lips].reshape(b, t, -1)
        x = interpolate_frames(self.lip_map(lips), length)
        features = self.transformer(x, x)
        return features, self.lm_head(features)


def lip_losses(features: torch.Tensor, logits: torch.Tensor, teacher_hidden: torch.Tensor,
               targets: list[list[int]], blank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature MSE, CTC) as the official training computes them (CTC: mean reduction, zero_infinity)."""
    feature_mse = F.mse_loss(features.float(), teacher_hidden.float())
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, batch, vocab)
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long, device=logits.device)
    input_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long, device=logits.device)
    ctc = F.ctc_loss(log_probs, flat, input_lengths, target_lengths, blank=blank, reduction="mean",
                     zero_infinity=True)
    return feature_mse, ctc
