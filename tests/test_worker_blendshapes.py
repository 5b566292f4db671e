"""A worker serving a blendshape model: /health names its channels, jobs return weights (T, K) or vertices."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import pytest

from model_core.checkpoint import CheckpointInfo, save_checkpoint
from model_core.inference import Animator
from tests.conftest import make_model, tiny_config
from tests.worker_fixtures import encode, json_error, raw_request, speech, start_worker

NAMES = ["jawOpen", "mouthClose", "mouthFunnel", "eyeBlinkLeft"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp("bsworker")
    model = make_model(tiny_config(output_kind="blendshapes", blendshape_names=list(NAMES)), head_std=2.0)
    torch.nn.init.constant_(model.output_map.bias, 0.4)
    model.set_blendshape_basis(torch.randn(4, 40, 3, generator=torch.Generator().manual_seed(0)) * 0.01)
    blend = save_checkpoint(folder / "arkit.safetensors", model, CheckpointInfo(config=model.config))
    plain = save_checkpoint(folder / "plain.safetensors", make_model())
    worker = start_worker(blend, "--checkpoint", str(plain))
    yield worker, blend
    worker.stop()


def _run(worker, params: dict) -> tuple[np.ndarray, dict]:
    status, _, body = raw_request(worker, "POST", "/jobs", encode(speech(1.5)),
                                  {"X-JambaTalk-Params": json.dumps(params)})
    assert status == 202, body
    job = json.loads(body)["job"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _, _, reply = raw_request(worker, "GET", f"/jobs/{job}?wait=5")
        if json.loads(reply)["state"] in ("done", "failed", "cancelled"):
            break
    status, headers, payload = raw_request(worker, "GET", f"/jobs/{job}/result")
    assert status == 200, payload
    return np.load(io.BytesIO(payload), allow_pickle=False), headers


def test_health_names_output_kind_and_channels(served):
    worker, _ = served
    models = {m["name"]: m for m in worker.client.health()["models"]}
    assert models["arkit"]["output_kind"] == "blendshapes" and models["arkit"]["channels"] == NAMES
    assert models["arkit"]["outputs"] == ["vertices", "weights"]
    assert models["plain"]["output_kind"] == "vertices" and models["plain"]["channels"] == []


def test_weights_and_vertices_of_one_take_agree(served):
    worker, path = served
    weights, headers = _run(worker, {"model": "arkit", "output": "weights"})
    offsets, vheaders = _run(worker, {"model": "arkit"})
    animator = Animator(path, device="cpu")
    assert weights.shape == (offsets.shape[0], 4) and headers["x-jambatalk-channels"] == "4"
    assert headers["x-jambatalk-output"] == "weights" and vheaders["x-jambatalk-output"] == "vertices"
    assert weights.min() >= 0 and weights.max() <= 1
    assert np.allclose(animator.weights_to_offsets(weights), offsets, atol=1e-5)


def test_weights_through_the_file_hand_off(served):
    worker, _ = served
    status, _, body = raw_request(worker, "POST", "/jobs", encode(speech(1.0)),
                                  {"X-JambaTalk-Params": json.dumps({"model": "arkit", "output": "weights"})})
    job = json.loads(body)["job"]
    for _ in range(60):
        _, _, reply = raw_request(worker, "GET", f"/jobs/{job}?wait=5")
        if json.loads(reply)["state"] == "done":
            break
    status, _, reply = raw_request(worker, "GET", f"/jobs/{job}/result?via=file")
    info = json.loads(reply)
    assert status == 200 and info["output"] == "weights" and info["channels"] == 4
    array = np.load(Path(worker.ready["result_dir"]) / info["file"], allow_pickle=False)
    assert array.shape == (info["frames"], 4)


def test_weights_from_a_vertex_model_are_refused(served):
    worker, _ = served
    status, _, body = raw_request(worker, "POST", "/jobs", encode(speech(1.0)),
                                  {"X-JambaTalk-Params": json.dumps({"model": "plain", "output": "weights"})})
    assert status == 400 and "vertex offsets" in json_error(status, body)["message"]
    status, _, body = raw_request(worker, "POST", "/jobs", encode(speech(1.0)),
                                  {"X-JambaTalk-Params": json.dumps({"output": "mesh"})})
    assert status == 400 and "output" in json_error(status, body)["message"]
