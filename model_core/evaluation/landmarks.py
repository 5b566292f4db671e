"""Which vertices of a checkpoint's mesh are the lips and the chin: the scorecard measures only those.

In order: a `--landmarks FILE.json` the user passed; the checkpoint's own `landmarks` metadata (a JSON dict
name -> vertex index); the synthetic head's landmarks when the vertex count is one `model_core.synth` makes
(the demo model). The result is checked on the neutral template, so a wrong guess is refused, not scored.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import safe_open

from model_core.evaluation.speech_scorecard import REQUIRED_LANDMARKS

METADATA_KEY = "landmarks"
_HINT = "pass --landmarks FILE.json (a JSON object of vertex indices: lip_upper, lip_lower, chin)"


def synthetic_landmarks(vertex_count: int) -> dict[str, int] | None:
    """The synthetic head's landmarks when some `build_topology(target)` has exactly `vertex_count` vertices."""
    from model_core.synth.blendshapes import landmarks
    from model_core.synth.head import build_topology

    # The slits and eyeballs add a fixed few dozen vertices to the target; look near it first.
    for target in sorted(range(max(600, vertex_count - 1000), min(40000, vertex_count) + 1),
                         key=lambda t: abs(vertex_count - 33 - t)):
        top = build_topology(target)
        if top.vertex_count == vertex_count:
            return landmarks(top)
    return None


def _checked(marks: object, vertex_count: int, origin: str) -> dict[str, int]:
    if not isinstance(marks, dict):
        raise ValueError(f"The landmarks in {origin} are not a JSON object of name -> vertex index.")
    missing = [n for n in REQUIRED_LANDMARKS if n not in marks]
    if missing:
        raise ValueError(f"The landmarks in {origin} lack {', '.join(missing)}.")
    out = {}
    for name, index in marks.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < vertex_count:
            raise ValueError(f"Landmark {name!r} in {origin} is {index!r}, not a vertex index below {vertex_count}.")
        out[str(name)] = index
    return out


def _plausible(marks: dict[str, int], template: np.ndarray, origin: str) -> None:
    """Lips above the chin, lip centres within 5 mm of each other at rest: else these are not this head's lips."""
    t = np.asarray(template, dtype=np.float64).reshape(-1, 3)
    up, lo, chin = (t[marks[n]] for n in REQUIRED_LANDMARKS)
    if not (lo[1] > chin[1] and np.linalg.norm(up - lo) < 0.005):
        raise ValueError(f"The landmarks from {origin} do not sit on this model's lips and chin "
                         f"(the neutral's lips {np.linalg.norm(up - lo) * 1000:.1f} mm apart); {_HINT}.")


def resolve_landmarks(checkpoint: str | Path, vertex_count: int, template: np.ndarray,
                      landmarks_file: str | Path | None = None) -> tuple[dict[str, int], str]:
    """(name -> vertex index, where they came from) for a vertex-output checkpoint; one-sentence errors."""
    if landmarks_file is not None:
        path = Path(landmarks_file)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"The landmarks file {path} cannot be read as JSON ({exc}).") from exc
        marks, origin = _checked(data, vertex_count, str(path)), f"file {path}"
    else:
        with safe_open(str(checkpoint), framework="pt") as f:
            meta = f.metadata() or {}
        try:
            data = json.loads(meta.get(METADATA_KEY) or "{}")
        except ValueError as exc:
            raise ValueError(f"The '{METADATA_KEY}' metadata of {checkpoint} is not JSON ({exc}).") from exc
        if data:  # checkpoints without a head write an empty object
            marks, origin = _checked(data, vertex_count, f"the metadata of {checkpoint}"), "checkpoint metadata"
        else:
            found = synthetic_landmarks(vertex_count)
            if found is None:
                raise ValueError(f"{checkpoint} names no landmarks and its {vertex_count} vertices are not the "
                                 f"synthetic head's; {_HINT}.")
            marks, origin = found, f"synthetic head topology ({vertex_count} vertices)"
    _plausible(marks, template, origin)
    return marks, origin
