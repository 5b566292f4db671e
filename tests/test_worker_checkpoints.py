"""Checkpoints a worker is handed are data from a file: every config field is range-checked at load, weights and
templates must be finite and well-shaped, and a result that is not finite fails its job (issue 11, item 6)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from model_core.checkpoint import TEMPLATE_KEY, CheckpointError, load_checkpoint, save_checkpoint
from model_core.worker.jobs import FAILED, JobBoard, JobRequest
from model_core.worker.models import ModelRegistry
from tests.conftest import make_model, speech_like


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ck") / "good.safetensors"
    return save_checkpoint(path, make_model(), template=np.zeros((40, 3), dtype=np.float32))


def rewrite(source: Path, target: Path, config: dict | None = None, raw_config: str | None = None,
            tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """A copy of `source` with config fields and tensors replaced, written without our own (validating) writer."""
    with safe_open(str(source), framework="pt") as f:
        meta = dict(f.metadata())
        weights = {k: f.get_tensor(k) for k in f.keys()}
    data = json.loads(meta["config"])
    data.update(config or {})
    meta["config"] = raw_config if raw_config is not None else json.dumps(data)
    weights.update(tensors or {})
    save_file(weights, str(target), metadata=meta)
    return target


BAD_FIELDS = [
    ({"motion_fps": float("nan")}, "motion_fps"),
    ({"motion_fps": float("inf")}, "motion_fps"),
    ({"motion_fps": 0}, "motion_fps"),
    ({"motion_fps": -30}, "motion_fps"),
    ({"motion_fps": 1e6}, "motion_fps"),
    ({"n_query_heads": 0}, "n_query_heads"),
    ({"vertex_count": True}, "vertex_count"),
    ({"feature_dim": 10**9}, "feature_dim"),
    ({"pattern": "M" * 20000}, "pattern"),
    ({"pattern": ["M"]}, "pattern"),
    ({"dropout": 1.5}, "dropout"),
    ({"style_names": ["a", "a"]}, "style_names"),
    ({"wav2vec2": {"hidden_size": 0}}, "wav2vec2.hidden_size"),
    ({"wav2vec2": {"hidden_size": 256, "num_hidden_layers": 100000}}, "wav2vec2.num_hidden_layers"),
    ({"wav2vec2": {"hidden_size": 256, "conv_dim": [128, 128], "conv_stride": [5]}}, "same length"),
]


@pytest.mark.parametrize("changes, field", BAD_FIELDS, ids=[f for _, f in BAD_FIELDS])
def test_bad_config_field_is_one_sentence_naming_file_and_field(good: Path, tmp_path: Path, changes: dict,
                                                                 field: str) -> None:
    bad = rewrite(good, tmp_path / "bad.safetensors", config=changes)
    started = time.monotonic()
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(bad)
    message = str(caught.value)
    assert time.monotonic() - started < 2.0  # refused from the config, before building anything
    assert str(bad) in message and field in message and message.endswith(".") and "\n" not in message


def test_deeply_nested_config_is_refused(good: Path, tmp_path: Path) -> None:
    deep = '{"wav2vec2": ' + "[" * 100_000 + "]" * 100_000 + "}"
    bad = rewrite(good, tmp_path / "deep.safetensors", raw_config=deep)
    with pytest.raises(CheckpointError, match="unreadable model config"):
        load_checkpoint(bad)


def test_non_finite_weights_are_refused(good: Path, tmp_path: Path) -> None:
    with safe_open(str(good), framework="pt") as f:
        key = next(k for k in f.keys() if k != TEMPLATE_KEY and f.get_tensor(k).is_floating_point())
        poisoned = f.get_tensor(key).clone()
    poisoned.view(-1)[0] = float("nan")
    bad = rewrite(good, tmp_path / "nan.safetensors", tensors={key: poisoned})
    with pytest.raises(CheckpointError, match=f"tensor {key} holds NaN or infinite values"):
        load_checkpoint(bad)


@pytest.mark.parametrize("template", [torch.zeros(10, 3), torch.full((40, 3), float("inf"))], ids=["10x3", "inf"])
def test_bad_template_is_refused(good: Path, tmp_path: Path, template: torch.Tensor) -> None:
    bad = rewrite(good, tmp_path / "template.safetensors", tensors={TEMPLATE_KEY: template})
    with pytest.raises(CheckpointError, match="bad template"):
        load_checkpoint(bad)


def test_worker_lists_an_invalid_checkpoint_as_failed_and_keeps_health_json(good: Path, tmp_path: Path) -> None:
    bad = rewrite(good, tmp_path / "nanfps.safetensors", config={"motion_fps": float("nan")})
    registry = ModelRegistry([good, bad], device="cpu")
    described = {m["name"]: m for m in registry.describe()}
    json.dumps(described, allow_nan=False)  # what /health sends: a NaN here made it answer 500
    assert described["good"]["state"] == "ready"
    assert described["nanfps"]["state"] == "failed" and "motion_fps" in described["nanfps"]["error"]


def test_non_finite_output_fails_the_job(tmp_path: Path) -> None:
    model = make_model()
    with torch.no_grad():
        model.vertice_map_r.bias.fill_(3e38)  # finite weights whose output overflows to infinity at strength 4
    path = save_checkpoint(tmp_path / "overflow.safetensors", model)
    registry = ModelRegistry([path], device="cpu")
    board = JobBoard(registry.animate)
    try:
        job, _ = board.submit(JobRequest(model="overflow", samples=speech_like(1.0), strength=4.0))
        deadline = time.monotonic() + 60
        while job.state not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        board.stop()
    assert job.state == FAILED and job.result is None
    assert "non-finite offsets" in job.error and job.error.endswith(".")
