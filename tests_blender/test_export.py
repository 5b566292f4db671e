"""FBX (shape keys) and Alembic (evaluated mesh) exports re-imported reproduce the baked animation."""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from conftest import make_head, world_positions

from jambatalk_blender import audio_source


@pytest.fixture
def baked(scene, wav_path):
    scene.render.fps = 30
    obj = make_head()
    scene.jambatalk.source = "FILE"
    scene.jambatalk.audio_file = str(wav_path)
    scene.jambatalk.file_start_frame = 1
    assert bpy.ops.jambatalk.animate_from_audio() == {"FINISHED"}
    lo, hi = obj.data.shape_keys.animation_data.action.frame_range
    scene.frame_start, scene.frame_end = int(lo), int(hi)
    assert audio_source  # the bake used the file source
    return obj


def sample_frames(scene) -> list[int]:
    return sorted({scene.frame_start, scene.frame_start + 7, (scene.frame_start + scene.frame_end) // 2,
                   scene.frame_end - 3, scene.frame_end})


def reference(scene, obj) -> dict[int, np.ndarray]:
    out = {}
    for f in sample_frames(scene):
        scene.frame_set(f)
        out[f] = world_positions(obj)
    return out


def test_fbx_round_trip_keeps_the_shape_key_animation(scene, baked, tmp_path):
    ref = reference(scene, baked)
    assert bpy.ops.jambatalk.export_fbx(filepath=str(tmp_path / "head.fbx")) == {"FINISHED"}
    baked.name = "source"
    baked.hide_set(True)
    before = set(bpy.data.objects)
    bpy.ops.import_scene.fbx(filepath=str(tmp_path / "head.fbx"), anim_offset=0.0)
    imported = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    assert len(imported) == 1
    key = imported[0].data.shape_keys
    assert key is not None and key.animation_data is not None and key.animation_data.action is not None
    jt = [kb.name for kb in key.key_blocks if kb.name.startswith("JT_")]
    assert len(jt) == len([kb for kb in baked.data.shape_keys.key_blocks if kb.name.startswith("JT_")])
    for f, expected in ref.items():
        scene.frame_set(f)
        got = world_positions(imported[0])
        assert np.abs(got - expected).max() < 1e-5, f


@pytest.mark.parametrize("mode", ["SHAPE_KEYS", "MESH_CACHE"])
def test_alembic_round_trip(scene, wav_path, tmp_path, mode):
    scene.render.fps = 25
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    obj = make_head()
    scene.jambatalk.source = "FILE"
    scene.jambatalk.audio_file = str(wav_path)
    scene.jambatalk.output_mode = mode
    assert bpy.ops.jambatalk.animate_from_audio() == {"FINISHED"}
    scene.frame_start, scene.frame_end = 1, 60
    ref = reference(scene, obj)
    path = tmp_path / "head.abc"
    assert bpy.ops.jambatalk.export_alembic(filepath=str(path)) == {"FINISHED"}
    obj.hide_set(True)
    before = set(bpy.data.objects)
    bpy.ops.wm.alembic_import(filepath=str(path), set_frame_range=True, as_background_job=False)
    imported = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    assert len(imported) == 1
    for f, expected in ref.items():
        scene.frame_set(f)
        got = world_positions(imported[0])
        assert np.abs(got - expected).max() < 1e-5, f
    moved = max(np.abs(ref[f] - ref[scene.frame_start]).max() for f in ref)
    assert moved > 1e-4  # the face really moves in the exported range


def test_fbx_export_of_a_mesh_cache_bake_explains_alembic(scene, wav_path):
    make_head()
    with pytest.raises(RuntimeError, match="no shape-key animation"):
        bpy.ops.jambatalk.export_fbx(filepath="/tmp/never.fbx")
