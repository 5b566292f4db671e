"""Our safetensors checkpoint format: round trips, metadata, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from model_core.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from model_core.official import OFFICIAL_LICENCE, convert_official
from tests.conftest import make_model, tiny_config


def test_round_trip_keeps_weights_config_template_and_metadata(tmp_path):
    config = tiny_config(style_names=["a", "b"], style_embedding=True)
    model = make_model(config)
    template = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    info = CheckpointInfo(config=config, licence="CC0", provenance={"trained_on": "synthetic"}, name="t")
    path = save_checkpoint(tmp_path / "m.safetensors", model, info, template=template)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "jambatalk-checkpoint" and meta["vertex_count"] == "40"
    assert json.loads(meta["style_names"]) == ["a", "b"]
    loaded = load_checkpoint(path)
    assert loaded.config == config
    assert loaded.info.licence == "CC0" and loaded.info.provenance == {"trained_on": "synthetic"}
    np.testing.assert_array_equal(loaded.template, template)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    assert read_checkpoint_info(path).name == "t"
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_loading_gives_the_same_predictions(tmp_path):
    model = make_model()
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    audio = torch.randn(1, 20000)
    with torch.no_grad():
        assert torch.equal(load_checkpoint(path).model(audio), model(audio))


def test_template_with_wrong_vertex_count_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Template has 7 vertices; the model has 40"):
        save_checkpoint(tmp_path / "m.safetensors", make_model(), template=np.zeros((7, 3)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable safetensors checkpoint"),
        (b"\x80\x04\x95 pickle bytes, not safetensors", "not a readable safetensors checkpoint"),
    ],
)
def test_bad_files_give_one_sentence(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_missing_file_and_foreign_safetensors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    save_file({"x": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not a JambaTalk checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")


def test_weights_that_disagree_with_the_config_are_named(tmp_path):
    model = make_model()
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["vertice_map_r.bias"] = torch.zeros(5)
    del tensors["mamba.D"]
    save_file(tensors, tmp_path / "broken.safetensors", metadata=meta)
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): mamba\.D.*vertice_map_r\.bias \[5\]"):
        load_checkpoint(tmp_path / "broken.safetensors")


def test_convert_official_refuses_non_checkpoints_in_one_sentence(tmp_path):
    junk = tmp_path / "vocaset.pth"
    junk.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError) as err:
        convert_official(junk, tmp_path / "out.safetensors")
    message = str(err.value)
    assert "not a readable PyTorch checkpoint" in message and "\n" not in message
    with pytest.raises(CheckpointError, match="does not exist"):
        convert_official(tmp_path / "missing.pth", tmp_path / "out.safetensors")


def test_convert_official_refuses_pickled_objects(tmp_path):
    """weights_only=True: a .pth holding arbitrary Python objects is refused, not executed."""
    evil = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "object": _Unpicklable()}, evil)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        convert_official(evil, tmp_path / "out.safetensors")


def test_convert_official_unwraps_and_records_licence(tmp_path):
    config = tiny_config(pattern="METEME", n_query_heads=8, n_kv_heads=8)
    model = make_model(config)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    out = convert_official(tmp_path / "wrapped.pth", tmp_path / "ours.safetensors", config=config)
    loaded = load_checkpoint(out)
    assert loaded.info.licence == OFFICIAL_LICENCE and "CC BY-NC 4.0" in loaded.info.licence
    assert loaded.info.provenance["converted_from"] == "wrapped.pth"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


class _Unpicklable:
    """Any custom class: weights_only loading must refuse it."""
