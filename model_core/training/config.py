"""The training config file (TOML, read with tomllib): five tables, every key optional except data.dir.

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
DATA_DECIDED = ("vertex_count", "motion_fps", "style_names", "style_embedding", "output_kind", "blendshape_names")


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
    init_from: str = ""
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
    weight_space_weight: float = 0.1
    lip_gap_weight: float = 0.0
    closure_weight: float = 0.0
    closure_tolerance_frames: int = 0
    opening_weight: float = 0.0
    phone_weight: float = 0.0
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


def _span(low: float, high: float) -> Any:
    return field(default_factory=lambda: [low, high])


@dataclass
class AugmentOptions:
    """Training-time augmentation (model_core/training/augment.py). Each effect: a probability per crop and the
    [low, high] range its strength is drawn from, uniformly. Off unless `enabled`."""

    enabled: bool = False
    rest_share: float = 0.03  # crops replaced by noise/silence whose truth is the resting face
    tempo_p: float = 0.5
    tempo_range: list[float] = _span(0.9, 1.1)  # playback rate: 1.1 = 10 % faster
    tempo_method: str = "wsola"  # wsola: pitch kept | speed: Kaldi-style resampling, pitch moves too
    pitch_p: float = 0.3
    pitch_semitones: list[float] = _span(-3.0, 3.0)
    reverb_p: float = 0.2
    reverb_rt60_s: list[float] = _span(0.1, 0.5)
    reverb_drr_db: list[float] = _span(0.0, 12.0)  # direct-to-reverberant energy ratio
    noise_p: float = 0.4
    noise_snr_db: list[float] = _span(10.0, 30.0)
    noise_kinds: list[str] = field(default_factory=lambda: ["white", "pink", "brown", "babble"])
    band_p: float = 0.3
    telephone_share: float = 0.5  # of band-limited crops: 8 kHz mu-law 300-3400 Hz; the rest get the ranges below
    highpass_hz: list[float] = _span(50.0, 300.0)
    lowpass_hz: list[float] = _span(3500.0, 8000.0)
    gain_p: float = 0.5
    gain_db: list[float] = _span(-12.0, 12.0)
    soft_clip_p: float = 0.2  # a gain that passes full scale soft-clips this often (else it is scaled back)
    codec_p: float = 0.2
    codecs: list[str] = field(default_factory=lambda: ["mp3", "vorbis", "opus"])
    codec_quality: list[float] = _span(0.2, 0.9)  # libsndfile compression level: 0 best, 1 smallest

    def validate(self) -> None:
        from model_core.signal.channel import CODECS, NOISE_KINDS  # here: the config module stays import-light

        _choice("augment.tempo_method", self.tempo_method, ("wsola", "speed"))
        for name in ("rest_share", "tempo_p", "pitch_p", "reverb_p", "noise_p", "band_p", "telephone_share",
                     "gain_p", "soft_clip_p", "codec_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} must be between 0 and 1 (got {getattr(self, name)}).")
        for name, low, high in (("tempo_range", 0.5, 2.0), ("pitch_semitones", -12.0, 12.0),
                                ("reverb_rt60_s", 0.01, 2.0), ("reverb_drr_db", -10.0, 40.0),
                                ("noise_snr_db", -10.0, 80.0), ("highpass_hz", 0.0, 1000.0),
                                ("lowpass_hz", 1000.0, 8000.0), ("gain_db", -40.0, 40.0), ("codec_quality", 0.0, 1.0)):
            span = getattr(self, name)
            if len(span) != 2 or not low <= span[0] <= span[1] <= high:
                raise ValueError(f"augment.{name} must be [low, high] with {low:g} <= low <= high <= {high:g} "
                                 f"(got {span}).")
        for name, allowed in (("noise_kinds", NOISE_KINDS), ("codecs", CODECS)):
            chosen = getattr(self, name)
            if not chosen or set(chosen) - set(allowed):
                raise ValueError(f"augment.{name} must list one or more of {', '.join(allowed)} (got {chosen}).")
        if self.highpass_hz[1] >= self.lowpass_hz[0]:
            raise ValueError("augment.highpass_hz must stay below augment.lowpass_hz.")


@dataclass
class TrainConfig:
    data: DataOptions = field(default_factory=DataOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    train: TrainOptions = field(default_factory=TrainOptions)
    lip_reading: LipReadingOptions = field(default_factory=LipReadingOptions)
    augment: AugmentOptions = field(default_factory=AugmentOptions)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.augment.enabled:
            # Off, it changes nothing: leave it out so run_config.json and checkpoint provenance stay as before.
            del out["augment"]
        return out

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
                            ("train.lip_weight", t.lip_weight), ("train.weight_space_weight", t.weight_space_weight),
                            ("train.lip_gap_weight", t.lip_gap_weight), ("train.closure_weight", t.closure_weight),
                            ("train.closure_tolerance_frames", t.closure_tolerance_frames),
                            ("train.opening_weight", t.opening_weight), ("train.phone_weight", t.phone_weight),
                            ("train.vertex_weight", t.vertex_weight),
                            ("train.velocity_weight", t.velocity_weight)):
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
        self.augment.validate()
        if lr.enabled and not lr.asr_model:
            raise ValueError("lip_reading.enabled needs lip_reading.asr_model: a local folder holding a transformers "
                             "Wav2Vec2ForCTC model and its processor.")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} = {value!r} is not one of {', '.join(allowed)}.")


_SECTIONS = {"data": DataOptions, "model": ModelOptions, "train": TrainOptions, "lip_reading": LipReadingOptions,
             "augment": AugmentOptions}
_PATH_KEYS = (("data", "dir"), ("data", "lips"), ("data", "upper_face"), ("model", "pretrained_wav2vec2"),
              ("model", "init_from"), ("train", "output_dir"), ("lip_reading", "asr_model"))


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
    if isinstance(default, list) and isinstance(value, list) and default:
        # Lists are ranges [low, high] of numbers (ints allowed) or lists of names, like their defaults.
        if isinstance(default[0], str) and all(isinstance(v, str) for v in value):
            return list(value)
        if isinstance(default[0], float) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                 for v in value):
            return [float(v) for v in value]
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
init_from = ""                # start from this checkpoint's weights (ours, .safetensors, same network); "": fresh

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
weight_space_weight = 0.1     # blendshape corpora: MSE of the raw predicted weights against the true ones
lip_gap_weight = 0.0          # centre lip gap (upper - lower lip landmark height) + its velocity MSE; needs landmarks
closure_weight = 0.0          # where the true lips are shut (p, b, m, rest): how far the predicted lips stay open
closure_tolerance_frames = 0  # ... judged by the smallest predicted gap within this many frames of the closure
opening_weight = 0.0          # on every frame: how far the predicted lips are more closed than the truth's
phone_weight = 0.0            # cross-entropy of a phone classifier on the audio encoder (needs the corpus's phones)
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

[augment]                     # training-time augmentation (docs/training.md); off: training is unchanged
enabled = false
rest_share = 0.03             # crops replaced by noise / silence with a resting face as truth
tempo_p = 0.5                 # each effect: probability per crop, then [low, high] of its strength
tempo_range = [0.9, 1.1]      # playback rate; audio and motion are time-scaled together
tempo_method = "wsola"        # wsola (keeps pitch) | speed (resampling: pitch moves with tempo)
pitch_p = 0.3
pitch_semitones = [-3.0, 3.0]
reverb_p = 0.2
reverb_rt60_s = [0.1, 0.5]
reverb_drr_db = [0.0, 12.0]   # direct-to-reverberant ratio
noise_p = 0.4
noise_snr_db = [10.0, 30.0]
noise_kinds = ["white", "pink", "brown", "babble"]
band_p = 0.3
telephone_share = 0.5         # telephone (8 kHz, mu-law, 300-3400 Hz); else high-/low-pass from these ranges
highpass_hz = [50.0, 300.0]
lowpass_hz = [3500.0, 8000.0]
gain_p = 0.5
gain_db = [-12.0, 12.0]
soft_clip_p = 0.2             # share of over-full-scale gains that soft-clip (else scaled back)
codec_p = 0.2
codecs = ["mp3", "vorbis", "opus"]
codec_quality = [0.2, 0.9]    # compression level: 0 best, 1 smallest
"""
