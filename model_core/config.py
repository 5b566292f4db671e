"""One dataclass describes a JambaTalk network; presets reproduce the official configurations."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Layer letters in a decoder pattern: bare Mamba, MoE-Mamba, Transformer (LRL-RoPE + GQA).
LAYER_KINDS = {"M": "mamba", "E": "mamba_moe", "T": "transformer_decoder"}
MOE_POLICIES = ("expected", "all", "random")
AUDIO_FRAME_MODES = ("interpolate", "fold_pairs")
OUTPUT_KINDS = ("vertices", "blendshapes")
MAX_BLENDSHAPES = 1024

# wav2vec2 XLSR-53 large, as in jonatasgrosman/wav2vec2-large-xlsr-53-english (the official encoder).
XLSR53_LARGE: dict[str, Any] = {
    "vocab_size": 33,
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "hidden_act": "gelu",
    "hidden_dropout": 0.05,
    "activation_dropout": 0.05,
    "attention_dropout": 0.1,
    "feat_proj_dropout": 0.05,
    "final_dropout": 0.0,
    "layerdrop": 0.05,
    "layer_norm_eps": 1e-5,
    "feat_extract_norm": "layer",
    "feat_extract_activation": "gelu",
    "conv_dim": [512] * 7,
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_bias": True,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "do_stable_layer_norm": True,
    "apply_spec_augment": True,
    "mask_time_prob": 0.05,
    "mask_time_length": 10,
    "mask_time_min_masks": 2,
}

# A small wav2vec2 for tests and the demo: same 50 Hz CNN geometry, far fewer parameters.
SMALL_WAV2VEC2: dict[str, Any] = {
    **XLSR53_LARGE,
    "hidden_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 512,
    "conv_dim": [128] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 16,
    "layerdrop": 0.0,
}


@dataclass
class JambaTalkConfig:
    """Everything needed to build a JambaTalk network (and nothing about weights)."""

    feature_dim: int = 512
    vertex_count: int = 5023
    motion_fps: float = 30.0
    # How 50 Hz audio frames become motion frames: linear interpolation before the
    # wav2vec2 transformer (official VOCASET) or folding frame pairs after it (official BIWI).
    audio_frame_mode: str = "interpolate"
    wav2vec2: dict[str, Any] = field(default_factory=lambda: dict(XLSR53_LARGE))
    # Decoder stack: letters from LAYER_KINDS applied in order.
    pattern: str = "METEME"
    share_weights: bool = True
    # Bare Mamba block "M" (mamba_ssm defaults).
    mamba_d_state: int = 16
    mamba_d_conv: int = 4
    mamba_expand: int = 2
    # MoE-Mamba block "E" (official moe_mamba.py).
    moe_d_state: int = 8
    moe_d_conv: int = 8
    moe_expand: int = 2
    moe_num_experts: int = 2
    moe_hidden_mult: int = 4
    moe_second_threshold: float = 0.2
    moe_capacity_factor_train: float = 1.25
    moe_capacity_factor_eval: float = 2.0
    moe_min_capacity: int = 4
    moe_policy_eval: str = "expected"
    moe_loss_coef: float = 1e-2
    # Transformer block "T".
    n_query_heads: int = 8
    n_kv_heads: int = 8
    ffn_dim: int = 2048
    dropout: float = 0.1
    rope_rank: int = 16
    rope_base: float = 10000.0
    causal_attention: bool = False
    # Optional per-subject style vector added to the decoder input (the paper's; not in the official code).
    style_names: list[str] = field(default_factory=list)
    style_embedding: bool = False
    # Output: "vertices" (official: an offset for every vertex) or "blendshapes" (K named weights in [0, 1]
    # through a fixed basis the checkpoint carries: offsets = clamp(weights, 0, 1) @ basis).
    output_kind: str = "vertices"
    blendshape_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_ranges(self)
        bad = set(self.pattern) - set(LAYER_KINDS)
        if not self.pattern or bad:
            raise ValueError(f"Decoder pattern {self.pattern!r} may only use the letters M, E and T.")
        if self.moe_policy_eval not in MOE_POLICIES:
            raise ValueError(f"MoE policy {self.moe_policy_eval!r} is not one of {MOE_POLICIES}.")
        if self.audio_frame_mode not in AUDIO_FRAME_MODES:
            raise ValueError(f"Audio frame mode {self.audio_frame_mode!r} is not one of {AUDIO_FRAME_MODES}.")
        if self.feature_dim % self.n_query_heads:
            raise ValueError("feature_dim must be divisible by n_query_heads.")
        if self.n_query_heads % self.n_kv_heads:
            raise ValueError("n_query_heads must be a multiple of n_kv_heads (grouped-query attention).")
        if (self.feature_dim // self.n_query_heads) % 2:
            raise ValueError("The attention head size must be even for rotary embeddings.")
        if self.style_embedding and not self.style_names:
            raise ValueError("A style embedding needs at least one style name.")
        if self.output_kind not in OUTPUT_KINDS:
            raise ValueError(f"field output_kind must be one of {OUTPUT_KINDS}; got {self.output_kind!r:.60}.")
        if (self.output_kind == "blendshapes") != bool(self.blendshape_names):
            raise ValueError("field blendshape_names must name the weights of a blendshapes model (and be empty "
                             "for a vertices model).")

    @property
    def output_channels(self) -> int:
        """Width of the output map: one value per weight, or three per vertex."""
        return len(self.blendshape_names) if self.output_kind == "blendshapes" else self.vertex_dim

    @property
    def vertex_dim(self) -> int:
        return self.vertex_count * 3

    @property
    def audio_hidden_size(self) -> int:
        return int(self.wav2vec2["hidden_size"])

    @property
    def audio_feature_in(self) -> int:
        """Width of the decoder's input map: pairs of 50 Hz frames are folded together in BIWI mode."""
        fold = 2 if self.audio_frame_mode == "fold_pairs" else 1
        return self.audio_hidden_size * fold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JambaTalkConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"Unknown model config fields: {sorted(unknown)}.")
        return cls(**copy.deepcopy(data))

    def replace(self, **changes: Any) -> JambaTalkConfig:
        return JambaTalkConfig.from_dict({**self.to_dict(), **changes})


# Sane ranges for every field: a checkpoint's config is data from a file, and a NaN frame rate, zero heads or a
# 20,000-layer pattern must be refused at load with one sentence, not found later as a 500, a traceback or a
# 4 GB allocation. Generous enough for any real network (the official ones sit well inside).
INT_RANGES: dict[str, tuple[int, int]] = {
    "feature_dim": (1, 8192), "vertex_count": (1, 1_000_000),
    "mamba_d_state": (1, 1024), "mamba_d_conv": (1, 64), "mamba_expand": (1, 16),
    "moe_d_state": (1, 1024), "moe_d_conv": (1, 64), "moe_expand": (1, 16), "moe_num_experts": (1, 64),
    "moe_hidden_mult": (1, 64), "moe_min_capacity": (0, 1_000_000),
    "n_query_heads": (1, 256), "n_kv_heads": (1, 256), "ffn_dim": (1, 65536), "rope_rank": (1, 4096),
}
FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "motion_fps": (1.0, 240.0), "moe_second_threshold": (0.0, 1.0), "moe_capacity_factor_train": (1e-3, 64.0),
    "moe_capacity_factor_eval": (1e-3, 64.0), "moe_loss_coef": (0.0, 1e3), "dropout": (0.0, 0.999),
    "rope_base": (1.0 + 1e-6, 1e9),
}
BOOL_FIELDS = ("share_weights", "causal_attention", "style_embedding")
MAX_PATTERN_LAYERS = 64
MAX_STYLES = 4096
WAV2VEC2_INT_RANGES: dict[str, tuple[int, int]] = {
    "hidden_size": (1, 8192), "num_hidden_layers": (1, 64), "num_attention_heads": (1, 256),
    "intermediate_size": (1, 65536), "num_conv_pos_embeddings": (1, 1024), "num_conv_pos_embedding_groups": (1, 1024),
}
WAV2VEC2_CONV_RANGES: dict[str, tuple[int, int]] = {"conv_dim": (1, 8192), "conv_stride": (1, 16),
                                                     "conv_kernel": (1, 64)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"field {name} must be a whole number from {low} to {high}; got {value!r:.60}.")


def check_ranges(config: JambaTalkConfig) -> None:
    """Every field's type and range; ValueError naming the first bad field."""
    for name, (low, high) in INT_RANGES.items():
        _check_int(name, getattr(config, name), low, high)
    for name, (low, high) in FLOAT_RANGES.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not low <= value <= high:
            raise ValueError(f"field {name} must be a finite number from {low:g} to {high:g}; got {value!r:.60}.")
    for name in BOOL_FIELDS:
        if not isinstance(getattr(config, name), bool):
            raise ValueError(f"field {name} must be true or false; got {getattr(config, name)!r:.60}.")
    for name in ("pattern", "audio_frame_mode", "moe_policy_eval"):
        if not isinstance(getattr(config, name), str):
            raise ValueError(f"field {name} must be a string; got {type(getattr(config, name)).__name__}.")
    if not 1 <= len(config.pattern) <= MAX_PATTERN_LAYERS:
        raise ValueError(f"field pattern must have 1 to {MAX_PATTERN_LAYERS} layer letters; got {len(config.pattern)}.")
    for field_name, limit in (("style_names", MAX_STYLES), ("blendshape_names", MAX_BLENDSHAPES)):
        names = getattr(config, field_name)
        if not isinstance(names, list) or len(names) > limit or \
                not all(isinstance(n, str) and 1 <= len(n) <= 256 for n in names) or len(set(names)) != len(names):
            raise ValueError(f"field {field_name} must be a list of at most {limit} different names of 1 to 256 "
                             "characters.")
    if not isinstance(config.output_kind, str):
        raise ValueError(f"field output_kind must be a string; got {type(config.output_kind).__name__}.")
    _check_wav2vec2(config.wav2vec2)


def _check_wav2vec2(w2v: Any) -> None:
    if not isinstance(w2v, dict):
        raise ValueError(f"field wav2vec2 must be an object; got {type(w2v).__name__}.")
    for key, (low, high) in WAV2VEC2_INT_RANGES.items():
        if key in w2v or key == "hidden_size":
            _check_int(f"wav2vec2.{key}", w2v.get(key), low, high)
    hidden = w2v["hidden_size"]
    for key in ("num_attention_heads", "num_conv_pos_embedding_groups"):
        if key in w2v and hidden % w2v[key]:
            raise ValueError(f"field wav2vec2.hidden_size ({hidden}) must be divisible by wav2vec2.{key}.")
    lengths = set()
    for key, (low, high) in WAV2VEC2_CONV_RANGES.items():
        if key not in w2v:
            continue
        values = w2v[key]
        if not isinstance(values, list) or not 1 <= len(values) <= 16 or \
                not all(_is_int(v) and low <= v <= high for v in values):
            raise ValueError(f"field wav2vec2.{key} must be a list of 1 to 16 whole numbers from {low} to {high}.")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ValueError("fields wav2vec2.conv_dim, conv_stride and conv_kernel must have the same length.")


def preset(name: str, **overrides: Any) -> JambaTalkConfig:
    """`vocaset` and `biwi` reproduce the official networks; `small` is for tests and the demo."""
    if name == "vocaset":
        base = JambaTalkConfig()
    elif name == "biwi":
        base = JambaTalkConfig(
            feature_dim=1024,
            vertex_count=3895,
            motion_fps=25.0,
            audio_frame_mode="fold_pairs",
            pattern="MEMETEMEME",
            n_query_heads=4,
            n_kv_heads=4,
        )
    elif name == "small":
        base = JambaTalkConfig(
            feature_dim=64,
            wav2vec2=dict(SMALL_WAV2VEC2),
            ffn_dim=256,
            n_query_heads=4,
            n_kv_heads=2,
        )
    else:
        raise ValueError(f"Unknown preset {name!r}: choose vocaset, biwi or small.")
    return base.replace(**overrides) if overrides else base


PRESETS = ("vocaset", "biwi", "small")
