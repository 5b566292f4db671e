"""Shared fixtures: the reference folder beside the checkout, and small models the tests make themselves."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

from model_core.checkpoint import CheckpointInfo, LoadedCheckpoint
from model_core.config import JambaTalkConfig, preset
from model_core.model import JambaTalk
from tests.speech_audio import speech_like  # noqa: F401  (re-exported: many tests import it from here)

# Property tests draw the same examples on every run, so a CI result never depends on luck; set
# HYPOTHESIS_PROFILE=explore to search new ones locally.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
# The exact float32 path on every CPU, for this process and the workers it starts: references are compared within
# float rounding. The faster paths have tests of their own (tests/test_precision.py).
os.environ.setdefault("JAMBATALK_CPU_PRECISION", "fp32")
torch.set_num_threads(min(2, os.cpu_count() or 1))


def reference_dir() -> Path | None:
    env = os.environ.get("JAMBATALK_REFERENCE")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "reference", REPO / "shared" / "reference"]
    for c in candidates:
        if (c / "official_compat" / "golden_cases.safetensors").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def official_compat() -> Path:
    ref = reference_dir()
    if ref is None:
        pytest.skip("../shared/reference/official_compat is not beside this checkout (golden numbers unavailable)")
    return ref / "official_compat"


def tiny_config(**overrides) -> JambaTalkConfig:
    """The small preset with few vertices: fast enough for many tests."""
    base = {"vertex_count": 40}
    base.update(overrides)
    return preset("small", **base)


def make_model(config: JambaTalkConfig | None = None, seed: int = 0, head_std: float = 0.02) -> JambaTalk:
    torch.manual_seed(seed)
    model = JambaTalk(config or tiny_config())
    # The official output head starts at zero (no motion); tests need outputs that depend on the input.
    torch.nn.init.normal_(model.output_map.weight, std=head_std)
    return model.eval()


def loaded(model: JambaTalk, template: np.ndarray | None = None) -> LoadedCheckpoint:
    return LoadedCheckpoint(model, CheckpointInfo(config=model.config), template)
