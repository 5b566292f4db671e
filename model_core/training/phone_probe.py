"""Training-only phone supervision of the audio encoder (`train.phone_weight`).

A linear layer reads the encoder's features at each motion frame and names the phone sounding there; its
cross-entropy against the corpus's phone labels (data.phone_labels) is added to the loss. The layer is not
part of the network a checkpoint stores (inference never needs it); it lives in the training state so a
resumed run continues it exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model_core.data.phone_labels import PHONE_CLASSES


class PhoneProbe(nn.Module):
    def __init__(self, feature_width: int) -> None:
        super().__init__()
        self.classify = nn.Linear(feature_width, len(PHONE_CLASSES))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder features (batch, T, width) -> phone logits (batch, T, classes)."""
        return self.classify(features)


def phone_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean cross-entropy, accuracy) over every frame; labels (batch, T) are class indices."""
    flat = logits.float().reshape(-1, logits.shape[-1])
    targets = labels.reshape(-1)
    ce = F.cross_entropy(flat, targets)
    accuracy = (flat.argmax(dim=-1) == targets).float().mean()
    return ce, accuracy
