"""Fixtures for the Blender-side tests, run with the bpy venv (scripts/test_blender), never the main one.

One real worker subprocess (the main venv's Python, which has torch) serves a tiny checkpoint made by that
Python for the whole session; these tests never import torch. Every test starts from an empty factory scene
(`read_homefile(use_empty=True, use_factory_startup=True)` keeps the add-on enabled).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

# bpy writes its user config (extension repos, prefs) here: keep it out of ~/.config.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="jt-blender-user-"))

import bpy  # noqa: E402  (after the environment above)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

addon_utils = importlib.import_module("addon_utils")  # Blender's own module: importable once bpy is

REPO = Path(__file__).resolve().parents[1]
VERTICES = 48  # a 6 x 8 grid head: the tiny checkpoint animates this many vertices
GRID = (6, 8)
WORKER_PYTHON = os.environ.get("JAMBATALK_WORKER_PYTHON", str(REPO / ".venv" / "bin" / "python"))
ADDON = "jambatalk_blender"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the add-on module, as a plain add-on from this checkout
SR = 16000

from tests.speech_audio import speech_like  # noqa: E402  (numpy only; after the checkout is on sys.path)

needs_audio = pytest.mark.skipif(not bpy.app.build_options.audaspace,
                                 reason="this bpy build has no audaspace (PyPI bpy 4.2): no sound strips")


def make_checkpoint(folder: Path, vertices: int = VERTICES) -> Path:
    """A tiny random checkpoint, made by the worker's Python (torch stays out of this process)."""
    path = folder / "tiny.safetensors"
    code = ("import sys; from model_core.checkpoint import save_checkpoint; "
            "from tests.conftest import make_model, tiny_config; "
            "save_checkpoint(sys.argv[1], make_model(tiny_config(vertex_count=int(sys.argv[2]))))")
    subprocess.run([WORKER_PYTHON, "-c", code, str(path), str(vertices)], cwd=REPO, check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    return path


def make_arkit_checkpoint(folder: Path, vertices: int = VERTICES) -> Path:
    """A tiny random blendshape model with the 52 ARKit channels and a random head basis, served as "arkit"."""
    path = folder / "arkit.safetensors"
    code = ("import sys, torch; from model_core.checkpoint import CheckpointInfo, save_checkpoint; "
            "from tests.conftest import make_model, tiny_config; "
            "from jambatalk_blender.core.names import ARKIT_52; v = int(sys.argv[2]); "
            "m = make_model(tiny_config(vertex_count=v, output_kind='blendshapes', "
            "blendshape_names=list(ARKIT_52)), head_std=0.3); "
            "torch.nn.init.constant_(m.output_map.bias, 0.4); "
            "m.set_blendshape_basis(torch.randn(52, v, 3, generator=torch.Generator().manual_seed(0)) * 0.01); "
            "save_checkpoint(sys.argv[1], m, CheckpointInfo(config=m.config))")
    subprocess.run([WORKER_PYTHON, "-c", code, str(path), str(vertices)], cwd=REPO, check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    if not Path(WORKER_PYTHON).is_file():
        pytest.skip(f"no worker Python at {WORKER_PYTHON} (set JAMBATALK_WORKER_PYTHON)")
    return make_checkpoint(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="session")
def arkit_checkpoint(checkpoint) -> Path:
    return make_arkit_checkpoint(checkpoint.parent)


def configure(prefs, checkpoint: Path) -> None:
    """The local worker serves the tiny vertex model ("tiny", the default) and the ARKit one ("arkit")."""
    prefs.worker_mode = "LOCAL"
    prefs.worker_python = WORKER_PYTHON
    prefs.worker_root = str(REPO)
    prefs.checkpoint = str(checkpoint)
    prefs.extra_checkpoints = str(checkpoint.parent / "arkit.safetensors")
    prefs.device = "cpu"


@pytest.fixture(scope="session")
def addon(checkpoint, arkit_checkpoint):
    """The add-on enabled as a plain add-on module from this checkout, configured for the tiny worker."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the worker: steady timings on a shared CI box
    module = addon_utils.enable(ADDON, default_set=True, handle_error=None)
    assert module is not None, "the add-on failed to enable"
    configure(bpy.context.preferences.addons[ADDON].preferences, checkpoint)
    yield module
    addon_utils.disable(ADDON, default_set=True)  # unregister(): stops the worker


@pytest.fixture
def ops_module(addon):
    return sys.modules[f"{ADDON}.operators"]


@pytest.fixture
def scene(addon, checkpoint):
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    configure(bpy.context.preferences.addons[ADDON].preferences, checkpoint)
    return bpy.context.scene


def grid_coordinates(nx: int = GRID[0], ny: int = GRID[1]) -> np.ndarray:
    x, y = np.meshgrid(np.linspace(-0.08, 0.08, nx), np.linspace(-0.1, 0.1, ny), indexing="xy")
    z = 0.02 * np.cos(x * 20) * np.cos(y * 15)
    return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1).astype(np.float32)


def make_head(name: str = "head", nx: int = GRID[0], ny: int = GRID[1], active: bool = True):
    """A quad-grid mesh standing in for a FLAME head (same vertex count as the tiny model)."""
    co = grid_coordinates(nx, ny)
    faces = [(j * nx + i, j * nx + i + 1, (j + 1) * nx + i + 1, (j + 1) * nx + i)
             for j in range(ny - 1) for i in range(nx - 1)]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(co.tolist(), [], faces)
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    if active:
        bpy.context.view_layer.objects.active = obj
        obj.select_set(True)
    return obj


def world_positions(obj) -> np.ndarray:
    """(V, 3) world-space vertex positions of the evaluated object at the current frame."""
    from jambatalk_blender import compat  # after the add-on path is on sys.path

    co = compat.evaluated_coordinates(obj)
    m = np.array(obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).matrix_world)
    return co @ m[:3, :3].T + m[:3, 3]


def write_wav(path: Path, seconds: float, seed: int = 0) -> Path:
    samples = (np.clip(speech_like(seconds, SR, seed), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(samples.tobytes())
    return path


@pytest.fixture(scope="session")
def wav_path(tmp_path_factory) -> Path:
    return write_wav(tmp_path_factory.mktemp("audio") / "line01.wav", 3.0)


# PyPI bpy 4.2 crashes in its own teardown once the glTF exporter has run: a segfault after Python's
# finalisation, reproduced with a ten-line script that exports a cube (4.5 and 5.0 are fine). End the test
# process ourselves there, with pytest's own exit status, once everything is reported.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS.append(int(exitstatus))


def pytest_unconfigure(config):
    if bpy.app.version < (4, 3, 0) and _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
