"""The training config file (TOML, read with tomllib): four tables, every key optional except data.dir.

Relative paths are resolved against the folder of the config file. `EXAMPLE_CONFIG` is a complete,
commented example (`jambatalk train --example-config` prints it).
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from model_core.config import PRESETS, JambaTalkConfig
from model_core.data.layout import LAYOUTS
from model_core.data.splits import SPLIT_PRESETS

BEST_METRICS = ("vertex_mse", "lve")
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
# Fields of the network config that the data decides, never the user.
DATA_DECIDED = ("vertex_count", "motion_fps", "style_names", "style_embedding")


@dataclass
class DataOptions:
    dir: str = ""
    layout: str = "auto"
    split_preset: str = "auto"
    lips: str = ""
    upper_face: str = ""
    cache: bool = True


@dataclass
class ModelOptions:
    preset: str = "small"
    style_embedding: bool = False
    pretrained_wav2vec2: str = ""
    freeze_feature_extractor: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainOptions:
    output_dir: str = "runs/jambatalk"
    epochs: int = 100
    lr: float = 1e-4
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    batch_size: int = 1
    max_seconds: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    vertex_weight: float = 1000.0
    velocity_weight: float = 1000.0
    lip_weight: float = 0.0
    moe_balance_weight: float = 0.0
    eval_every: int = 1
    best_metric: str = "vertex_mse"
    max_minutes: float = 0.0
    num_threads: int = 0
    device: str = "auto"
    precision: str = "auto"
    tensorboard: bool = False


@dataclass
class LipReadingOptions:
    enabled: bool = False
    asr_model: str = ""
    feature_weight: float = 0.001
    ctc_weight: float = 0.0001
    layers: int = 6
    heads: int = 8
    ffn_dim: int = 2048
    dropout: float = 0.1


@dataclass
class TrainConfig:
    data: DataOptions = field(default_factory=DataOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    train: TrainOptions = field(default_factory=TrainOptions)
    lip_reading: LipReadingOptions = field(default_factory=LipReadingOptions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        d, m, t, lr = self.data, self.model, self.train, self.lip_reading
        _choice("data.layout", d.layout, ("auto", *LAYOUTS))
        _choice("data.split_preset", d.split_preset, ("auto", *SPLIT_PRESETS))
        _choice("model.preset", m.preset, PRESETS)
        _choice("train.lr_schedule", t.lr_schedule, LR_SCHEDULES)
        _choice("train.best_metric", t.best_metric, BEST_METRICS)
        _choice("train.precision", t.precision, PRECISIONS)
        if not d.dir:
            raise ValueError("The config must name the dataset folder: [data] dir = \"...\".")
        for name, value, low in (("train.epochs", t.epochs, 1), ("train.batch_size", t.batch_size, 1),
                                 ("train.eval_every", t.eval_every, 1), ("train.num_threads", t.num_threads, 0),
                                 ("train.warmup_steps", t.warmup_steps, 0), ("lip_reading.layers", lr.layers, 1),
                                 ("lip_reading.heads", lr.heads, 1), ("lip_reading.ffn_dim", lr.ffn_dim, 1)):
            if value < low:
                raise ValueError(f"{name} must be at least {low} (got {value}).")
        for name, value in (("train.lr", t.lr), ("train.max_seconds", t.max_seconds), ("train.grad_clip", t.grad_clip),
                            ("train.max_minutes", t.max_minutes), ("train.moe_balance_weight", t.moe_balance_weight),
                            ("train.lip_weight", t.lip_weight),
                            ("train.vertex_weight", t.vertex_weight), ("train.velocity_weight", t.velocity_weight)):
            if value < 0:
                raise ValueError(f"{name} must not be negative (got {value}).")
        if t.lr <= 0:
            raise ValueError("train.lr must be positive.")
        decided = sorted(set(m.overrides) & set(DATA_DECIDED))
        if decided:
            raise ValueError(f"[model.overrides] may not set {', '.join(decided)}: the vertex count and frame rate "
                             "come from the data, styles from model.style_embedding and the training subjects.")
        known = {f.name for f in fields(JambaTalkConfig)}
        unknown = sorted(set(m.overrides) - known)
        if unknown:
            raise ValueError(f"[model.overrides] has unknown network field(s) {', '.join(unknown)}.")
        if lr.enabled and not lr.asr_model:
            raise ValueError("lip_reading.enabled needs lip_reading.asr_model: a local folder holding a transformers "
                             "Wav2Vec2ForCTC model and its processor.")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} = {value!r} is not one of {', '.join(allowed)}.")


_SECTIONS = {"data": DataOptions, "model": ModelOptions, "train": TrainOptions, "lip_reading": LipReadingOptions}
_PATH_KEYS = (("data", "dir"), ("data", "lips"), ("data", "upper_face"), ("model", "pretrained_wav2vec2"),
              ("train", "output_dir"), ("lip_reading", "asr_model"))


def config_from_dict(raw: dict[str, Any], base_dir: Path | None = None, where: str = "config") -> TrainConfig:
    """Check every key against the dataclasses (typos are errors) and resolve relative paths."""
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown table(s) {', '.join(unknown)}; known: {', '.join(_SECTIONS)}.")
    sections = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ValueError(f"{where}: [{name}] must be a table.")
        allowed = {f.name: f for f in fields(cls)}
        bad = sorted(set(table) - set(allowed))
        if bad:
            raise ValueError(f"{where}: unknown key(s) {', '.join(bad)} in [{name}]; known: {', '.join(allowed)}.")
        values = {}
        for key, value in table.items():
            default = getattr(cls(), key)
            values[key] = _coerce(f"{name}.{key}", value, default)
        sections[name] = cls(**values)
    config = TrainConfig(**sections)
    if base_dir is not None:
        for section, key in _PATH_KEYS:
            obj = getattr(config, section)
            value = getattr(obj, key)
            if value and not Path(value).expanduser().is_absolute():
                setattr(obj, key, str((base_dir / value).resolve()))
            elif value:
                setattr(obj, key, str(Path(value).expanduser()))
    config.validate()
    return config


def _coerce(name: str, value: Any, default: Any) -> Any:
    """TOML already types values; only allow ints where floats are expected and reject other mismatches."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false (got {value!r}).")
        return value
    if isinstance(default, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(default, str) and isinstance(value, str):
        return value
    if isinstance(default, dict) and isinstance(value, dict):
        return copy.deepcopy(value)
    raise ValueError(f"{name} has the wrong type: expected {type(default).__name__}, got {value!r}.")


def parse_override(text: str) -> tuple[str, str, Any]:
    """`section.key=value` (value in TOML syntax; bare words are strings) -> (section, key, value)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ValueError(f"--set {text!r} must look like section.key=value, e.g. train.epochs=5.")
    path, value_text = text.split("=", 1)
    section, key = path.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {value_text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()  # a bare word, e.g. --set train.device=cpu
    return section, key, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    for text in overrides:
        section, key, value = parse_override(text)
        table = raw.setdefault(section, {})
        *parents, leaf = key.split(".")  # model.overrides.wav2vec2.apply_spec_augment=false
        for name in parents:
            table = table.setdefault(name, {})
        table[leaf] = value
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a TOML training config; `overrides` are `section.key=value` strings applied on top."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"Training config {path} does not exist (`jambatalk train --example-config` "
                         "prints one to start from).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}.") from exc
    return config_from_dict(apply_overrides(raw, overrides or []), path.resolve().parent, str(path))


EXAMPLE_CONFIG = """\
# JambaTalk training config (TOML). Relative paths are relative to this file.
# Try it on the synthetic corpus:  jambatalk synth-corpus corpus --subjects 4 --sentences 6 --vertices 600

[data]
dir = "corpus"                # FaceFormer layout: wav/, vertices_npy/, templates.npz
layout = "auto"               # auto | vocaset (60->30 fps) | biwi (25 fps) | synthetic | plain (dataset.toml)
split_preset = "auto"         # auto | vocaset | biwi | biwi-test-a | synthetic | manifest
lips = ""                     # lip vertex indices (default: <dir>/regions/lips.txt)
upper_face = ""               # upper-face vertex indices for FDD (default: <dir>/regions/upper_face.txt)
cache = true                  # keep loaded takes in memory

[model]
preset = "small"              # small | vocaset | biwi
style_embedding = false       # per-subject style vector (the paper's; the official code has none)
pretrained_wav2vec2 = ""      # local folder of a transformers Wav2Vec2Model; empty: train from scratch
freeze_feature_extractor = true   # official: the CNN feature extractor is frozen

[model.overrides]             # any network field except vertex_count / motion_fps / style_*
# feature_dim = 64

[train]
output_dir = "runs/small"
epochs = 100
lr = 1e-4                     # Adam
lr_schedule = "constant"      # constant | cosine (decays to 0 at the last epoch)
warmup_steps = 0
batch_size = 1                # official: 1
max_seconds = 0.0             # crop each take to a random window this long (0: whole takes)
grad_clip = 1.0               # gradient-norm clipping (0: off)
seed = 0
vertex_weight = 1000.0        # official loss: 1000 * vertex MSE + 1000 * velocity MSE
velocity_weight = 1000.0
lip_weight = 0.0              # extra vertex + velocity MSE on the lip vertices only (not official; needs lips)
moe_balance_weight = 0.0      # weight of the MoE load-balancing loss (official: not used)
eval_every = 1                # validate every N epochs
best_metric = "vertex_mse"    # vertex_mse (official) | lve
max_minutes = 0.0             # stop cleanly (and save) after this much wall-clock time (0: no limit)
num_threads = 0               # torch CPU threads (0: torch's default)
device = "auto"               # auto | cpu | cuda | cuda:1 | mps
precision = "auto"            # auto (bf16 autocast on CUDA) | fp32 | bf16
tensorboard = false           # also log to TensorBoard (needs the tensorboard package)

[lip_reading]                 # the official lip-reading branch (training only)
enabled = false
asr_model = ""                # local folder: transformers Wav2Vec2ForCTC + its processor
feature_weight = 0.001        # MSE between lip features and the frozen ASR's hidden states
ctc_weight = 0.0001           # CTC against the ASR's own transcript
layers = 6                    # lip encoder: nn.Transformer layers (encoder and decoder each)
heads = 8
ffn_dim = 2048
dropout = 0.1
"""
