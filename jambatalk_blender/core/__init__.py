"""The extension's pure modules: standard library and numpy only, never bpy, torch or model_core.

Everything that can be computed without Blender lives here (the worker client, the take and its sidecar, the
bake plan and its maths, keyframe reduction, timing, mesh-cache files), so it runs and is tested in plain
Python; the Blender glue one folder up only reads the scene and writes a finished plan into it.
tests/test_layering.py fails if a module here imports bpy.
"""
