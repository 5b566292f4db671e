"""The blendshape corpus (`jambatalk synth-corpus --head ...`) as a MotionCorpus: vertices from the head.

Takes store ARKit weights, not vertices: a sample's vertices are computed on load as the speaker's neutral
(the head's neutral + that speaker's identity) + weights @ blendshapes, at the corpus's stored rate divided by
`stride` (60 fps stored -> 30 fps, the models' rate). The weights come along in `Sample.weights`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from model_core.audio_io import load_audio_file, normalise_for_wav2vec2
from model_core.corpus.writer import CORPUS_GENERATOR
from model_core.data.dataset import MotionCorpus, Sample, Take
from model_core.data.layout import DatasetLayout
from model_core.data.phone_labels import frame_labels
from model_core.data.splits import SPLITS, SplitRule
from model_core.heads.asset import load_head
from model_core.metrics import VOCASET_SCALES

MODEL_FPS = 30.0


def is_blendshape_corpus(root: str | Path) -> bool:
    meta = Path(root) / "meta.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("generator") == CORPUS_GENERATOR
    except ValueError:
        return False


class BlendshapeCorpus(MotionCorpus):
    """Same interface as MotionCorpus (splits, templates, masks, load) over the blendshape layout."""

    def __init__(self, root: str | Path, layout: str = "auto", split_preset: str = "auto", cache: bool = True) -> None:
        root = Path(root)
        if layout not in ("auto", "blendshape"):
            raise ValueError(f"{root} is a blendshape corpus; its layout is 'blendshape', not {layout!r}.")
        if split_preset not in ("auto", "corpus"):
            raise ValueError(f"{root} is a blendshape corpus; it has its own splits (split preset 'corpus').")
        self.meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        stored = float(self.meta["fps"])
        stride = max(1, round(stored / MODEL_FPS))
        self.layout = DatasetLayout(root, "blendshape", stored, stride, "corpus", VOCASET_SCALES, units="metres",
                                    name=f"blendshape corpus on {self.meta['head']['name']}")
        self.root = root
        self.split_preset = "corpus"
        splits = json.loads((root / "splits.json").read_text(encoding="utf-8"))
        self.rules = {s: SplitRule(takes=tuple(splits.get(s, []))) for s in SPLITS}
        self.head = load_head(root / "head.safetensors")
        self.names = list(self.meta["blendshape_names"])
        if self.names != self.head.blendshape_names:
            raise ValueError(f"{root}: meta.json's blendshape names differ from head.safetensors'.")
        speakers = json.loads((root / "speakers.json").read_text(encoding="utf-8"))
        self.templates = {v: self.head.identity_neutral(np.asarray(s["coefficients"], dtype=np.float32))
                          for v, s in speakers.items()}
        self.takes, self.without_vertices = self._scan()
        if not self.takes:
            raise ValueError(f"{root} has no takes: no audio/<name>.flac with a matching weights/<name>.npy.")
        self.vertex_count = self.head.vertex_count
        self._cache: dict[str, Sample] | None = {} if cache else None

    def _scan(self) -> tuple[list[Take], list[str]]:
        takes, orphans = [], []
        for audio in sorted((self.root / "audio").glob("*.flac")):
            weights = self.root / "weights" / f"{audio.stem}.npy"
            if not weights.is_file():
                orphans.append(audio.stem)
                continue
            voice = audio.stem.split("_")[0]
            takes.append(Take(audio.stem, voice, None, audio, weights))
        return takes, orphans

    def load(self, take: Take) -> Sample:
        if self._cache is not None and take.name in self._cache:
            return self._cache[take.name]
        audio = load_audio_file(take.wav).samples
        weights = np.load(take.vertices, allow_pickle=False)
        if weights.ndim != 2 or weights.shape[1] != len(self.names) or not np.isfinite(weights).all():
            raise ValueError(f"{take.vertices} must hold finite (T, {len(self.names)}) weights.")
        weights = np.ascontiguousarray(weights[:: self.layout.stride], dtype=np.float32)
        neutral = self.template(take.subject)
        vertices = self.head.pose(weights, neutral=neutral).reshape(len(weights), -1)
        sample = Sample(take, normalise_for_wav2vec2(audio), vertices.astype(np.float32), neutral.reshape(-1),
                        self.fps, weights, self._phone_labels(take, len(weights)))
        if self._cache is not None:
            self._cache[take.name] = sample
        return sample

    def _phone_labels(self, take: Take, frames: int) -> np.ndarray | None:
        """The take's phones as frame classes at the model's rate (None when its record has none)."""
        record = self.root / "takes" / f"{take.name}.json"
        if not record.is_file():
            return None
        phones = json.loads(record.read_text(encoding="utf-8")).get("phones")
        if not phones:
            return None
        try:
            return frame_labels(phones, frames, self.fps)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{record} has unreadable phones ({exc}).") from exc

    # -- what a checkpoint trained on this corpus must say ---------------------------------------------------
    def head_info(self) -> dict:
        info = self.head.info
        return {"name": self.head.name, "landmarks": dict(self.head.landmarks), "licence": info.get("licence", ""),
                "credits": info.get("credits", ""), "vertices": self.head.vertex_count}

    def training_sources(self) -> list[dict]:
        """Every source of the corpus with its voices, speech time, licences and where its text came from."""
        out = []
        for name, s in sorted(self.meta.get("sources", {}).items()):
            out.append({"source": name, "voices": sorted(s.get("voices", {})), "seconds": s.get("seconds", 0.0),
                        "licences": s.get("licences", []), "text": s.get("text_sources", []),
                        "timing": s.get("timings", [])})
        return out

    def licence_text(self) -> str:
        parts = [f"{s['source']}: {'; '.join(s['licences'])}" for s in self.training_sources()]
        attribution = (" Attribution: trained on the Asterisk project's English prompts, recorded by Allison Smith "
                       "(CC-BY-SA 3.0)." if any(s["source"] == "asterisk" for s in self.training_sources()) else "")
        return (f"Weights trained with JambaTalk for Blender on a corpus of: {' | '.join(parts)}; head "
                f"{self.head.name} ({self.head.info.get('licence', '')}).{attribution} No FLAME, VOCASET, BIWI or "
                "MBROLA data.")

    def describe(self) -> str:
        return (f"{self.root} (blendshape corpus on {self.head.name}, {len(self.names)} blendshapes, {self.fps:g} fps, "
                f"{self.vertex_count} vertices, {len(self.takes)} takes)")


def open_corpus(root: str | Path, layout: str = "auto", split_preset: str = "auto", cache: bool = True) -> MotionCorpus:
    """The right reader for a dataset folder: the blendshape corpus, or the FaceFormer-layout MotionCorpus."""
    if layout == "blendshape" or (layout == "auto" and is_blendshape_corpus(root)):
        return BlendshapeCorpus(root, layout, split_preset, cache)
    return MotionCorpus(root, layout, split_preset, cache)
