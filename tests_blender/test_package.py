"""The built extension zip installs with Blender's own installer, enables as bl_ext.<repo>.jambatalk_blender and
bakes through a real worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

from conftest import REPO


def test_built_zip_installs_enables_and_bakes(tmp_path, checkpoint, wav_path):
    built = subprocess.run([str(REPO / "scripts" / "build_extension"), str(tmp_path / "dist")],
                           env={**os.environ, "BLENDER_PYTHON": sys.executable}, capture_output=True, text=True,
                           timeout=120)
    assert built.returncode == 0, built.stderr + built.stdout
    zip_path = built.stdout.strip().splitlines()[-1]
    assert zip_path.endswith("jambatalk_blender-0.1.0.zip")
    names = zipfile.ZipFile(zip_path).namelist()
    assert {"__init__.py", "blender_manifest.toml", "operators.py", "core/__init__.py",
            "core/worker_client.py"} <= set(names)
    assert not any("__pycache__" in n for n in names)

    env = {k: v for k, v in os.environ.items() if k != "BLENDER_USER_RESOURCES"}
    done = subprocess.run([sys.executable, str(REPO / "tests_blender" / "package_check.py"), zip_path,
                           str(checkpoint), str(wav_path)], cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["install"] == ["FINISHED"] and out["enabled"]
    assert not out["jambatalk_blender_on_path"]  # it ran from the installed extension, not this checkout
    assert out["bake"] == ["FINISHED"] and out["action"].startswith("JT_line01_")
    assert out["modules"] and not out["torch_imported"]
    assert out["disabled"]
