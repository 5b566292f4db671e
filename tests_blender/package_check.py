"""Install the built extension zip into a fresh Blender user folder, enable it and bake through it.

Run in its own process by test_package.py (a second copy of the add-on's classes cannot be registered next to
the plain add-on the other tests use). Args: ZIP CHECKPOINT WAV. Prints one JSON line with what it saw.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="jt-ext-user-")

import bpy  # noqa: E402

addon_utils = importlib.import_module("addon_utils")  # Blender's own module: importable once bpy is

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import REPO, WORKER_PYTHON, make_head  # noqa: E402

MODULE = "bl_ext.user_default.jambatalk_blender"


def main() -> None:
    zip_path, checkpoint, wav = sys.argv[1:4]
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                      enable_on_install=True)
    out = {"install": sorted(result), "enabled": MODULE in bpy.context.preferences.addons,
           "jambatalk_blender_on_path": any(m == "jambatalk_blender" for m in sys.modules)}
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.worker_python, prefs.worker_root, prefs.checkpoint, prefs.device = WORKER_PYTHON, str(REPO), checkpoint, "cpu"
    obj = make_head()
    scene = bpy.context.scene
    scene.jambatalk.source = "FILE"
    scene.jambatalk.audio_file = wav
    out["bake"] = sorted(bpy.ops.jambatalk.animate_from_audio())
    key = obj.data.shape_keys
    out["action"] = key.animation_data.action.name if key and key.animation_data else None
    out["modules"] = sorted(m for m in sys.modules if m.startswith("bl_ext.") and "jambatalk" in m)[:3]
    out["torch_imported"] = "torch" in sys.modules
    addon_utils.disable(MODULE, default_set=True)
    out["disabled"] = MODULE not in bpy.context.preferences.addons
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
