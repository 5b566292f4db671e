"""The demo take for the ARKit model: speech it never heard, on the face the corpus gives that voice, with truth.

`--voice asterisk` (the default) strings held-out Asterisk test prompts (real recorded speech no training run
saw) together with short pauses; `--voice festival-ked` speaks new sentences with a whole voice held out of
training. The truth is what the corpus would have made of the take: phones (force-aligned, or festival's own)
-> ARKit weights (model_core/corpus/arkit_motion.py) on the voice's MakeHuman face, at the model's 30 fps.

    python -m model_core.corpus.demo_take OUT [--seconds 6] [--voice asterisk]
        -> OUT/demo.wav, OUT/demo_head.obj (the voice's neutral face), OUT/demo_truth.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from model_core.corpus.arkit_motion import bilabial_closures
from model_core.corpus.phones import SILENCE, TimedPhone, merge_silences
from model_core.corpus.takes import SAMPLE_RATE, SpokenTake
from model_core.corpus.writer import TakeAnimator
from model_core.heads.asset import load_head, write_obj
from model_core.heads.cli import SHIPPED_HEAD

MOTION_FPS = 30.0
PAUSE_S = 0.35
SEED = 0  # the corpus seed of scripts/train_arkit_model: the same voice gets the same face
DEMO_SENTENCES = ("Please remember to bring the blue umbrella before the rain begins.",
                  "My brother opened the map and pointed at a tiny bay by the mountains.",
                  "We baked bread and apple pie for the whole family.")


def _asterisk(seconds: float) -> SpokenTake:
    from model_core.corpus.align import Aligner
    from model_core.corpus.asterisk import ASTERISK_LICENCE, align_recording, asterisk_prompts

    aligner = Aligner()
    audio, phones, texts, t = [], [TimedPhone(SILENCE, 0.0, PAUSE_S)], [], PAUSE_S
    audio.append(np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32))
    for rec in asterisk_prompts("test"):
        if t >= seconds:
            break
        samples, alignment = align_recording(rec, aligner)
        if not alignment.check.ok or len(samples) / SAMPLE_RATE < 1.5:
            continue
        phones += [TimedPhone(p.symbol, p.start + t, p.end + t, p.word) for p in alignment.phones]
        t += len(samples) / SAMPLE_RATE
        phones.append(TimedPhone(SILENCE, t, t + PAUSE_S))
        audio += [samples, np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)]
        t += PAUSE_S
        texts.append(rec.spoken)
    return SpokenTake("asterisk", "asterisk-allison", "demo", "en", " / ".join(texts),
                      "held-out Asterisk test prompts", np.concatenate(audio), _merged(phones), "aligned",
                      ASTERISK_LICENCE, sex="F")


def _festival(seconds: float, voice: str = "ked") -> SpokenTake:
    from model_core.corpus.festival import VOICES, synthesize

    audio, phones, texts, t = [], [], [], 0.0
    for text in DEMO_SENTENCES:
        if t >= seconds:
            break
        syn = synthesize(text, voice)
        phones += [TimedPhone(p.symbol, p.start + t, p.end + t, p.word) for p in syn.phones]
        audio.append(syn.audio)
        t += len(syn.audio) / SAMPLE_RATE
        texts.append(text)
    return SpokenTake("festival", f"festival-{voice}", "demo", "en", " ".join(texts), "written for the demo",
                      np.concatenate(audio), _merged(phones), "exact", VOICES[voice].licence, sex="M")


def _merged(phones: list[TimedPhone]) -> list[TimedPhone]:
    """Neighbouring pauses joined (the prompts' own leading and trailing silences meet the added ones)."""
    return merge_silences([p for p in phones if p.end > p.start])


def write_demo_take(out: str | Path, seconds: float = 6.0, voice: str = "asterisk") -> dict[str, Path]:
    if not 1.0 <= seconds <= 60.0:
        raise ValueError(f"The demo take must last 1 to 60 seconds (got {seconds}).")
    take = _asterisk(seconds) if voice == "asterisk" else _festival(seconds, voice.removeprefix("festival-"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    head = load_head(SHIPPED_HEAD)
    animator = TakeAnimator(head, SEED)
    speaker = animator.speaker(take)
    weights = animator.animate(take, MOTION_FPS)
    vertices = head.pose(weights, neutral=speaker.neutral)
    m = head.landmarks
    rest = float(np.linalg.norm(speaker.neutral[m["chin"]] - speaker.neutral[m["nose_tip"]]))
    jaw = (np.linalg.norm(vertices[:, m["chin"]] - vertices[:, m["nose_tip"]], axis=1) - rest) * 1000.0
    gap = (vertices[:, m["lip_upper"], 1] - vertices[:, m["lip_lower"], 1]) * 1000.0
    paths = {"audio": out / "demo.wav", "head": out / "demo_head.obj", "truth": out / "demo_truth.json"}
    import soundfile as sf

    sf.write(paths["audio"], np.clip(take.audio, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    write_obj(paths["head"], speaker.neutral, head.faces,
              header=f"{take.voice}: the face the JambaTalk corpus gives this voice (MakeHuman head, CC0)")
    truth = {"speaker": take.voice, "sentence": take.text, "fps": MOTION_FPS, "frames": int(len(weights)),
             "seconds": take.duration, "vertex_count": head.vertex_count, "landmarks": m,
             "jaw_opening_mm": jaw.round(4).tolist(), "lip_gap_mm": gap.round(4).tolist(),
             "bilabial_closures": [[round(a, 4), round(b, 4)] for a, b in bilabial_closures(take.phones)],
             "phones": [p.to_json() for p in take.phones], "blendshape_names": head.blendshape_names,
             "weights": weights.round(5).tolist(), "source": take.text_source, "licence": take.licence,
             "truth_label": "truth (the corpus's phone-driven motion)",
             "title": ("real recorded speech no training run heard (held-out Asterisk prompts)" if voice == "asterisk"
                       else f"a voice and face held out of training ({take.voice}), new sentences")}
    paths["truth"].write_text(json.dumps(truth) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the ARKit demo take: audio, head mesh and true motion.")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--seconds", type=float, default=6.0, help="at least this much speech (default 6)")
    parser.add_argument("--voice", default="asterisk", help="asterisk (real, held out) or festival-ked")
    args = parser.parse_args(argv)
    for kind, path in write_demo_take(args.out, args.seconds, args.voice).items():
        print(f"[demo] {kind:<5} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
