"""JambaTalk for Blender: the Blender extension package.

Layering (docs/architecture.md): Blender glue (operators, panel, preferences) imports bpy, numpy and this
package's pure modules only; the pure modules (worker client, bake maths, cache writers) import only the
standard library and numpy. Nothing here imports torch or model_core: inference runs in the worker process.

bpy is imported only inside register()/unregister(), so the pure modules stay importable outside Blender
(``from jambatalk_blender import timing`` in the main test suite). Inside Blender the package is installed as
``bl_ext.<repo>.jambatalk_blender``; every import here is relative.
"""

_registered: list = []


def _classes() -> list:
    from . import operators, panel, preferences

    return [*preferences.classes, *operators.classes, *panel.classes]


def register() -> None:
    """Blender calls this when the extension is enabled."""
    import bpy

    from . import operators

    for cls in _classes():
        bpy.utils.register_class(cls)
        _registered.append(cls)
    operators.register_properties()


def unregister() -> None:
    """Blender calls this when the extension is disabled: stop jobs and the local worker, remove the UI."""
    import bpy

    from . import operators

    operators.shutdown()
    operators.unregister_properties()
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
