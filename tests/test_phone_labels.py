"""Frame-level phone labels (data.phone_labels) and the phone probe's loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model_core.corpus.phones import TimedPhone
from model_core.data.dataset import Sample, Take, crop_sample
from model_core.data.phone_labels import PHONE_CLASSES, SILENCE_CLASS, frame_labels, phone_class, retime_labels
from model_core.training.batches import collate
from model_core.training.phone_probe import PhoneProbe, phone_losses


def test_each_frame_gets_the_phone_sounding_at_its_time_and_gaps_are_silence():
    phones = [{"symbol": "m", "start": 0.10, "end": 0.20}, {"symbol": "aa", "start": 0.20, "end": 0.40},
              TimedPhone("sil", 0.40, 0.50), TimedPhone("p", 0.60, 0.70)]
    labels = frame_labels(phones, 24, 30.0)  # frame i at i / 30 s
    m, aa, p = phone_class("m"), phone_class("aa"), phone_class("p")
    expected = [SILENCE_CLASS] * 3 + [m] * 3 + [aa] * 6 + [SILENCE_CLASS] * 6 + [p] * 3 + [SILENCE_CLASS] * 3
    assert labels.dtype == np.int64 and labels.tolist() == expected
    assert PHONE_CLASSES[SILENCE_CLASS] == "sil" and len(set(PHONE_CLASSES)) == len(PHONE_CLASSES) == 40


def test_a_symbol_outside_the_inventory_is_refused_by_name():
    with pytest.raises(ValueError, match="'AH0' is not a phone"):
        frame_labels([{"symbol": "AH0", "start": 0.0, "end": 0.1}], 3, 30.0)


def test_retiming_picks_the_nearest_frame_and_never_blends_classes():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert retime_labels(labels, 2.0, 4).tolist() == [0, 1, 2, 3]
    slow = retime_labels(labels, 0.5, 16)
    assert slow.tolist() == [labels[min(int(np.rint(j * 0.5)), 7)] for j in range(16)]
    assert set(slow.tolist()) <= set(labels.tolist())
    assert retime_labels(labels, 1.5, 8).tolist()[-2:] == [3, 3]  # past the end: the last frame


def test_crops_and_batches_carry_the_labels_of_their_frames():
    frames = 60
    phones = np.arange(frames)  # frame i labelled i: a crop must keep its own frames
    sample = Sample(Take("s_1", "s", 1, Path("x"), Path("y")), np.zeros(int(frames / 30 * 16000), np.float32),
                    np.zeros((frames, 6), np.float32), np.zeros(6, np.float32), 30.0, None, phones)
    crop = crop_sample(sample, 20, np.random.default_rng(3))
    start = int(crop.phones[0])
    assert crop.phones.tolist() == list(range(start, start + 20))
    batch = collate([crop, crop], None, torch.device("cpu"))[0]
    assert batch.phones.dtype == torch.long and batch.phones.shape == (2, 20)
    unlabelled = Sample(crop.take, crop.audio, crop.vertices, crop.template, 30.0)
    assert collate([crop, unlabelled], None, torch.device("cpu"))[0].phones is None


def test_the_probes_loss_is_cross_entropy_and_its_accuracy_counts_frames():
    torch.manual_seed(0)
    probe = PhoneProbe(8)
    features = torch.randn(2, 5, 8)
    labels = torch.randint(0, len(PHONE_CLASSES), (2, 5))
    logits = probe(features)
    ce, accuracy = phone_losses(logits, labels)
    by_hand = -torch.log_softmax(logits, -1).gather(-1, labels[..., None]).mean()
    assert torch.allclose(ce, by_hand) and logits.shape == (2, 5, len(PHONE_CLASSES))
    sure = torch.full((1, 3, len(PHONE_CLASSES)), -20.0)
    sure[0, [0, 1, 2], [4, 5, 9]] = 20.0
    assert float(phone_losses(sure, torch.tensor([[4, 5, 6]]))[1]) == pytest.approx(2 / 3)
