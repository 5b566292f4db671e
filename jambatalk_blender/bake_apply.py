"""Glue between a finished take and the scene: read the targets, plan the bake (core), write it (bpy_writers).

Takes live in memory (`TAKES`) and in a sidecar next to the .blend (``//jambatalk/<take>.npz``), written at
once when the .blend is saved, else by the save handler on the next save. Re-bake reads the take back (memory
first, then the sidecar), so it never calls the worker: strength, smoothing, timing, per-channel multipliers,
mapping, tolerance and the life layer change in well under a second. Main thread only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time

import bpy
import numpy as np

from . import bpy_writers, compat
from .bpy_writers import FINGERPRINT_PROP, LABEL_PROP, MODE_PROP, OBJECTS_PROP, TAKE_PROP, BakeError
from .core import names
from .core.bake_plan import BakeOptions, ChannelAdjust, PlanError, TargetMesh, plan_bake
from .core.life import LifeSettings
from .core.take import Take, TakeError, load_take, save_take, sidecar_relative_path

TAKES: dict[str, Take] = {}  # take name -> its raw result, for this session's re-bakes


# -- audio decoding for prosody (Blender's own audio library, where this build has it) ------------------------
def aud_decoder(data: bytes, path: str | None) -> tuple[np.ndarray, int]:
    """Mono samples of any file Blender can play (FLAC, MP3, OGG ...): used off the main thread, read only."""
    import aud  # absent from builds without audio (e.g. the PyPI bpy 4.2 wheel): the caller goes on without

    cleanup = None
    if path is None or not os.path.isfile(path):
        fd, cleanup = tempfile.mkstemp(suffix=".audio")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        path = cleanup
    try:
        sound = aud.Sound(path)
        samples = np.asarray(sound.data(), dtype=np.float32)
        return samples.mean(axis=1) if samples.ndim == 2 else samples, int(sound.specs[0])
    finally:
        if cleanup is not None:
            with contextlib.suppress(OSError):
                os.unlink(cleanup)


# -- options and targets -------------------------------------------------------------------------------------
def options_from_settings(settings, mode: str) -> BakeOptions:
    """The scene's JambaTalk settings as the pure bake's options (``mode`` already resolved)."""
    mapping = None
    if settings.mapping_file:
        path = bpy.path.abspath(settings.mapping_file)
        try:
            mapping = names.read_user_mapping(path)
        except names.MappingError as exc:
            raise BakeError(str(exc)) from None
    adjust = {item.name: ChannelAdjust(item.multiplier, item.offset) for item in settings.channel_adjust
              if item.name}
    life = None
    if settings.life_enabled:
        life = LifeSettings(seed=settings.life_seed, blinks=settings.life_blinks,
                            blink_strength=settings.life_blink_strength, eyes=settings.life_eyes,
                            eye_strength=settings.life_eye_strength, brows=settings.life_brows,
                            brow_strength=settings.life_brow_strength)
    return BakeOptions(mode=mode, strength=settings.strength, smoothing_s=settings.smoothing_s,
                       timing_offset_frames=settings.timing_offset, weight_tolerance=settings.weight_tolerance,
                       adjust=adjust, mapping=mapping, life=life, solve_smoothness=settings.solve_smoothness,
                       solve_filter=settings.solve_filter)


def user_key_names(obj) -> tuple[str, ...]:
    """The mesh's shape keys an animation may drive: not the Basis, not JambaTalk's own basis keys."""
    key = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    if key is None:
        return ()
    return tuple(kb.name for kb in key.key_blocks
                 if kb != key.reference_key and not kb.name.startswith(bpy_writers.PREFIX))


def target_mesh(obj, with_deltas: bool = False) -> TargetMesh:
    keys = user_key_names(obj)
    key = obj.data.shape_keys
    ranges = {name: (float(key.key_blocks[name].slider_min), float(key.key_blocks[name].slider_max))
              for name in keys}
    deltas = None
    if with_deltas and keys:
        basis = compat.key_block_coordinates(key.reference_key)
        deltas = np.stack([compat.key_block_coordinates(key.key_blocks[n]) - basis for n in keys])
    return TargetMesh(obj.name, compat.vertex_count(obj), keys, ranges, deltas)


def target_objects(context, active, mode: str) -> list:
    """The active mesh first; in character mode also every other selected mesh with shape keys."""
    if active is None or active.type != "MESH":
        raise BakeError("Select the head mesh to animate (it must be the active object).")
    objects = [active]
    if mode == "CHARACTER" and context.scene.jambatalk.drive_selected:
        objects += [o for o in context.selected_objects if o is not active and o.type == "MESH"
                    and o.data.shape_keys is not None]
    return objects


# -- takes on disk ---------------------------------------------------------------------------------------------
def sidecar_path(take_name: str) -> str | None:
    """Absolute sidecar path of a take, or None while the .blend is not saved."""
    return bpy.path.abspath(sidecar_relative_path(take_name)) if bpy.data.filepath else None


def keep_take(take: Take) -> str | None:
    """Remember ``take`` for re-bakes; write its sidecar when the .blend has a folder (else at the next save)."""
    TAKES[take.name] = take
    path = sidecar_path(take.name)
    if path is None:
        return None
    try:
        save_take(take, path)
    except OSError as exc:
        raise BakeError(f"Could not write the take file {path} ({exc.strerror or exc}); the bake is kept but "
                        "Re-bake after reloading the .blend will need Animate again.") from None
    return sidecar_relative_path(take.name)


def find_take(take_name: str) -> Take:
    if take_name in TAKES:
        return TAKES[take_name]
    path = sidecar_path(take_name)
    if path is None or not os.path.isfile(path):
        raise BakeError(f"The take {take_name!r} is not in memory and has no take file "
                        f"({sidecar_relative_path(take_name)}); click Animate from Audio again.")
    try:
        take = load_take(path)
    except TakeError as exc:
        raise BakeError(str(exc)) from None
    TAKES[take.name] = take
    return take


@bpy.app.handlers.persistent
def save_takes(*_args) -> None:
    """save_post: write the sidecars of this session's takes that the saved .blend refers to."""
    used = {a.get(TAKE_PROP) for a in bpy.data.actions if a.get(TAKE_PROP)}
    for name, take in TAKES.items():
        path = sidecar_path(name)
        if name in used and path is not None and not os.path.isfile(path):
            with contextlib.suppress(OSError):
                save_take(take, path)


@bpy.app.handlers.persistent
def forget_takes(*_args) -> None:
    """load_post: takes belong to the file they were made in; another file reads its own sidecars."""
    TAKES.clear()


# -- bake and re-bake ------------------------------------------------------------------------------------------
def _bake(context, take: Take, mode: str, objects: list, label: str) -> dict:
    settings = context.scene.jambatalk
    options = options_from_settings(settings, mode)
    t0 = time.perf_counter()
    targets = [target_mesh(o, with_deltas=(mode == "SOLVE" and i == 0)) for i, o in enumerate(objects)]
    t1 = time.perf_counter()
    try:
        plan = plan_bake(take, targets, options, compat.scene_fps(context.scene), label)
    except PlanError as exc:
        raise BakeError(str(exc)) from None
    t2 = time.perf_counter()
    info = bpy_writers.write_plan(plan, objects)
    t3 = time.perf_counter()
    info["timings"] = {"read_s": t1 - t0, **plan.timings, "plan_s": t2 - t1, "write_s": t3 - t2}
    info["tolerance_m"], info["weight_tolerance"] = options.tolerance_m, options.weight_tolerance
    info["model_frames"], info["model_fps"] = take.n_frames, take.fps
    info["scene_fps"], info["first_frame"] = plan.scene_fps, plan.first_frame
    info["life"] = list(plan.life.driven()) if plan.life is not None else []
    info["life_blinks"] = len(plan.life.blinks) if plan.life is not None else 0
    if plan.objects and plan.objects[0].solve is not None:
        info["solve_error_max_m"] = plan.objects[0].solve.error_max_m
    return info


def apply_take(context, take: Take, mode: str, active) -> dict:
    """A new bake of ``take`` (Animate from Audio): keep the take, plan, write a new numbered Action."""
    if take is None:
        raise BakeError("The animation job has no result to bake.")
    objects = target_objects(context, active, mode)
    sidecar = keep_take(take)
    context.scene.jambatalk.last_take = take.name
    info = _bake(context, take, mode, objects, bpy_writers.bake_label(take.name))
    info["sidecar"] = sidecar
    return info


def current_bake(obj) -> bpy.types.Action | None:
    """The JambaTalk Action now on the object's Key (the one Re-bake rewrites), if any."""
    key = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    ad = key.animation_data if key is not None else None
    action = ad.action if ad is not None else None
    return action if action is not None and action.get(TAKE_PROP) else None


def rebake(context, active) -> dict:
    """Bake the active object's take again with the scene's current settings, without the worker.

    The bake's own Actions are rewritten under the same name, unless the animator edited them since (their
    keys no longer match the fingerprint): then they stay, and the re-bake gets the next number.
    """
    settings = context.scene.jambatalk
    action = current_bake(active)
    cache_mod = active.modifiers.get(bpy_writers.CACHE_MODIFIER) if active is not None else None
    if action is not None:
        take_name, mode = str(action[TAKE_PROP]), str(action.get(MODE_PROP, "CHARACTER"))
        object_names = json.loads(action.get(OBJECTS_PROP, "[]"))
    elif cache_mod is not None and settings.last_take:
        take_name, mode, object_names = settings.last_take, "MESH_CACHE", [active.name]
    else:
        raise BakeError("The active object has no JambaTalk bake to re-bake; click Animate from Audio first.")
    if settings.output_mode not in ("AUTO", mode):
        mode = settings.output_mode  # the animator picked another mode: the take must hold what it needs
    take = find_take(take_name)
    # The bake's objects in their order (the primary first), wherever the animator made one of them active.
    objects = [bpy.data.objects[n] for n in object_names if n in bpy.data.objects and
               bpy.data.objects[n].type == "MESH"]
    if active not in objects:
        objects.insert(0, active)
    previous = action.name if action is not None else None
    edited = action is not None and action.get(FINGERPRINT_PROP) != bpy_writers.action_fingerprint(action)
    if action is not None and not edited and action.get(LABEL_PROP):
        label = str(action[LABEL_PROP])
        bpy_writers.remove_bake(label, take_name, objects)
    else:
        label = bpy_writers.bake_label(take_name)
    info = _bake(context, take, mode, objects, label)
    info["rebaked_from"] = previous
    info["kept_edited"] = bool(edited)
    return info
