"""Phones -> ARKit-52 weights on the shipped head: ranges, exact bilabial closures, pauses at rest, speaker style."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.corpus.arkit_motion import (
    PHONE_TARGETS,
    SpeakingStyle,
    arkit_weights,
    bilabial_closures,
    frame_times,
    lip_gap_coefficients,
    random_style,
)
from model_core.corpus.phones import PHONES, SILENCE, TimedPhone, from_arpabet, merge_silences
from model_core.heads import load_head
from model_core.heads.cli import SHIPPED_HEAD


@pytest.fixture(scope="module")
def head():
    return load_head(SHIPPED_HEAD)


def _phones(spec: str, start: float = 0.0) -> list[TimedPhone]:
    """'sil:0.3 b:0.08 aa:0.15 ...' -> consecutive timed phones."""
    out, t = [], start
    for item in spec.split():
        sym, dur = item.split(":")
        out.append(TimedPhone(sym, t, t + float(dur)))
        t += float(dur)
    return out


def _run(head, phones, style=None, fps=60.0, seed=0):
    style = style or SpeakingStyle()
    gap = lip_gap_coefficients(head.blendshapes, head.landmarks["lip_upper"], head.landmarks["lip_lower"])
    rest = float(head.neutral[head.landmarks["lip_upper"], 1] - head.neutral[head.landmarks["lip_lower"], 1])
    w = arkit_weights(phones, phones[-1].end, fps, style, head.blendshape_names, gap, np.random.default_rng(seed),
                      rest_gap=rest)
    v = head.pose(w)
    lip_gap = v[:, head.landmarks["lip_upper"], 1] - v[:, head.landmarks["lip_lower"], 1]
    jaw = head.neutral[head.landmarks["chin"], 1] - v[:, head.landmarks["chin"], 1]
    return w, lip_gap, jaw, frame_times(phones[-1].end, fps)


def test_every_unified_phone_has_targets_and_arpabet_maps_onto_them():
    from model_core.corpus.arkit_motion import DIPHTHONGS

    assert set(PHONES) == set(PHONE_TARGETS) | set(DIPHTHONGS)
    assert from_arpabet("AH0") == "ah" and from_arpabet("AX") == "ah" and from_arpabet("pau") == SILENCE
    assert from_arpabet("+NSN+") == SILENCE and from_arpabet("EY1") == "ey"
    with pytest.raises(ValueError):
        from_arpabet("qq")
    merged = merge_silences([TimedPhone("sil", 0, 0.1), TimedPhone("sil", 0.1, 0.3), TimedPhone("aa", 0.3, 0.4)])
    assert [(p.symbol, p.start, p.end) for p in merged] == [("sil", 0, 0.3), ("aa", 0.3, 0.4)]


def test_weights_stay_in_arkit_range_and_bilabials_shut_the_lips(head):
    phones = _phones("sil:0.3 b:0.07 aa:0.16 m:0.09 ay:0.2 p:0.1 uw:0.14 sil:0.4 f:0.1 ao:0.2 sil:0.3")
    w, gap, jaw, t = _run(head, phones, random_style(np.random.default_rng(3)))
    assert w.shape == (len(t), 52) and w.dtype == np.float32
    assert w.min() >= 0.0 and w.max() <= 1.0
    for start, release in bilabial_closures(phones):
        inside = (t >= start) & (t <= release)
        assert inside.any() and np.abs(gap[inside]).max() < 1e-4  # closed to a tenth of a millimetre
    vowel = (t > 0.39) & (t < 0.5)  # inside "aa"
    assert gap[vowel].max() > 0.005 and jaw[vowel].max() > 0.004  # the mouth opens on an open vowel
    uw = (t > 0.96) & (t < 1.04)
    assert w[uw, head.blendshape_names.index("mouthPucker")].max() > 0.3
    f = (t > 1.48) & (t < 1.55)
    assert w[f, head.blendshape_names.index("mouthRollLower")].max() > 0.3


def test_long_pauses_rest_with_lips_together(head):
    phones = _phones("sil:0.5 aa:0.2 t:0.08 sil:0.8 eh:0.2 sil:0.5")
    w, gap, jaw, t = _run(head, phones)
    pause = (t > 0.9) & (t < 1.45)  # well inside the 0.8 s pause (0.78 to 1.58 s)
    assert np.abs(gap[pause]).max() < 2e-4 and np.abs(jaw[pause]).max() < 1e-3
    speech = w[:, head.blendshape_names.index("jawOpen")]
    assert speech[(t > 0.55) & (t < 0.65)].max() > 0.2


def test_anticipation_moves_lips_before_the_sound(head):
    phones = _phones("sil:0.4 aa:0.2 uw:0.2 sil:0.4")
    w, *_ , t = _run(head, phones, SpeakingStyle(anticipation=0.08))
    pucker = w[:, head.blendshape_names.index("mouthPucker")]
    assert pucker[(t > 0.5) & (t < 0.6)].max() > 0.1  # rounding starts inside the preceding vowel


def test_speaker_style_changes_amplitude_and_asymmetry(head):
    phones = _phones("sil:0.3 iy:0.2 aa:0.2 iy:0.2 sil:0.3")
    soft, *_ = _run(head, phones, SpeakingStyle(jaw_amp=0.8))
    loud, *_ = _run(head, phones, SpeakingStyle(jaw_amp=1.2))
    j = head.blendshape_names.index("jawOpen")
    assert loud[:, j].max() == pytest.approx(1.5 * soft[:, j].max(), rel=1e-3)
    skew, *_ = _run(head, phones, SpeakingStyle(asymmetry=0.1))
    left, right = (head.blendshape_names.index(n) for n in ("mouthStretchLeft", "mouthStretchRight"))
    assert skew[:, left].max() > skew[:, right].max() * 1.15


def test_same_seed_same_weights_and_blinks_come_from_their_own_stream(head):
    phones = _phones("sil:0.3 aa:0.2 sil:6.0")
    a, *_ = _run(head, phones, seed=5)
    b, *_ = _run(head, phones, seed=5)
    c, *_ = _run(head, phones, seed=6)
    blink = head.blendshape_names.index("eyeBlinkLeft")
    assert np.array_equal(a, b) and not np.array_equal(a[:, blink], c[:, blink])
    assert a[:, blink].max() > 0.4  # 6 s always holds a blink at these rates
    mouth = [head.blendshape_names.index(n) for n in ("jawOpen", "mouthFunnel", "mouthClose")]
    assert np.array_equal(a[:, mouth], c[:, mouth])


def test_a_head_without_arkit_names_is_refused(head):
    with pytest.raises(ValueError, match="ARKit"):
        arkit_weights(_phones("sil:0.2 aa:0.2"), 0.4, 30.0, SpeakingStyle(), ["jaw_open", "blink"],
                      np.array([0.01, 0.0]), np.random.default_rng(0))
