"""The demo take for the ARKit model: speech it never heard, on the face the corpus gives that voice, with truth.

`--voice librivox` (the default) is a real human voice no training run heard: the public-domain LibriVox clips
shipped in models/demo-audio/ (see its README); `--voice asterisk` strings held-out Asterisk test prompts
together with short pauses; `--voice festival-ked` speaks new sentences with a whole voice held out of training.
The truth is what the corpus would have made of the take: phones (force-aligned, or festival's own) -> ARKit
weights (model_core/corpus/arkit_motion.py) on the voice's MakeHuman face, at the model's 30 fps.

Two characters carry the 52 ARKit shape keys (`demo_characters.npz`): the voice's MakeHuman face, and a second,
differently built one that shares only the key names with it (another identity and proportions, the back of
the head cut away, the vertices in another order), to show that a bake drives any character by name.

    python -m model_core.corpus.demo_take OUT [--seconds 6] [--voice librivox]
        -> OUT/demo.wav, OUT/demo_head.obj (the voice's neutral face), OUT/demo_truth.json,
           OUT/demo_characters.npz
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
    from model_core.corpus.asterisk import ASTERISK_LICENCE, asterisk_prompts

    return _recordings(asterisk_prompts("test"), seconds, "asterisk-allison", "held-out Asterisk test prompts",
                       ASTERISK_LICENCE)


DEMO_AUDIO = Path(__file__).resolve().parents[2] / "models" / "demo-audio"
LIBRIVOX_TEXTS = {"sense_and_sensibility_01_austen_64kb-0870": "and mister john dashwood had then leisure to "
                  "consider how much there might be prudently in his power to do for them",
                  "sense_and_sensibility_01_austen_64kb-0880": "he was not an ill disposed young man"}


def _recordings(recordings, seconds: float, voice: str, what: str, licence: str) -> SpokenTake:
    """Real recordings strung together with pauses, each force-aligned (rejected alignments are skipped)."""
    from model_core.corpus.align import Aligner
    from model_core.corpus.asterisk import align_recording

    aligner = Aligner()
    audio, phones, texts, t = [], [TimedPhone(SILENCE, 0.0, PAUSE_S)], [], PAUSE_S
    audio.append(np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32))
    for rec in recordings:
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
    if not texts:
        raise RuntimeError(f"None of the {what} could be aligned for the demo.")
    return SpokenTake(voice.split("-")[0], voice, "demo", "en", " / ".join(texts), what, np.concatenate(audio),
                      _merged(phones), "aligned", licence, sex="F" if "allison" in voice else "M")


def _librivox(seconds: float) -> SpokenTake:
    from model_core.corpus.asterisk import LIBRIVOX_LICENCE, Recording

    clips = [Recording(name, text, text, DEMO_AUDIO / f"{name}.wav", "librivox")
             for name, text in LIBRIVOX_TEXTS.items()]
    return _recordings(clips, seconds, "librivox-austen", "public-domain LibriVox clips (models/demo-audio)",
                       LIBRIVOX_LICENCE)


def second_character(head, speaker_neutral: np.ndarray, seed: int = 7) -> dict[str, np.ndarray]:
    """A differently built character with the same 52 key names: another identity, wider and shorter, the back
    of the head cut away and the remaining vertices shuffled, so only the names link it to the model."""
    rng = np.random.default_rng(seed)
    from model_core.corpus.writer import make_speaker

    other = make_speaker(head, "demo-second-character", "demo", "M", seed).neutral
    keep = np.flatnonzero(other[:, 2] > np.median(other[:, 2]) - 0.01)  # the front of the head and face
    order = rng.permutation(keep)
    new_index = np.full(head.vertex_count, -1, dtype=np.int64)
    new_index[order] = np.arange(order.size)
    faces = head.faces
    whole = np.all((faces < 0) | (new_index[np.maximum(faces, 0)] >= 0), axis=1)
    remapped = np.where(faces[whole] < 0, -1, new_index[np.maximum(faces[whole], 0)]).astype(np.int32)
    scale = np.array([1.12, 0.94, 1.0], dtype=np.float32)  # a broader, flatter face
    marks = {k: int(new_index[v]) for k, v in head.landmarks.items() if new_index[v] >= 0}
    return {"neutral": (other[order] * scale).astype(np.float32), "faces": remapped,
            "deltas": (head.blendshapes[:, order] * scale).astype(np.float32),
            "landmarks": np.array([marks[k] for k in sorted(marks)], dtype=np.int64),
            "landmark_names": np.array(sorted(marks))}


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


def write_demo_take(out: str | Path, seconds: float = 6.0, voice: str = "librivox") -> dict[str, Path]:
    if not 1.0 <= seconds <= 60.0:
        raise ValueError(f"The demo take must last 1 to 60 seconds (got {seconds}).")
    if voice == "librivox":
        take = _librivox(seconds)
    elif voice == "asterisk":
        take = _asterisk(seconds)
    else:
        take = _festival(seconds, voice.removeprefix("festival-"))
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
    paths = {"audio": out / "demo.wav", "head": out / "demo_head.obj", "truth": out / "demo_truth.json",
             "characters": out / "demo_characters.npz"}
    second = second_character(head, speaker.neutral)
    np.savez(paths["characters"], names=np.array(head.blendshape_names), a_neutral=speaker.neutral.astype(np.float32),
             a_faces=head.faces.astype(np.int32), a_deltas=head.blendshapes.astype(np.float32),
             **{f"b_{k}": v for k, v in second.items()})
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
             "title": TITLES.get(voice, f"a voice and face held out of training ({take.voice}), new sentences")}
    paths["truth"].write_text(json.dumps(truth) + "\n", encoding="utf-8")
    return paths


TITLES = {"librivox": "a real human voice no training run heard (public-domain LibriVox)",
          "asterisk": "real recorded speech no training run heard (held-out Asterisk prompts)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the ARKit demo take: audio, head mesh and true motion.")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--seconds", type=float, default=6.0, help="at least this much speech (default 6)")
    parser.add_argument("--voice", default="librivox",
                        help="librivox (a real voice, shipped), asterisk (real, held out) or festival-ked")
    args = parser.parse_args(argv)
    for kind, path in write_demo_take(args.out, args.seconds, args.voice).items():
        print(f"[demo] {kind:<5} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
