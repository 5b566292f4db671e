"""Hear what training-time augmentation does: write augmented crops of one recording as WAV files.

    .venv/bin/python scripts/preview_augment.py speech.wav out/ [--config train.toml] [--count 12]
        [--seconds 3] [--seed 0] [--set tempo_p=1.0 --set codecs='["opus"]']

Uses the [augment] table of --config (enabled or not) or the defaults, with --set overrides (TOML values).
out/plans.json lists what was done to each file. The files are scaled to -20 dBFS for listening: the model
sees the same audio normalised to unit variance.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_core.audio_io import TARGET_SAMPLE_RATE, load_audio_file, normalise_for_wav2vec2  # noqa: E402
from model_core.data.dataset import Sample, Take  # noqa: E402
from model_core.training.augment import augment_crop  # noqa: E402
from model_core.training.config import apply_overrides, config_from_dict, load_config  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--config", type=Path, help="a training config whose [augment] table to use")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=3.0, help="crop length (0: the whole recording)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an [augment] key")
    args = parser.parse_args(argv)

    if args.config:
        options = load_config(args.config, [f"augment.{s}" for s in args.set]).augment
    else:
        raw = apply_overrides({"data": {"dir": "."}}, [f"augment.{s}" for s in args.set])
        options = config_from_dict(raw).augment
    options = replace(options, enabled=True)
    audio = normalise_for_wav2vec2(load_audio_file(args.audio).samples)
    fps = 30.0
    frames = int(len(audio) / TARGET_SAMPLE_RATE * fps)
    sample = Sample(Take(args.audio.stem, "preview", None, args.audio, args.audio), audio,
                    np.zeros((frames, 3), np.float32), np.zeros(3, np.float32), fps)
    args.out.mkdir(parents=True, exist_ok=True)
    plans = {}
    for position in range(args.count):
        crop, plan = augment_crop(sample, args.seconds, options, args.seed, 0, position)
        name = f"{position:02d}.wav"
        level = 0.1 / max(float(np.sqrt(np.mean(np.square(crop.audio, dtype=np.float64)))), 1e-9)
        sf.write(args.out / name, np.clip(crop.audio * level, -1.0, 1.0), TARGET_SAMPLE_RATE, subtype="PCM_16")
        plans[name] = plan.steps or ["plain crop"]
        print(f"{name}: {', '.join(plans[name])}")
    (args.out / "plans.json").write_text(json.dumps(plans, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        sys.exit(f"preview_augment: {exc}")
