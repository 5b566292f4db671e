"""`jambatalk synth-corpus OUT --head makehuman --voices ...`: the corpus of many voices on a blendshape head.

Each requested source gets an equal share of `--minutes` of speech (the Asterisk prompts stop when they run
out; their held-out test prompts are always included, in the test split, whatever the budget). Takes whose
alignment fails its checks are counted and listed in rejected.json and the README, never dropped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from model_core.corpus.takes import SpokenTake
from model_core.corpus.writer import CorpusWriter
from model_core.heads.asset import HeadAsset

SOURCES = ("formant", "festival", "flite", "asterisk")
FORMANT_SPEAKERS = 6


@dataclass(frozen=True)
class BuildOptions:
    seed: int = 0
    minutes: float = 60.0
    voices: tuple[str, ...] = SOURCES
    formant_speakers: int = FORMANT_SPEAKERS

    def validate(self) -> None:
        unknown = [v for v in self.voices if v not in SOURCES]
        if unknown or not self.voices:
            raise ValueError(f"--voices takes a comma-separated list of {', '.join(SOURCES)} (got {unknown}).")
        if not 0.05 <= self.minutes <= 6000:
            raise ValueError(f"--minutes must be between 0.05 and 6000 (got {self.minutes}).")
        if self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer (got {self.seed}).")


@dataclass
class BuildSummary:
    out: Path
    meta: dict = field(default_factory=dict)
    elapsed_seconds: float = 0.0


def _source(name: str, options: BuildOptions, seconds: float) -> Iterator[SpokenTake]:
    """The takes of one source within `seconds` of speech (imports lazily: each needs its own tools)."""
    if name == "formant":
        from model_core.corpus.formant import formant_takes

        return formant_takes(options.seed, options.formant_speakers, seconds)
    if name == "festival":
        from model_core.corpus.sources import festival_takes

        return festival_takes(options.seed, seconds)
    if name == "flite":
        from model_core.corpus.sources import flite_takes

        return flite_takes(options.seed, seconds)
    from model_core.corpus.sources import asterisk_takes

    return asterisk_takes(seconds)


_OUR_FILES = ("audio/*.flac", "weights/*.npy", "takes/*.json", "regions/*.txt", "head.safetensors",
              "speakers.json", "splits.json", "rejected.json", "meta.json", "README.md")


def clear_previous(out: Path) -> None:
    """Delete what an earlier run wrote (and nothing else), so no stale take survives."""
    for pattern in _OUR_FILES:
        for path in sorted(out.glob(pattern)):
            if path.is_file():
                path.unlink()


def build_corpus(out: str | Path, head: HeadAsset, head_path: Path, options: BuildOptions,
                 progress: bool = True, log: Callable[[str], None] = print) -> BuildSummary:
    from tqdm import tqdm

    options.validate()
    started = time.perf_counter()
    out = Path(out)
    writer = CorpusWriter(out, head, head_path, options.seed)
    share = options.minutes * 60.0 / len(options.voices)
    with tqdm(total=round(options.minutes * 60.0), desc="synth-corpus", unit="s of speech",
              disable=not progress) as bar:
        for name in options.voices:
            for take in _source(name, options, share):
                if writer.add(take):
                    bar.update(min(round(take.duration), max(0, bar.total - bar.n)))
                bar.set_postfix_str(f"{name}: {take.voice}")
    meta = writer.finish({"options": {**asdict(options), "voices": list(options.voices)}})
    from model_core.corpus.readme import corpus_readme

    (out / "README.md").write_text(corpus_readme(meta, writer.rejected), encoding="utf-8", newline="\n")
    return BuildSummary(out, meta, time.perf_counter() - started)

