"""Resumable training state without pickle: tensors in `state.safetensors`, everything else in `state.json`.

Saved: optimizer state (Adam moments, steps, param groups), extra trainable modules (the lip reader), the
RNG states (torch CPU and CUDA, numpy's global generator that transformers' SpecAugment draws from, and
Python's `random`), and the loop position (epoch, batches done in it, global step, best score ...).
The model weights live in `last.safetensors`; a token written into all three files ties them together so a
run interrupted while saving is detected instead of silently resumed from mismatched files.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
STATE_VERSION = 1


def new_token(step: int) -> str:
    return f"{step}-{secrets.token_hex(6)}"


# -- optimizer ---------------------------------------------------------------------------------------------
def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors under `optimizer.<param index>.<name>`; scalars and param groups as JSON."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entry in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entry)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -- random number generators -------------------------------------------------------------------------------
def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, internal, gauss_next = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(cached)],
            "python": [version, list(internal), gauss_next]}
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][: torch.cuda.device_count()])
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


# -- files ---------------------------------------------------------------------------------------------------
def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass
class TrainingState:
    token: str
    progress: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]

    def restore(self, optimizer: torch.optim.Optimizer, modules: dict[str, nn.Module]) -> None:
        """Load optimizer, extra modules and RNG states (call after the model weights are in place)."""
        for name, module in modules.items():
            prefix = f"module.{name}."
            weights = {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}
            if not weights:
                raise ValueError(f"The training state has no weights for '{name}'; was the run started without it?")
            module.load_state_dict(weights, strict=True)
        optimizer_from_flat(optimizer, self.tensors, self.meta["optimizer"])
        restore_rng(self.tensors, self.meta["rng"])


def save_training_state(
    folder: Path, token: str, optimizer: torch.optim.Optimizer, modules: dict[str, nn.Module], progress: dict
) -> None:
    """Write state.safetensors then state.json (each atomically); the JSON is the commit point."""
    tensors, opt_meta = optimizer_to_flat(optimizer)
    rng_tensors, rng_meta = capture_rng()
    tensors.update(rng_tensors)
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().cpu().contiguous()
    _atomic_write(folder / STATE_TENSORS, lambda tmp: save_file(tensors, tmp, metadata={"token": token}))
    doc = {"version": STATE_VERSION, "token": token, "progress": progress,
           "optimizer": opt_meta, "rng": rng_meta}
    text = json.dumps(doc, indent=1)
    _atomic_write(folder / STATE_JSON, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def load_training_state(folder: Path) -> TrainingState:
    json_path, tensor_path = folder / STATE_JSON, folder / STATE_TENSORS
    if not json_path.is_file() or not tensor_path.is_file():
        raise ValueError(f"{folder} holds no resumable training state ({STATE_JSON} + {STATE_TENSORS}); "
                         "start a new run instead of --resume.")
    doc = json.loads(json_path.read_text(encoding="utf-8"))
    if doc.get("version", 0) > STATE_VERSION:
        raise ValueError(f"{json_path} was written by a newer JambaTalk; update to resume it.")
    with safe_open(str(tensor_path), framework="pt", device="cpu") as f:
        token = (f.metadata() or {}).get("token")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if token != doc["token"]:
        raise ValueError(f"{tensor_path} and {json_path} are from different steps (was the run killed while "
                         "saving?); the run cannot be resumed exactly.")
    return TrainingState(doc["token"], doc["progress"], tensors, {"optimizer": doc["optimizer"], "rng": doc["rng"]})
