"""The demo-model scores (jaw correlation, bilabial closures, LVE ratio) on a tiny generated corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_core.checkpoint import save_checkpoint
from model_core.synth.corpus import CorpusOptions, generate_corpus
from model_core.synth.measures import load_meta
from model_core.synth.scoring import closure_frames, closures_of, pearson, score_checkpoint, score_take, summarise
from tests.conftest import make_model, tiny_config

TINY = CorpusOptions(seed=3, subjects=3, sentences=2, min_seconds=2.0, max_seconds=2.5, vertices=600)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scoring-corpus")
    generate_corpus(out, TINY, progress=False)
    return out


def _take(corpus: Path, name: str) -> np.ndarray:
    return np.load(corpus / "vertices_npy" / f"{name}.npy")[::2]  # 60 -> 30 fps, as the loader does


def test_pearson_and_closure_windows():
    x = np.linspace(0.0, 1.0, 50)
    assert pearson(x, 3 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert np.isnan(pearson(x, np.ones_like(x)))
    # 0.10-0.20 s at 30 fps shows frames 3..6; one frame of slack each side, clipped to the take.
    assert closure_frames(0.10, 0.20, 30.0, 100).tolist() == [2, 3, 4, 5, 6, 7]
    assert closure_frames(0.0, 0.05, 30.0, 100).tolist() == [0, 1, 2, 3]


def test_truth_scores_perfectly_and_a_still_face_never_opens(corpus):
    meta = load_meta(corpus)
    name = "Synth_03_M_sentence01"  # the test speaker
    true = _take(corpus, name)
    closures = closures_of(corpus, name)
    assert closures, "the generator puts bilabials in every sentence"
    perfect = score_take(name, true, true, meta, closures, 30.0)
    assert perfect.jaw_pearson == pytest.approx(1.0)
    assert all(v <= 0.01 for v in perfect.closure_pred_mm)

    templates = np.load(corpus / "templates.npz", allow_pickle=False)
    still = np.broadcast_to(templates["Synth_03_M"].reshape(1, -1), true.shape)
    frozen = score_take(name, still, true, meta, closures, 30.0)
    # The neutral mouth is shut: a still face "makes" every closure but never opens.
    assert frozen.closure_pred_mm == pytest.approx([0.0] * len(closures), abs=1e-6)
    assert frozen.open_pred_mm == pytest.approx(0.0, abs=1e-6) and perfect.open_true_mm > 2.0
    assert perfect.open_pred_mm == pytest.approx(perfect.open_true_mm)
    summary = summarise([perfect, frozen])
    assert summary["closures_made"] == pytest.approx(1.0)
    assert summary["open_gap_pred_median_mm"] == pytest.approx(perfect.open_true_mm / 2)


def test_score_checkpoint_reports_lve_against_the_static_template(corpus, tmp_path):
    meta = json.loads((corpus / "meta.json").read_text())
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, make_model(tiny_config(vertex_count=meta["vertex_count"])))
    report = score_checkpoint(path, corpus, split="test")
    summary = report["summary"]
    assert summary["speakers"] == ["Synth_03_M"] and summary["takes"] == 2 == len(report["takes"])
    assert summary["lve_ratio"] == pytest.approx(summary["lve"] / summary["lve_static"])
    assert summary["lve_static"] > 0 and summary["bilabial_closures"] > 0
    assert -1.0 <= summary["jaw_pearson_mean"] <= 1.0
