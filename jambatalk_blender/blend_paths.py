"""Paths the animator typed, resolved against the .blend: Blender's `//` prefix means "next to the .blend file".

A `//` path cannot be resolved while the .blend is unsaved (`bpy.path.abspath` would quietly make it relative to
the current directory), so the readers and writers here refuse it with a sentence instead.
Main thread only (reads bpy.data).
"""

from __future__ import annotations

import os

import bpy


def relative_to_unsaved_blend(path: str, library: bpy.types.Library | None = None) -> bool:
    """True for a `//` path that cannot be resolved yet: relative to this .blend, which has never been saved.

    A linked datablock's path (`library` given) is relative to its library's .blend, not to this one.
    """
    return path.startswith("//") and not bpy.data.filepath and library is None


def absolute_path(path: str, what: str, error: type[Exception]) -> str:
    """The animator's `path` with `//` resolved against the saved .blend, normalised.

    Raises `error` with a sentence naming the path (`what`: "audio", "export") while the .blend is unsaved.
    """
    if relative_to_unsaved_blend(path):
        raise error(f"The {what} path {path} is relative to the .blend, which is not saved yet.")
    return os.path.normpath(bpy.path.abspath(path))
