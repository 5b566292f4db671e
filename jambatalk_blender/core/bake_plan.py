"""The bake as a pure function: (take, the targets' shape keys, options, scene rate) -> a plan of F-curves.

A plan says everything the Blender writer needs and nothing it must compute: for each object, the keys to
create (editable basis), the mouth curves and the life-layer curves (frame numbers and values, already reduced),
or the mesh-cache frames. Re-bake is this function again on the stored take with new options, so it never
calls the worker, and a re-bake equals a fresh bake of the same take by construction.

Order of operations on the raw take (model rate, strength 1, no smoothing):
1. smoothing (a Gaussian over time, sigma = ``smoothing_s``), then strength; for weights also each channel's
   multiplier and offset (raw x multiplier + offset, as Audio2Face's blendshape multipliers and offsets);
2. resampling to the scene's frame rate (linear, `timing.resample_to_scene`);
3. the mapping onto each object's keys (names.match_channels: a key driven by several channels gets their
   sum), clipped to the key's slider range: what Blender would clamp anyway, now visible in the curves;
4. the life layer (life.life_layer, at the scene rate), which owns the upper-face channels it drives;
5. keyframe reduction: each weight curve within ``weight_tolerance`` (weight units) with LINEAR keys; the
   editable basis keeps its vertex tolerance in metres (keyframes.reduce_keyframes).
Vertex takes solved onto shape keys (SOLVE) and the editable basis (SHAPE_KEYS) apply smoothing and strength
to the solved / decomposed weights: both are linear in the weights, so for the basis this equals smoothing
the offsets; for the solve it differs only where a bound is active. The solve and the decomposition of a
take are cached (a few entries), which is what keeps a re-bake instant.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import bake_math, keyframes, names, timing
from .life import BLINK_CHANNELS, BROW_CHANNELS, EYE_CHANNELS, LifeLayer, LifeSettings, life_layer
from .solve import SolveResult, solve_weights
from .take import Take

MODES = ("CHARACTER", "SOLVE", "SHAPE_KEYS", "MESH_CACHE")
MODE_KIND = {"CHARACTER": "weights", "SOLVE": "vertices", "SHAPE_KEYS": "vertices", "MESH_CACHE": "vertices"}
DEFAULT_WEIGHT_TOLERANCE = 0.002  # weight units: 0.2 % of a full slider, far below what shows on a face
_CACHE_SIZE = 4
_TRUNCATE_SIGMA = 4.0  # the Gaussian kernel reaches this many sigma each side


class PlanError(ValueError):
    """The bake cannot be planned with these options and targets; str() is a sentence for the animator."""


@dataclass(frozen=True)
class ChannelAdjust:
    """A channel's value becomes raw x multiplier + offset (before the mapping onto keys)."""

    multiplier: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class BakeOptions:
    mode: str = "CHARACTER"
    strength: float = 1.0
    smoothing_s: float = 0.0
    timing_offset_frames: float = 0.0
    weight_tolerance: float = DEFAULT_WEIGHT_TOLERANCE
    tolerance_m: float = keyframes.DEFAULT_TOLERANCE_M
    adjust: Mapping[str, ChannelAdjust] = field(default_factory=dict)
    mapping: Mapping[str, tuple[names.Target, ...]] | None = None  # the user's mapping file, parsed
    life: LifeSettings | None = None
    solve_smoothness: float = 0.05
    solve_filter: str = ""  # SOLVE: only keys whose name contains this (case-insensitive); empty: all
    variance_target: float = 0.999
    max_keys: int = 64

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PlanError(f"Unknown output mode {self.mode!r}; choose one of {', '.join(MODES)}.")
        for what, value in (("strength", self.strength), ("smoothing", self.smoothing_s),
                            ("timing offset", self.timing_offset_frames)):
            if not math.isfinite(value):
                raise PlanError(f"The {what} must be a finite number; got {value!r}.")
        if self.strength < 0 or self.smoothing_s < 0:
            raise PlanError("Strength and smoothing cannot be negative.")
        if not (self.weight_tolerance > 0 and self.tolerance_m > 0):
            raise PlanError("The keyframe tolerance must be positive.")


@dataclass(frozen=True, eq=False)
class TargetMesh:
    """What the plan needs to know of one mesh: read from Blender by the glue, no bpy here.

    ``deltas`` (K, V, 3), each key's displacement from the Basis in key_names order, is needed by SOLVE only.
    """

    name: str
    vertex_count: int
    key_names: tuple[str, ...] = ()
    slider_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    deltas: np.ndarray | None = None

    def slider(self, key: str) -> tuple[float, float]:
        return self.slider_ranges.get(key, (0.0, 1.0))


@dataclass(frozen=True, eq=False)
class CurvePlan:
    """One F-curve: the shape key it drives, its keys' scene frames and values (LINEAR)."""

    key: str
    frames: np.ndarray  # (n,) float64 scene frames
    values: np.ndarray  # (n,) float32


@dataclass(frozen=True, eq=False)
class NewKeys:
    """Editable basis: shape keys to create, ``shapes`` (K, V, 3) offsets from the Basis, slider ranges."""

    names: tuple[str, ...]
    shapes: np.ndarray
    slider_min: np.ndarray
    slider_max: np.ndarray
    error_max_m: float


@dataclass(frozen=True, eq=False)
class ObjectPlan:
    object_name: str
    curves: tuple[CurvePlan, ...] = ()
    life_curves: tuple[CurvePlan, ...] = ()
    channel_map: names.ChannelMap | None = None
    new_keys: NewKeys | None = None
    solve: SolveResult | None = None
    mesh_cache: np.ndarray | None = None  # (F, V, 3) offsets at the scene rate

    @property
    def keyframes(self) -> int:
        return int(sum(c.frames.size for c in (*self.curves, *self.life_curves)))


@dataclass(frozen=True, eq=False)
class BakePlan:
    take: str
    mode: str
    label: str  # the mouth Action's name (JT_<take>_<nnn>); the life Action is label + LIFE_SUFFIX
    scene_fps: float
    first_frame: float  # scene frame of the take's first sample, timing offset included
    n_frames: int  # scene frames the take covers
    objects: tuple[ObjectPlan, ...]
    life: LifeLayer | None = None
    notes: tuple[str, ...] = ()
    timings: dict = field(default_factory=dict)

    @property
    def frame_end(self) -> float:
        return self.first_frame + self.n_frames - 1

    @property
    def keyframes(self) -> int:
        return int(sum(o.keyframes for o in self.objects))


LIFE_SUFFIX = "_life"


# -- signal maths --------------------------------------------------------------------------------------------
def gaussian_smooth(data: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian smoothing along axis 0, float32, a new array: the worker's smoothing (model_core/shaping.py,
    scipy's gaussian_filter1d with mode="nearest", truncated at 4 sigma), in numpy for Blender's Python."""
    data = np.asarray(data, dtype=np.float32)
    if sigma_frames <= 0 or data.shape[0] < 2:
        return data.copy()
    radius = max(1, int(_TRUNCATE_SIGMA * sigma_frames + 0.5))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma_frames) ** 2)
    kernel /= kernel.sum()
    n = data.shape[0]
    # Edge frames repeated (scipy's "nearest"), gathered once; every tap then reads a view of the padding.
    padded = data.reshape(n, -1)[np.clip(np.arange(-radius, n + radius), 0, n - 1)]
    out = np.zeros((n, padded.shape[1]), dtype=np.float32)
    term = np.empty_like(out)
    for tap, weight in enumerate(kernel):
        np.multiply(padded[tap:tap + n], np.float32(weight), out=term)
        out += term
    return out.reshape(data.shape)


def _scaled(values: np.ndarray, smoothing_s: float, fps: float, strength: float) -> np.ndarray:
    out = gaussian_smooth(values, smoothing_s * fps)
    if strength != 1.0:
        out *= np.float32(strength)
    return out


# -- caches for the expensive, option-independent steps ------------------------------------------------------
_cache: OrderedDict = OrderedDict()


def _cached(key: tuple, compute):
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    value = compute()
    _cache[key] = value
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return value


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def clear_cache() -> None:
    _cache.clear()


# -- planning ------------------------------------------------------------------------------------------------
def _reduced(curves_by_key: Mapping[str, np.ndarray], frames: np.ndarray, tolerance: float) -> list[CurvePlan]:
    """LINEAR keys within ``tolerance`` (weight units) for each key's (F,) curve."""
    if not curves_by_key:
        return []
    keys = list(curves_by_key)
    curves = keyframes.reduce_curves(np.stack([curves_by_key[k] for k in keys], axis=1),
                                     np.full(len(keys), float(tolerance)))
    return [CurvePlan(key, frames[c.indices], c.values) for key, c in zip(keys, curves, strict=True)]


def _key_values(channel_values: Mapping[str, np.ndarray], channel_map: names.ChannelMap, target: TargetMesh,
                channels: Sequence[str], n_frames: int) -> dict[str, np.ndarray]:
    """Each driven key's curve: the sum of its channels x factor, clipped to the key's slider range."""
    keys: dict[str, np.ndarray] = {}
    for channel in channels:
        if channel not in channel_values:
            continue
        for t in channel_map.targets.get(channel, ()):
            curve = keys.setdefault(t.key, np.zeros(n_frames, np.float32))
            curve += np.float32(t.factor) * channel_values[channel]
    for key, curve in keys.items():
        lo, hi = target.slider(key)
        np.clip(curve, lo, hi, out=curve)
    return keys


def _life(options: BakeOptions, take: Take, n_frames: int, scene_fps: float,
          available: set[str]) -> LifeLayer | None:
    if options.life is None or not available:
        return None
    return life_layer(n_frames, scene_fps, options.life, take.prosody, available=available)


def _channel_plans(take: Take, channel_names: Sequence[str], weights: np.ndarray, targets: Sequence[TargetMesh],
                   maps: Sequence[names.ChannelMap], options: BakeOptions, scene_fps: float, first: float,
                   notes: list[str], timings: dict, solves: Sequence[SolveResult | None] | None = None,
                   ) -> tuple[list[ObjectPlan], LifeLayer | None, int]:
    """Shared by CHARACTER and SOLVE: weights (T, C) at the model rate -> each object's reduced curves."""
    t0 = time.perf_counter()
    adjusted = _scaled(weights, options.smoothing_s, take.fps, options.strength)
    for c, channel in enumerate(channel_names):
        adjust = options.adjust.get(channel)
        if adjust is not None and (adjust.multiplier != 1.0 or adjust.offset != 0.0):
            adjusted[:, c] = adjusted[:, c] * np.float32(adjust.multiplier) + np.float32(adjust.offset)
    scene = timing.resample_to_scene(adjusted, take.fps, scene_fps)
    n_frames = int(scene.shape[0])
    values = {channel: scene[:, c] for c, channel in enumerate(channel_names)}
    frames = timing.scene_frames(first, n_frames)
    timings["resample_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    available = {ch for m in maps for ch, ts in m.targets.items() if ts}
    life = _life(options, take, n_frames, scene_fps, available)
    life_owned = set(life.driven()) if life is not None else set()
    if options.life is not None:
        if life is None or not life_owned:
            notes.append("The life layer found no eye or brow keys on the character: nothing to drive.")
        else:
            parts = [p for p, on in (("blinks", life.blinks), ("eyes", options.life.eyes and any(
                c.startswith("eyeLook") for c in life_owned)), ("brows", life.accents)) if on]
            notes.append(f"Life layer: {', '.join(parts) or 'nothing'} on {len(life_owned)} channels.")
            if options.life.brows and take.prosody is None:
                notes.append("No brow raises: the take has no prosody (this Blender could not decode its audio).")
    timings["life_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    mouth_channels = [c for c in channel_names if c not in life_owned]
    life_values = {k: v.astype(np.float32) for k, v in life.channels.items()} if life is not None else {}
    plans = []
    for i, (target, channel_map) in enumerate(zip(targets, maps, strict=True)):
        mouth = _key_values(values, channel_map, target, mouth_channels, n_frames)
        life_keys = _key_values(life_values, channel_map, target, sorted(life_owned), n_frames)
        for key in set(life_keys) & set(mouth):  # a key both drive: it stays with the mouth, life added
            mouth[key] = np.clip(mouth[key] + life_keys.pop(key), *target.slider(key)).astype(np.float32)
        plans.append(ObjectPlan(target.name, tuple(_reduced(mouth, frames, options.weight_tolerance)),
                                tuple(_reduced(life_keys, frames, options.weight_tolerance)), channel_map,
                                solve=solves[i] if solves else None))
    timings["reduce_s"] = time.perf_counter() - t2
    return plans, life, n_frames


def _character(take: Take, targets: Sequence[TargetMesh], options: BakeOptions, scene_fps: float, first: float,
               notes: list[str], timings: dict) -> tuple[list[ObjectPlan], LifeLayer | None, int]:
    if take.kind != "weights":
        raise PlanError("Character Shape Keys needs a blendshape model's weights; this take holds vertex offsets. "
                        "Choose Solve onto Shape Keys, Editable Basis or Mesh Cache, or a blendshape model.")
    life_channels = set(BLINK_CHANNELS + EYE_CHANNELS + BROW_CHANNELS) if options.life is not None else set()
    channels = list(take.channels) + sorted(life_channels - set(take.channels))
    maps, kept = [], []
    for i, target in enumerate(targets):
        channel_map = names.match_channels(channels, target.key_names, options.mapping)
        if channel_map.matched_count == 0:
            if i == 0:
                raise PlanError(names.no_match_sentence(target.name, len(take.channels)))
            notes.append(f"{target.name}: no shape key matches a channel, so it is left alone.")
            continue
        maps.append(channel_map)
        kept.append(target)
        notes.append(f"{target.name}: {channel_map.summary()}")
    plans, life, n_frames = _channel_plans(take, take.channels, take.data, kept, maps, options, scene_fps, first,
                                           notes, timings)
    return plans, life, n_frames


def _solve(take: Take, targets: Sequence[TargetMesh], options: BakeOptions, scene_fps: float, first: float,
           notes: list[str], timings: dict) -> tuple[list[ObjectPlan], LifeLayer | None, int]:
    target = targets[0]
    _check_vertices(take, target)
    if target.deltas is None or not target.key_names:
        raise PlanError(f"{target.name} has no shape keys to solve onto. Add keys (e.g. ARKit or FLAME "
                        "expressions), or choose Editable Basis or Mesh Cache.")
    chosen = [i for i, k in enumerate(target.key_names) if options.solve_filter.lower() in k.lower()]
    if not chosen:
        raise PlanError(f"No shape key of {target.name} contains {options.solve_filter!r}; clear the filter.")
    keys = [target.key_names[i] for i in chosen]
    deltas = np.asarray(target.deltas, dtype=np.float32)[chosen]
    lower = np.array([target.slider(k)[0] for k in keys], dtype=np.float64)
    upper = np.array([target.slider(k)[1] for k in keys], dtype=np.float64)
    t0 = time.perf_counter()
    key = ("solve", _digest(take.data), _digest(deltas, lower, upper), float(options.solve_smoothness))
    result = _cached(key, lambda: solve_weights(take.data, deltas, lower, upper,
                                                smoothness=options.solve_smoothness))
    timings["solve_s"] = time.perf_counter() - t0
    notes.append(f"{target.name}: {result.sentence()}")
    identity = names.ChannelMap(targets={k: (names.Target(k),) for k in keys}, unmatched_channels=(),
                                unused_keys=tuple(k for k in target.key_names if k not in keys),
                                convention="solved onto this mesh's keys")
    plans, life, n_frames = _channel_plans(take, keys, result.weights, [target], [identity], options, scene_fps,
                                           first, notes, timings, solves=[result])
    if options.life is not None and life is None:
        notes.append("The life layer drives ARKit-named keys; after a solve it drives only keys with those names.")
    return plans, life, n_frames


def _check_vertices(take: Take, target: TargetMesh) -> None:
    if take.kind != "vertices":
        raise PlanError("This take holds blendshape weights; choose Character Shape Keys, or animate again "
                        "in this mode (the worker then sends vertices).")
    if take.vertex_count != target.vertex_count:
        raise PlanError(f"{target.name} has {target.vertex_count} vertices; the take animates {take.vertex_count}. "
                        "Animate a mesh with the model's topology (same vertex count and order).")


def _basis(take: Take, targets: Sequence[TargetMesh], options: BakeOptions, scene_fps: float, first: float,
           label: str, notes: list[str], timings: dict) -> tuple[list[ObjectPlan], int]:
    target = targets[0]
    _check_vertices(take, target)
    t0 = time.perf_counter()
    key = ("basis", _digest(take.data), options.variance_target, options.max_keys, options.tolerance_m)
    basis = _cached(key, lambda: bake_math.decompose(take.data, variance_target=options.variance_target,
                                                     max_keys=options.max_keys,
                                                     error_tolerance_m=options.tolerance_m))
    t1 = time.perf_counter()
    weights = timing.resample_to_scene(_scaled(basis.weights, options.smoothing_s, take.fps, options.strength),
                                       take.fps, scene_fps)
    curves = keyframes.reduce_keyframes(weights, basis.scales, options.tolerance_m, shapes=basis.shapes)
    t2 = time.perf_counter()
    frames = timing.scene_frames(first, weights.shape[0])
    key_names = tuple(f"{label}_{k:02d}" for k in range(basis.n_keys))
    low = np.minimum(weights.min(axis=0), 0.0) if weights.size else np.zeros(basis.n_keys)
    high = np.maximum(weights.max(axis=0), 1.0) if weights.size else np.ones(basis.n_keys)
    new_keys = NewKeys(key_names, basis.shapes, low.astype(np.float32), high.astype(np.float32),
                       float(basis.error_max_m))
    plan = ObjectPlan(target.name, tuple(CurvePlan(n, frames[c.indices], c.values)
                                         for n, c in zip(key_names, curves, strict=True)), new_keys=new_keys)
    timings.update(decompose_s=t1 - t0, reduce_s=t2 - t1)
    notes.append(f"{basis.n_keys} editable keys reproduce the take within {basis.error_max_m * 1000:.2f} mm.")
    if options.life is not None:
        notes.append("The life layer needs ARKit-named keys; the editable basis has none, so it is off.")
    return [plan], int(weights.shape[0])


def _mesh_cache(take: Take, targets: Sequence[TargetMesh], options: BakeOptions, scene_fps: float, notes: list[str],
                timings: dict) -> tuple[list[ObjectPlan], int]:
    target = targets[0]
    _check_vertices(take, target)
    t0 = time.perf_counter()
    offsets = timing.resample_to_scene(_scaled(take.data, options.smoothing_s, take.fps, options.strength),
                                       take.fps, scene_fps)
    timings["resample_s"] = time.perf_counter() - t0
    if options.life is not None:
        notes.append("The life layer needs ARKit-named keys; a mesh cache has none, so it is off.")
    return [ObjectPlan(target.name, mesh_cache=offsets)], int(offsets.shape[0])


def plan_bake(take: Take, targets: Sequence[TargetMesh], options: BakeOptions, scene_fps: float,
              label: str) -> BakePlan:
    """The plan for baking ``take`` onto ``targets`` (the first is the active mesh; CHARACTER also drives the
    others that share key names). ``label`` names the bake's Action (``JT_<take>_<nnn>``)."""
    if not targets:
        raise PlanError("Select the mesh to animate.")
    scene_fps = timing.effective_fps(scene_fps)
    first = float(take.first_frame) + float(options.timing_offset_frames)
    notes: list[str] = []
    timings: dict = {}
    t0 = time.perf_counter()
    life = None
    if options.mode == "CHARACTER":
        objects, life, n_frames = _character(take, targets, options, scene_fps, first, notes, timings)
    elif options.mode == "SOLVE":
        objects, life, n_frames = _solve(take, targets, options, scene_fps, first, notes, timings)
    elif options.mode == "SHAPE_KEYS":
        objects, n_frames = _basis(take, targets, options, scene_fps, first, label, notes, timings)
    else:
        objects, n_frames = _mesh_cache(take, targets, options, scene_fps, notes, timings)
    timings["plan_s"] = time.perf_counter() - t0
    return BakePlan(take=take.name, mode=options.mode, label=label, scene_fps=scene_fps, first_frame=first,
                    n_frames=n_frames, objects=tuple(objects), life=life, notes=tuple(notes), timings=timings)
