"""Our checkpoint format: one .safetensors file, network weights under their own names plus a JSON config
in the metadata. Loading never unpickles anything."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from model_core.config import JambaTalkConfig
from model_core.model import JambaTalk

FORMAT_NAME = "jambatalk-checkpoint"
FORMAT_VERSION = 1
TEMPLATE_KEY = "__template__"
OWN_LICENCE = "Weights trained with JambaTalk for Blender; licence chosen by whoever trained them."


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message is one sentence a user can act on."""


@dataclass
class CheckpointInfo:
    """Everything a checkpoint says about itself besides the weights."""

    config: JambaTalkConfig
    licence: str = OWN_LICENCE
    provenance: dict[str, Any] = field(default_factory=dict)
    topology: str | None = None
    name: str = "jambatalk"
    # A blendshapes model's head: name, landmarks (name -> vertex index), licence and credits of the asset.
    head: dict[str, Any] = field(default_factory=dict)
    # Every training source with its licence and attribution (also in the model card).
    sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def landmarks(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.head.get("landmarks", {}).items()}

    def to_metadata(self) -> dict[str, str]:
        return {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "name": self.name,
            "config": self.config.to_json(),
            "motion_fps": str(self.config.motion_fps),
            "vertex_count": str(self.config.vertex_count),
            "style_names": json.dumps(self.config.style_names),
            "licence": self.licence,
            "provenance": json.dumps(self.provenance, sort_keys=True),
            "topology": self.topology or "",
            "output_kind": self.config.output_kind,
            "blendshape_names": json.dumps(self.config.blendshape_names),
            "head": json.dumps(self.head, sort_keys=True),
            "landmarks": json.dumps(self.landmarks, sort_keys=True),
            "sources": json.dumps(self.sources, sort_keys=True),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> CheckpointInfo:
        if meta.get("format") != FORMAT_NAME:
            raise CheckpointError(
                f"{source} is a safetensors file but not a JambaTalk checkpoint (no '{FORMAT_NAME}' metadata); "
                "convert official .pth files with 'jambatalk convert-official'."
            )
        version = int(meta.get("format_version", "0"))
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{source} uses checkpoint format {version}, newer than this JambaTalk ({FORMAT_VERSION}); update."
            )
        try:
            data = json.loads(meta["config"])
        except (KeyError, ValueError, TypeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise CheckpointError(f"{source} has an unreadable model config ({reason}).") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{source} has an unreadable model config (not a JSON object).")
        try:
            config = JambaTalkConfig.from_dict(data)
        except (ValueError, TypeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).rstrip(".")
            raise CheckpointError(f"{source} has an invalid model config: {reason}.") from None
        try:
            head = json.loads(meta.get("head") or "{}")
            sources = json.loads(meta.get("sources") or "[]")
            landmarks = head.get("landmarks", {}) if isinstance(head, dict) else None
            valid = isinstance(head, dict) and isinstance(sources, list) and isinstance(landmarks, dict) and all(
                isinstance(v, int) and 0 <= v < config.vertex_count for v in landmarks.values())
        except (ValueError, TypeError, RecursionError):
            valid = False
        if not valid:
            raise CheckpointError(f"{source} has unreadable head or source metadata (landmarks must be vertex "
                                  "indices of the model's mesh).")
        return cls(
            config=config,
            licence=meta.get("licence", OWN_LICENCE),
            provenance=json.loads(meta.get("provenance") or "{}"),
            topology=meta.get("topology") or None,
            name=meta.get("name", "jambatalk"),
            head=head,
            sources=sources,
        )


@dataclass
class LoadedCheckpoint:
    model: JambaTalk
    info: CheckpointInfo
    template: np.ndarray | None  # (V, 3) neutral face the model was trained around, when known

    @property
    def config(self) -> JambaTalkConfig:
        return self.info.config


def save_checkpoint(
    path: str | Path,
    model: JambaTalk,
    info: CheckpointInfo | None = None,
    template: np.ndarray | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write model weights + metadata atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    info = info or CheckpointInfo(config=model.config)
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    if template is not None:
        tmpl = np.asarray(template, dtype=np.float32).reshape(-1, 3)
        if tmpl.shape[0] != info.config.vertex_count:
            raise ValueError(f"Template has {tmpl.shape[0]} vertices; the model has {info.config.vertex_count}.")
        tensors[TEMPLATE_KEY] = torch.from_numpy(tmpl.copy())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=info.to_metadata())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """Read only the metadata (cheap: the weights are not loaded)."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({exc}).") from exc
    return CheckpointInfo.from_metadata(meta, str(path))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Build the network described by the file and load its weights (strict: every key must match)."""
    path = _existing(path)
    info = read_checkpoint_info(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is damaged: its tensors cannot be read ({exc}).") from exc
    template = tensors.pop(TEMPLATE_KEY, None)
    if template is not None and (tuple(template.shape) != (info.config.vertex_count, 3)
                                 or not template.is_floating_point() or not torch.isfinite(template).all()):
        count = info.config.vertex_count
        raise CheckpointError(f"{path} has a bad template: it must hold {count} finite vertex positions (shape "
                              f"[{count}, 3]); it has shape {list(template.shape)}.")
    for key, tensor in tensors.items():
        # NaN or infinite weights would give an all-NaN animation that looks like a result.
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path} is damaged: tensor {key} holds NaN or infinite values.")
    try:
        model = build_from_state_dict(info.config, tensors)
    except CheckpointError as exc:
        raise CheckpointError(f"{path} does not match its own config: {exc}") from None
    model.to(device).eval()
    return LoadedCheckpoint(model, info, None if template is None else template.numpy().astype(np.float32))


def build_from_state_dict(config: JambaTalkConfig, tensors: dict[str, torch.Tensor]) -> JambaTalk:
    """Build the network on the meta device and adopt the given tensors (no throw-away random init)."""
    with torch.device("meta"):
        model = JambaTalk(config)
    expected = model.state_dict()
    problems = describe_key_problems(
        {k: tuple(v.shape) for k, v in expected.items()}, {k: tuple(v.shape) for k, v in tensors.items()}
    )
    if problems:
        raise CheckpointError(problems)
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True, assign=True)
    leftovers = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftovers:
        raise CheckpointError(f"tensors missing after loading: {', '.join(leftovers[:5])}.")
    return model


def describe_key_problems(expected: dict[str, tuple], found: dict[str, tuple], limit: int = 5) -> str:
    """One sentence naming missing, unexpected and mis-shaped keys ('' when they match)."""

    def some(keys: list[str]) -> str:
        more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
        return ", ".join(keys[:limit]) + more

    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} {list(found[k])} (expected {list(expected[k])})"
              for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {some(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {some(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} wrong shape(s): {some(shapes)}")
    return "; ".join(parts) + ("." if parts else "")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    return path
