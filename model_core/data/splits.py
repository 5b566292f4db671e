"""Which takes are train / val / test: the standard VOCASET and BIWI splits, the synthetic corpus's own
splits.json, and the splits a plain-layout manifest declares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPLITS = ("train", "val", "test")
SPLIT_PRESETS = ("vocaset", "biwi", "biwi-test-a", "synthetic", "manifest", "corpus")  # corpus: splits.json

# FaceFormer / JambaTalk subject lists (reference doc §2.1); sentence ids are the take names' trailing digits.
VOCASET_TRAIN = (
    "FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170725_00137_TA", "FaceTalk_170915_00223_TA",
    "FaceTalk_170811_03274_TA", "FaceTalk_170913_03279_TA", "FaceTalk_170904_03276_TA", "FaceTalk_170912_03278_TA",
)
VOCASET_VAL = ("FaceTalk_170811_03275_TA", "FaceTalk_170908_03277_TA")
VOCASET_TEST = ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA")
BIWI_TRAIN = ("F2", "F3", "F4", "M3", "M4", "M5")
BIWI_UNSEEN = ("F1", "F5", "F6", "F7", "F8", "M1", "M2", "M6")


@dataclass(frozen=True)
class SplitRule:
    """Takes whose subject is listed (None: any) and whose sentence id is in [first, last] (None: any),
    or exactly the takes named in `takes`."""

    subjects: tuple[str, ...] | None = None
    sentences: tuple[int, int] | None = None
    takes: tuple[str, ...] | None = None

    def matches(self, name: str, subject: str, sentence: int | None) -> bool:
        if self.takes is not None:
            return name in self.takes
        if self.subjects is not None and subject not in self.subjects:
            return False
        if self.sentences is not None:
            return sentence is not None and self.sentences[0] <= sentence <= self.sentences[1]
        return True

    def describe(self) -> str:
        if self.takes is not None:
            return f"{len(self.takes)} named takes"
        who = "any subject" if self.subjects is None else f"subjects {', '.join(self.subjects)}"
        which = "all sentences" if self.sentences is None else f"sentences {self.sentences[0]}-{self.sentences[1]}"
        return f"{who}, {which}"


def _standard(train: tuple, val: tuple, test: tuple, ranges: tuple) -> dict[str, SplitRule]:
    return {name: SplitRule(subjects, rng) for name, subjects, rng in zip(SPLITS, (train, val, test), ranges,
                                                                          strict=True)}


def split_rules(preset: str, root: Path, manifest: dict[str, Any] | None = None) -> dict[str, SplitRule]:
    """The train/val/test rules of a preset (see SPLIT_PRESETS)."""
    if preset == "vocaset":
        return _standard(VOCASET_TRAIN, VOCASET_VAL, VOCASET_TEST, ((1, 40), (21, 40), (21, 40)))
    if preset == "biwi":  # FaceFormer / JambaTalk defaults: the test subjects are unseen speakers (BIWI-Test-B)
        return _standard(BIWI_TRAIN, BIWI_TRAIN, BIWI_UNSEEN, ((1, 32), (33, 36), (37, 40)))
    if preset == "biwi-test-a":  # CodeTalker's BIWI-Test-A: unseen sentences of the training speakers
        return _standard(BIWI_TRAIN, BIWI_TRAIN, BIWI_TRAIN, ((1, 32), (33, 36), (37, 40)))
    if preset == "synthetic":
        return synthetic_rules(root)
    if preset == "corpus":
        raise ValueError(f"The 'corpus' split preset belongs to blendshape corpora; {root} is not one.")
    if preset == "manifest":
        if manifest is None:
            raise ValueError(f"The 'manifest' split preset needs a dataset.toml in {root}.")
        return rules_from_tables(manifest.get("splits", {}), f"{root / 'dataset.toml'} [splits]")
    raise ValueError(f"Unknown split preset {preset!r}: choose one of {', '.join(SPLIT_PRESETS)}.")


def synthetic_rules(root: Path) -> dict[str, SplitRule]:
    path = root / "splits.json"
    if not path.is_file():
        raise ValueError(f"The 'synthetic' split preset reads {path}, which does not exist "
                         "(generate the corpus with `jambatalk synth-corpus`).")
    return rules_from_tables(json.loads(path.read_text(encoding="utf-8")), str(path))


def rules_from_tables(tables: dict[str, Any], where: str) -> dict[str, SplitRule]:
    """Rules from {"train": {"subjects": [...], "sentences": [first, last], "takes": [...]}, ...}."""
    rules = {}
    for split in SPLITS:
        table = tables.get(split)
        if table is None:
            rules[split] = SplitRule(subjects=(), sentences=None)  # matches nothing
            continue
        if not isinstance(table, dict):
            raise ValueError(f"{where}: '{split}' must be a table with subjects / sentences / takes.")
        unknown = set(table) - {"subjects", "sentences", "takes"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)} in '{split}'.")
        sentences = table.get("sentences")
        if sentences is not None:
            if not (isinstance(sentences, list) and len(sentences) == 2 and all(isinstance(s, int) for s in sentences)):
                raise ValueError(f"{where}: '{split}.sentences' must be [first, last] (inclusive integers).")
            sentences = (int(sentences[0]), int(sentences[1]))
        subjects = table.get("subjects")
        takes = table.get("takes")
        rules[split] = SplitRule(
            subjects=None if subjects is None else tuple(str(s) for s in subjects),
            sentences=sentences,
            takes=None if takes is None else tuple(str(t) for t in takes),
        )
    return rules
