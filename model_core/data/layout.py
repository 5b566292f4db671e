"""What kind of dataset folder this is, and what that implies (frame rates, split preset, metric scales).

Every layout is the FaceFormer one: `wav/<subject>_<sentence>.wav`, `vertices_npy/<same>.npy` holding
(T, V*3) absolute positions, and neutral templates per subject. They differ in:

| layout    | stored fps | kept          | splits                  | recognised by                            |
|-----------|------------|---------------|-------------------------|------------------------------------------|
| vocaset   | 60         | every 2nd: 30 | vocaset                 | prepared.json, or FaceTalk_* take names  |
| biwi      | 25         | all: 25       | biwi (or biwi-test-a)   | F1_*, M3_* ... take names                |
| synthetic | meta.json  | every 2nd: 30 | its splits.json         | meta.json from `jambatalk synth-corpus`  |
| plain     | manifest   | manifest      | the manifest's [splits] | dataset.toml                             |
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_core.data.manifest import MANIFEST, read_manifest
from model_core.metrics import BIWI_SCALES, NO_SCALES, VOCASET_SCALES, MetricScales

LAYOUTS = ("vocaset", "biwi", "synthetic", "plain", "blendshape")  # blendshape: see blendshape_corpus.py
PREPARED = "prepared.json"  # written by scripts/prepare_vocaset
SYNTH_GENERATOR = "jambatalk synth-corpus"
_BIWI_NAME = re.compile(r"^[FM]\d+_")


@dataclass(frozen=True)
class DatasetLayout:
    root: Path
    kind: str
    stored_fps: float
    stride: int
    default_split: str
    scales: MetricScales
    units: str = "metres"
    name: str = ""
    lips_file: str = "regions/lips.txt"
    upper_face_file: str = "regions/upper_face.txt"
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Motion frames per second after keeping every `stride`-th stored frame."""
        return self.stored_fps / self.stride

    def topology(self, vertex_count: int) -> str:
        if self.kind == "vocaset" and vertex_count == 5023:
            return "FLAME (5023 vertices)"
        if self.kind == "synthetic":
            return f"jambatalk synthetic head ({vertex_count} vertices)"
        return f"{self.name or self.kind} ({vertex_count} vertices)"


def _take_stems(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "wav").glob("*.wav"))


def detect_kind(root: Path) -> str:
    """Guess the layout from marker files and take names; a clear error when nothing fits."""
    if (root / MANIFEST).is_file():
        return "plain"
    meta = root / "meta.json"
    if meta.is_file():
        try:
            if json.loads(meta.read_text(encoding="utf-8")).get("generator") == SYNTH_GENERATOR:
                return "synthetic"
        except ValueError:
            pass
    prepared = root / PREPARED
    if prepared.is_file():
        try:
            kind = json.loads(prepared.read_text(encoding="utf-8")).get("layout")
        except ValueError:
            kind = None
        if kind in LAYOUTS:
            return kind
    stems = _take_stems(root)
    if stems and all(s.startswith("FaceTalk_") for s in stems):
        return "vocaset"
    if stems and all(_BIWI_NAME.match(s) for s in stems):
        return "biwi"
    raise ValueError(
        f"Cannot tell which dataset layout {root} uses ({len(stems)} wav files). Set the layout explicitly "
        f"(vocaset, biwi, synthetic or plain) or add a {MANIFEST} manifest describing your captures "
        "(see docs/training.md)."
    )


def open_layout(root: str | Path, kind: str = "auto") -> DatasetLayout:
    """Describe the dataset folder `root` (which must hold wav/ and vertices_npy/)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"Dataset folder {root} does not exist.")
    missing = [d for d in ("wav", "vertices_npy") if not (root / d).is_dir()]
    if missing:
        raise ValueError(
            f"{root} is not a dataset folder: it has no {' or '.join(d + '/' for d in missing)}. Expected the "
            "FaceFormer layout (wav/*.wav + vertices_npy/*.npy + templates.npz); for raw VOCASET files run "
            "scripts/prepare_vocaset first."
        )
    if kind == "auto":
        kind = detect_kind(root)
    if kind == "vocaset":
        return DatasetLayout(root, kind, 60.0, 2, "vocaset", VOCASET_SCALES, name="VOCASET")
    if kind == "biwi":
        return DatasetLayout(root, kind, 25.0, 1, "biwi", BIWI_SCALES, units="as stored", name="BIWI")
    if kind == "synthetic":
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        fps = float(meta.get("fps", 60.0))
        stride = max(1, round(fps / float(meta.get("loader_fps", fps / 2))))
        return DatasetLayout(root, kind, fps, stride, "synthetic", VOCASET_SCALES, units=meta.get("units", "metres"),
                             name="synthetic corpus")
    if kind == "plain":
        manifest = read_manifest(root)
        scale = manifest.get("scale", {})
        scales = MetricScales(f"{MANIFEST} [scale]", **scale) if scale else NO_SCALES
        return DatasetLayout(
            root, kind, float(manifest["fps"]), int(manifest.get("stride", 1)), "manifest", scales,
            units=str(manifest.get("units", "as stored")), name=str(manifest.get("name", root.name)),
            lips_file=str(manifest.get("lips", "regions/lips.txt")),
            upper_face_file=str(manifest.get("upper_face", "regions/upper_face.txt")), manifest=manifest,
        )
    if kind == "blendshape":
        raise ValueError(f"{root} was asked to be read as a blendshape corpus but has no such meta.json.")
    raise ValueError(f"Unknown dataset layout {kind!r}: choose auto, {', '.join(LAYOUTS)}.")
