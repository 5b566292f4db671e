"""`jambatalk score-speech CHECKPOINT`: how a model's mouth behaves on real recorded speech.

recordings (speech_sources) -> phones (forced alignment, or given) -> the model's output mesh (Animator)
-> per-take measures (speech_scorecard) -> summaries per source and overall, plus the mouth on 3 s of white
noise and of silence -> a printed table and JSON (speech_report).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from model_core.audio_io import AudioError
from model_core.corpus.phones import TimedPhone
from model_core.evaluation.landmarks import resolve_landmarks
from model_core.evaluation.speech_scorecard import (
    LONG_PAUSE_S,
    MAX_LAG_S,
    OPEN_VOWELS,
    TakeMeasures,
    measure_take,
    mouth_tracks,
    rest_mouth,
    summarise,
)
from model_core.evaluation.speech_sources import SOURCES, Recording, builtin_recordings, recordings_in
from model_core.precision import PRECISION_HELP, PRECISIONS

# The protocol every aligner follows: 16 kHz mono samples + transcript -> phones of the unified inventory.
# It raises ValueError (one sentence: why) when it rejects its own alignment; the take is then listed as rejected.
Aligner = Callable[[np.ndarray, str], list[TimedPhone]]

# What a recording may go through before the model hears it (robustness); phones are aligned on the clean take.
DEGRADATIONS = ("none", "telephone", "noise15", "mp3")
REST_SECONDS = 3.0
NOISE_RMS = 0.1  # -20 dBFS white noise
DITHER_DBFS = -90.0

DEFINITIONS = {
    "lip_gap": "upper-lip centre minus lower-lip centre height, minus the neutral's, mm (0: as at rest)",
    "jaw": "downward chin displacement from the neutral, mm",
    "bilabial_min_gap": "smallest lip gap within one frame of each p/b/m phone's span",
    "jaw_classes": f"mean jaw opening over frames inside open vowels ({', '.join(OPEN_VOWELS)}), p/b/m, and sil",
    "lips_open_vowels": "mean lip gap over the open-vowel frames: closures are only worth something if the lips "
                        "still open on vowels (a mouth kept nearly shut passes the closure measures)",
    "long_pauses": f"sil spans (neighbours joined) longer than {LONG_PAUSE_S * 1000:.0f} ms, lead-in and tail "
                   "included: mean lip gap and jaw opening inside each",
    "lag_ms": f"shift within +/-{MAX_LAG_S * 1000:.0f} ms maximising the correlation of the predicted jaw "
              "opening with a phone target (open vowels 1, other vowels 0.5, other consonants 0.2, p/b/m and sil "
              "0, blurred 40 ms); positive = the model is late. Pooled over takes (frame-weighted curve)",
    "rest": f"the mouth on {REST_SECONDS:g} s of white noise ({20 * np.log10(NOISE_RMS):.0f} dBFS) and of silence; "
            "the model scales every input to unit variance, so near-silence reaches it as faint noise of its own",
}


def degrade(samples: np.ndarray, how: str, seed: int = 0) -> np.ndarray:
    """The take as a phone line, a noisy room (white noise at 15 dB SNR) or an mp3 (mid quality) would give it."""
    from model_core.signal.channel import add_noise, codec_round_trip, telephone

    if how == "none":
        return samples
    if how == "telephone":
        out = telephone(samples)
    elif how == "noise15":
        out = add_noise(samples, 15.0, "white", np.random.default_rng(seed))
    elif how == "mp3":
        out = codec_round_trip(samples, "mp3", 0.5)
    else:
        raise ValueError(f"Unknown degradation {how!r}: choose {', '.join(DEGRADATIONS)}.")
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def score_recordings(animator, recordings: list[Recording], template: np.ndarray, landmarks: dict[str, int],
                     aligner: Aligner | None, progress: Callable[[Recording], None] | None = None,
                     degradation: str = "none") -> tuple[list[TakeMeasures], list[dict]]:
    """Measures of every recording that aligns, and the rejected ones with their reasons (never dropped)."""
    takes, rejected = [], []
    for rec in recordings:
        phones = rec.phones
        if phones is None:
            if aligner is None:
                raise ValueError(f"{rec.name} needs forced alignment but no aligner is available.")
            try:
                phones = aligner(rec.samples, rec.text or "")
            except ValueError as exc:
                rejected.append({"take": rec.name, "source": rec.source, "reason": str(exc)})
        if phones is not None:
            offsets = animator.animate(degrade(rec.samples, degradation, len(takes)), 16000)
            tracks = mouth_tracks(offsets + template[None], template, landmarks, animator.fps)
            takes.append(measure_take(rec.name, rec.source, tracks, phones))
        if progress is not None:
            progress(rec)
    return takes, rejected


def rest_probes(animator, template: np.ndarray, landmarks: dict[str, int], seed: int = 0) -> dict[str, Any]:
    """The mouth on white noise and on silence: both should leave it at rest.

    Digital silence goes through the same checks as user audio; when the Animator refuses it as silent, the
    probe feeds -90 dBFS Gaussian dither instead (what a quiet room records) and says so.
    """
    rng = np.random.default_rng(seed)
    n = int(REST_SECONDS * 16000)
    out = {}
    noise = (NOISE_RMS * rng.standard_normal(n)).astype(np.float32)
    probes = [("white_noise", noise, f"white noise, {20 * np.log10(NOISE_RMS):.0f} dBFS RMS")]
    probes.append(("silence", np.zeros(n, dtype=np.float32), "digital silence"))
    for label, samples, what in probes:
        try:
            offsets = animator.animate(samples, 16000)
        except AudioError:
            if label != "silence":
                raise
            what = f"{DITHER_DBFS:g} dBFS RMS Gaussian dither (digital silence is refused as silent audio)"
            dither = (10 ** (DITHER_DBFS / 20) * rng.standard_normal(n)).astype(np.float32)
            offsets = animator.animate(dither, 16000)
        tracks = mouth_tracks(offsets + template[None], template, landmarks, animator.fps)
        out[label] = {"input": what, "seconds": REST_SECONDS, **rest_mouth(tracks)}
    return out


def build_scorecard(checkpoint: str | Path, recordings: list[Recording], aligner: Aligner | None,
                    aligner_name: str, *, device: str = "auto", precision: str = "auto",
                    template_path: str | Path | None = None, landmarks_file: str | Path | None = None,
                    show_progress: bool = False, degradation: str = "none") -> dict[str, Any]:
    """The whole scorecard of one checkpoint as a JSON-ready dict (per-take rows under 'takes')."""
    from model_core.inference import Animator
    from model_core.templates import read_template

    animator = Animator(checkpoint, device=device, precision=precision)
    # Every model gives offsets; a blendshape model's come from its weights through the head's basis, and its
    # checkpoint carries that head's neutral (template) and landmarks.
    if template_path is not None:
        template = read_template(template_path, animator.vertex_count).astype(np.float64)
    elif animator.template is not None:
        template = animator.template.astype(np.float64)
    else:
        raise ValueError(f"{checkpoint} has no neutral template to add its offsets to; pass --template MESH.")
    landmarks, origin = resolve_landmarks(checkpoint, animator.vertex_count, template, landmarks_file)

    from tqdm import tqdm

    with tqdm(total=len(recordings), desc="score-speech", unit="take", file=sys.stderr,
              disable=not show_progress) as bar:
        takes, rejected = score_recordings(animator, recordings, template, landmarks, aligner,
                                           progress=lambda rec: bar.update(1), degradation=degradation)
    sources = {}
    for source in dict.fromkeys(r.source for r in recordings):
        mine = [t for t in takes if t.source == source]
        sources[source] = {**summarise(mine, animator.fps),
                           "rejected": sum(1 for r in rejected if r["source"] == source)}
    return {
        "checkpoint": Path(checkpoint).name,
        "model": animator.checkpoint.info.name,
        "vertex_count": animator.vertex_count,
        "fps": animator.fps,
        "landmarks": {"origin": origin, **{k: landmarks[k] for k in ("lip_upper", "lip_lower", "chin")}},
        "aligner": aligner_name,
        "degradation": degradation,
        "definitions": DEFINITIONS,
        "sources": sources,
        "overall": {**summarise(takes, animator.fps), "rejected": len(rejected)},
        "rest": rest_probes(animator, template, landmarks),
        "rejected": rejected,
        "takes": [t.as_dict() for t in takes],
    }


def add_score_speech_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a vertex-output .safetensors checkpoint")
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help="built-in real recordings: asterisk (held-out test prompts), librivox; '' for none")
    parser.add_argument("--recordings", help="also score a folder of your own: NAME.wav with NAME.txt (transcript) "
                                             "or NAME.phones.json (timed phones)")
    parser.add_argument("--limit", type=int, default=None, help="at most N recordings per source (a quick run)")
    parser.add_argument("--json", dest="json_out", help="write the scorecard as JSON here (default: print only)")
    parser.add_argument("--per-take", action="store_true", help="also print one row per take")
    parser.add_argument("--landmarks", help="JSON object of vertex indices (lip_upper, lip_lower, chin, ...)")
    parser.add_argument("--template", help="neutral mesh (.obj or .npy) when the checkpoint has none")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    parser.add_argument("--degrade", default="none", choices=DEGRADATIONS,
                        help="robustness: the model hears the recordings through a telephone line (telephone), with "
                             "white noise at 15 dB SNR (noise15) or after an mp3 round trip; phones come from the "
                             "clean recording")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_score_speech_cli(args: argparse.Namespace) -> int:
    from model_core.evaluation.speech_report import print_report, write_json

    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1.")
    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    recordings = builtin_recordings(sources, args.limit)
    if args.recordings:
        recordings += recordings_in(args.recordings, args.limit)
    if not recordings:
        raise ValueError("Nothing to score: name --sources or --recordings.")
    aligner, aligner_name = None, "none (all recordings carry phone timings)"
    if any(r.phones is None for r in recordings):
        from model_core.evaluation.speech_align import default_aligner

        aligner, aligner_name = default_aligner()
    report = build_scorecard(args.checkpoint, recordings, aligner, aligner_name, device=args.device,
                             precision=args.precision, template_path=args.template, landmarks_file=args.landmarks,
                             show_progress=not args.quiet, degradation=args.degrade)
    print_report(report, per_take=args.per_take)
    if args.json_out:
        write_json(report, args.json_out)
        print(f"Wrote {args.json_out}.")
    return 0
