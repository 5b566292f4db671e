"""Neutral templates per subject, read without pickle.

`templates.npz` (subject -> (V, 3)) is the format; a plain layout may instead give one mesh per subject in
`templates/<subject>.npy` or `.obj`. FaceFormer's `templates.pkl` is a pickle and is never read here:
`scripts/prepare_vocaset --convert-templates` turns it into templates.npz once, as trusted local data.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from model_core.templates import read_template

TEMPLATES_NPZ = "templates.npz"
TEMPLATES_DIR = "templates"


def load_templates(root: Path, subjects: list[str] | None = None) -> dict[str, np.ndarray]:
    """subject -> (V, 3) float32 for every subject found (or for `subjects`, with an error if one is missing)."""
    npz = root / TEMPLATES_NPZ
    templates: dict[str, np.ndarray] = {}
    if npz.is_file():
        try:
            with np.load(npz, allow_pickle=False) as data:
                for key in data.files:
                    templates[key] = np.asarray(data[key], dtype=np.float32).reshape(-1, 3)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{npz} is not a readable .npz of plain arrays ({exc}).") from exc
    elif (root / TEMPLATES_DIR).is_dir():
        for path in sorted((root / TEMPLATES_DIR).iterdir()):
            if path.suffix.lower() in (".npy", ".obj"):
                templates[path.stem] = read_template(path)
    elif (root / "templates.pkl").is_file():
        raise ValueError(
            f"{root} has FaceFormer's templates.pkl but no {TEMPLATES_NPZ}. Pickles are never loaded during "
            f"training; convert it once (trusted local data): scripts/prepare_vocaset --convert-templates "
            f"{root / 'templates.pkl'} {npz}"
        )
    else:
        raise ValueError(f"{root} has no neutral templates: expected {TEMPLATES_NPZ} (subject -> (V, 3) arrays) "
                         f"or a {TEMPLATES_DIR}/ folder with <subject>.npy or <subject>.obj meshes.")
    if subjects is not None:
        missing = sorted(set(subjects) - set(templates))
        if missing:
            raise ValueError(f"No neutral template for subject(s) {', '.join(missing)} in {root}.")
    counts = {t.shape[0] for t in templates.values()}
    if len(counts) > 1:
        raise ValueError(f"The templates in {root} have different vertex counts {sorted(counts)}; "
                         "every subject must share one topology.")
    for name, t in templates.items():
        if not np.isfinite(t).all():
            raise ValueError(f"The template of {name} in {root} contains NaN or infinite coordinates.")
    return templates
