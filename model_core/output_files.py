"""An animation as the files pipelines import: offsets (.npy), vertex caches (PC2, MDD) and ARKit weights
(Live Link Face CSV, JSON). Shared by `jambatalk animate` and `jambatalk batch`; no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.arkit_formats import write_arkit_json, write_live_link_csv
from model_core.mesh_cache import write_mdd, write_npy, write_pc2
from model_core.templates import read_template

FORMATS = ("npy", "pc2", "mdd", "arkit-csv", "arkit-json")
WEIGHT_FORMATS = {"arkit-csv": "csv", "arkit-json": "json"}
VERTEX_CACHE_FORMATS = ("pc2", "mdd")


def file_suffix(fmt: str) -> str:
    return WEIGHT_FORMATS.get(fmt, fmt)


def check_format(fmt: str, output_kind: str, checkpoint: str | Path) -> None:
    """ValueError with a sentence when `fmt` is unknown or needs weights the model does not output."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown output format {fmt!r}; choose from {', '.join(FORMATS)}.")
    if fmt in WEIGHT_FORMATS and output_kind != "blendshapes":
        raise ValueError(f"--format {fmt} needs a blendshape model; {checkpoint} outputs vertex offsets "
                         "(use npy, pc2 or mdd).")


def choose_template(template_path: str | Path | None, own_template: np.ndarray | None,
                    vertex_count: int) -> np.ndarray:
    """The neutral positions PC2/MDD add the offsets to: `template_path` (.obj/.npy), else the checkpoint's."""
    if template_path:
        return read_template(template_path, vertex_count)
    if own_template is not None:
        return own_template
    raise ValueError("PC2/MDD need vertex positions: pass --template MESH (.obj or .npy); "
                     "this checkpoint has no neutral template.")


def write_animation(target: str | Path, fmt: str, values: np.ndarray, *, fps: float, names: list[str] | None = None,
                    template: np.ndarray | None = None, source: str = "") -> Path:
    """Write one format atomically: `values` are weights (T, K) named `names` for the ARKit formats, offsets
    (T, V, 3) otherwise (PC2/MDD store `template` + offsets)."""
    target = Path(target)
    if fmt == "arkit-csv":
        write_live_link_csv(target, values, names or [], fps)
    elif fmt == "arkit-json":
        write_arkit_json(target, values, names or [], fps, source=source)
    elif fmt == "npy":
        write_npy(target, values)
    elif fmt in VERTEX_CACHE_FORMATS:
        if template is None:
            raise ValueError(f"{fmt.upper()} needs a template mesh.")
        positions = values + template[None]
        if fmt == "pc2":
            write_pc2(target, positions, start_frame=0.0, sample_rate=1.0)
        else:
            write_mdd(target, positions, fps=fps)
    else:
        raise ValueError(f"Unknown output format {fmt!r}; choose from {', '.join(FORMATS)}.")
    return target
