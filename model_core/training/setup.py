"""Turn a training config plus a dataset into a network: preset + overrides, with the vertex count, frame
rate and subject names taken from the data, and an optional pretrained wav2vec2."""

from __future__ import annotations

from typing import Any

import torch

from model_core.audio_encoder import build_wav2vec2
from model_core.config import JambaTalkConfig, preset
from model_core.data.dataset import MotionCorpus
from model_core.inference import resolve_device
from model_core.model import JambaTalk
from model_core.training.config import TrainConfig

# Keys of a transformers config dict that describe where it came from, not the architecture.
_W2V_NOISE = ("_name_or_path", "architectures", "transformers_version", "torch_dtype", "dtype", "id2label",
              "label2id", "output_attentions", "output_hidden_states", "return_dict")


def resolve_runtime(device: str, precision: str) -> tuple[torch.device, torch.dtype | None]:
    """The device and autocast dtype: bf16 autocast on CUDA unless fp32 is asked for; none on CPU/MPS."""
    dev = resolve_device(device)
    if precision == "fp32" or dev.type != "cuda":
        if precision == "bf16" and dev.type != "cuda":
            raise ValueError("train.precision = bf16 needs a CUDA device; use auto or fp32.")
        return dev, None
    if not torch.cuda.is_bf16_supported():
        raise ValueError("This GPU has no bf16 support; set train.precision = fp32.")
    return dev, torch.bfloat16


def load_pretrained_wav2vec2(path: str) -> tuple[Any, dict[str, Any]]:
    """A local transformers Wav2Vec2Model and its architecture as a config dict (stored in checkpoints)."""
    try:
        model = build_wav2vec2({}, pretrained=path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"model.pretrained_wav2vec2 = {path} is not a loadable transformers wav2vec2 folder "
                         f"(config.json + weights) ({exc}).") from exc
    config = {k: v for k, v in model.config.to_dict().items() if k not in _W2V_NOISE}
    return model, config


def network_config(cfg: TrainConfig, corpus: MotionCorpus, train_subjects: list[str],
                   wav2vec2: dict[str, Any] | None = None) -> JambaTalkConfig:
    overrides = dict(cfg.model.overrides)
    base = preset(cfg.model.preset)
    # wav2vec2 overrides are merged key by key into the preset's (or the pretrained model's) encoder config.
    encoder = dict(wav2vec2 if wav2vec2 is not None else base.wav2vec2)
    if isinstance(overrides.get("wav2vec2"), dict):
        encoder.update(overrides["wav2vec2"])
    overrides["wav2vec2"] = encoder
    overrides.update(vertex_count=corpus.vertex_count, motion_fps=corpus.fps)
    names = getattr(corpus, "names", None)  # a blendshape corpus: the model predicts its weights
    if names:
        overrides.update(output_kind="blendshapes", blendshape_names=list(names))
    if cfg.model.style_embedding:
        overrides.update(style_embedding=True, style_names=list(train_subjects))
    config = base.replace(**overrides)
    if config.audio_frame_mode == "fold_pairs" and abs(corpus.fps - 25.0) > 1e-6:
        raise ValueError(f"The {cfg.model.preset} preset folds 50 Hz audio frames in pairs (25 fps) but the data is "
                         f"at {corpus.fps:g} fps; add audio_frame_mode = \"interpolate\" to [model.overrides].")
    return config


def adopt_weights(model: JambaTalk, path: str) -> None:
    """Start from a checkpoint of ours (model.init_from): a second stage of training, or a fine-tune. The
    checkpoint must describe the same network, output names included; the head's basis is then the data's."""
    from model_core.checkpoint import describe_key_problems, load_checkpoint

    try:
        source = load_checkpoint(path).model
    except (OSError, ValueError) as exc:
        raise ValueError(f"model.init_from = {path} cannot be loaded ({exc}).") from exc
    mine, theirs = model.config, source.config
    if (mine.output_kind, mine.blendshape_names) != (theirs.output_kind, theirs.blendshape_names):
        raise ValueError(f"model.init_from = {path} predicts other outputs ({theirs.output_kind}, "
                         f"{len(theirs.blendshape_names)} names) than this run ({mine.output_kind}, "
                         f"{len(mine.blendshape_names)} names).")
    weights = source.state_dict()
    problems = describe_key_problems({k: tuple(v.shape) for k, v in model.state_dict().items()},
                                     {k: tuple(v.shape) for k, v in weights.items()})
    if problems:
        raise ValueError(f"model.init_from = {path} is another network than this config builds: {problems}")
    model.load_state_dict(weights, strict=True)


def build_model(cfg: TrainConfig, corpus: MotionCorpus, train_subjects: list[str]) -> JambaTalk:
    """The network to train (random init, or a pretrained wav2vec2 inside), CNN frozen when asked."""
    encoder, encoder_config = None, None
    if cfg.model.pretrained_wav2vec2:
        encoder, encoder_config = load_pretrained_wav2vec2(cfg.model.pretrained_wav2vec2)
    config = network_config(cfg, corpus, train_subjects, encoder_config)
    model = JambaTalk(config, wav2vec2=encoder)
    if cfg.model.init_from:
        adopt_weights(model, cfg.model.init_from)
    if config.output_kind == "blendshapes":
        model.set_blendshape_basis(torch.from_numpy(corpus.head.blendshapes))
    if cfg.model.freeze_feature_extractor:
        # Also stops transformers from forcing requires_grad on the CNN's input (no CNN backward at all).
        model.audio_encoder.freeze_feature_encoder()
    return model
