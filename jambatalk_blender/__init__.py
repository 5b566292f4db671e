"""JambaTalk for Blender: the Blender extension package.

Layering (docs/architecture.md): Blender glue (operators, panel, preferences) imports bpy, numpy and this
package's pure modules only; the pure modules (worker client, bake maths, cache writers) import only the
standard library and numpy. Nothing here imports torch or model_core: inference runs in the worker process.
The operators arrive with the Blender-extension work; until then the extension registers nothing.
"""


def register() -> None:
    """Blender calls this when the extension is enabled."""


def unregister() -> None:
    """Blender calls this when the extension is disabled."""
