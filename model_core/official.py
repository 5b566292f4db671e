"""Convert the official JambaTalk release (`vocaset.pth`, `biwi.pth`) into our safetensors checkpoint.

The official files are plain state dicts written by torch.save; they are read with
torch.load(weights_only=True), which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

from pathlib import Path

import torch

from model_core.checkpoint import (
    CheckpointError,
    CheckpointInfo,
    build_from_state_dict,
    describe_key_problems,
    save_checkpoint,
)
from model_core.config import JambaTalkConfig, preset
from model_core.model import JambaTalk

OFFICIAL_LICENCE = (
    "Official JambaTalk weights (Jafari, Berretti, Basu; github.com/FarzanehJafari1987/JambaTalk), "
    "licensed CC BY-NC 4.0 (https://creativecommons.org/licenses/by-nc/4.0/): attribution required, "
    "non-commercial use only."
)
# Parts of the official model used only in training: the frozen CTC text encoder and the lip reader.
TRAINING_ONLY_PREFIXES = ("text_encoder.", "transformer.", "lip_map.", "lm_head.")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
# Older torch/transformers stored the pos-conv weight norm as weight_g / weight_v.
LEGACY_WEIGHT_NORM = {
    "pos_conv_embed.conv.weight_g": "pos_conv_embed.conv.parametrizations.weight.original0",
    "pos_conv_embed.conv.weight_v": "pos_conv_embed.conv.parametrizations.weight.original1",
}


def read_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Official checkpoint {path} does not exist.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure is "not a usable file"; say why in one sentence
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({reason[:200]}); expected the official "
            "JambaTalk vocaset.pth or biwi.pth."
        ) from exc
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors; it is not an official JambaTalk file.")
    return obj


def official_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes, drop training-only parts, rename legacy weight-norm keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key.startswith(TRAINING_ONLY_PREFIXES):
            continue
        for old, new in LEGACY_WEIGHT_NORM.items():
            if key.endswith(old):
                key = key[: -len(old)] + new
        out[key] = value
    return out


def expected_shapes(config: JambaTalkConfig) -> dict[str, tuple[int, ...]]:
    """Our state-dict layout for a config, computed on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = JambaTalk(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def convert_official(
    source: str | Path,
    out: str | Path,
    preset_name: str = "vocaset",
    config: JambaTalkConfig | None = None,
) -> Path:
    """Convert an official .pth into our checkpoint; every key and shape is checked before writing."""
    config = config or preset(preset_name)
    state = official_to_ours(read_official_state_dict(source))
    expected = expected_shapes(config)
    problems = describe_key_problems(expected, {k: tuple(v.shape) for k, v in state.items()})
    if problems:
        raise CheckpointError(
            f"{source} does not match the official '{preset_name}' layout: {problems} "
            "Check that --preset matches the file (vocaset or biwi)."
        )
    model = build_from_state_dict(config, {k: v.float() for k, v in state.items()})
    info = CheckpointInfo(
        config=config,
        licence=OFFICIAL_LICENCE,
        provenance={"converted_from": Path(source).name, "preset": preset_name, "source": "official JambaTalk"},
        topology="FLAME (5023 vertices)" if config.vertex_count == 5023 else None,
        name=f"jambatalk-official-{preset_name}",
    )
    return save_checkpoint(out, model, info)
