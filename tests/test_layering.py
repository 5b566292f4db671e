"""The extension's layering, checked on the source: core/ is pure (stdlib + numpy), nothing imports torch."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTENSION = REPO / "jambatalk_blender"


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(top-level module, relative level) of every import in a file, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(((node.module or "").split(".")[0], node.level))
    return found


def test_core_imports_only_the_standard_library_numpy_and_itself():
    offenders = []
    for path in sorted((EXTENSION / "core").glob("*.py")):
        for module, level in imported_modules(path):
            if level == 1:
                continue  # a sibling in core/
            if level > 1 or module not in (*sys.stdlib_module_names, "numpy", "__future__"):
                offenders.append(f"{path.name}: {'.' * level}{module}")
    assert offenders == []


def test_the_extension_never_imports_torch_or_model_core():
    offenders = [f"{path.relative_to(REPO)}: {module}" for path in sorted(EXTENSION.rglob("*.py"))
                 for module, _ in imported_modules(path) if module in ("torch", "model_core", "scipy")]
    assert offenders == []
