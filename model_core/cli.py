"""`jambatalk` command line: animate audio files, convert official weights, benchmark, inspect checkpoints."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from model_core.config import PRESETS
from model_core.output_files import FORMATS, WEIGHT_FORMATS
from model_core.precision import PRECISION_HELP, PRECISIONS


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    p.add_argument("--backend", default="auto", choices=("auto", "torch"),
                   help="auto uses mamba-ssm/causal-conv1d kernels on CUDA when installed; torch forces PyTorch")
    p.add_argument("--moe-policy", default=None, choices=("expected", "all", "random"),
                   help="second-expert rule at inference (default: the checkpoint's, normally 'expected')")


def cmd_animate(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from model_core.audio_io import load_audio_file
    from model_core.inference import Animator
    from model_core.output_files import check_format, choose_template, file_suffix, write_animation

    animator = Animator(args.checkpoint, device=args.device, precision=args.precision, backend=args.backend,
                        moe_policy=args.moe_policy, max_seconds=args.max_minutes * 60)
    check_format(args.format, animator.output_kind, args.checkpoint)
    template = None
    if args.format in ("pc2", "mdd"):
        template = choose_template(args.template, animator.template, animator.vertex_count)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = []
    for path in args.audio:
        started = time.perf_counter()
        audio = load_audio_file(path, max_seconds=animator.max_seconds, start_s=args.start, end_s=args.end)
        with tqdm(total=1.0, desc=Path(path).name, unit="take", disable=args.quiet,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:
            def progress(fraction: float, stage: str, bar: tqdm = bar) -> None:
                bar.n = fraction
                bar.set_postfix_str(stage)
                bar.refresh()

            if args.format in WEIGHT_FORMATS:
                weights = animator.animate_weights_16k(audio.samples, args.subject, progress=progress)
            else:
                offsets = animator.animate_16k(audio.samples, args.subject, progress=progress)
        target = out_dir / f"{Path(path).stem}.{file_suffix(args.format)}"
        values = weights if args.format in WEIGHT_FORMATS else offsets
        write_animation(target, args.format, values, fps=animator.fps, names=animator.blendshape_names,
                        template=template, source=str(path))
        seconds = time.perf_counter() - started
        result, what = (weights, "channels") if args.format in WEIGHT_FORMATS else (offsets, "vertices")
        summary.append({"audio": str(path), "output": str(target), "frames": int(result.shape[0]),
                        what: int(result.shape[1]), "fps": animator.fps,
                        "audio_seconds": round(audio.duration_s, 3), "compute_seconds": round(seconds, 3),
                        "max_weight" if what == "channels" else "max_offset": float(np.abs(result).max())})
        if not args.quiet:
            print(f"{target}: {result.shape[0]} frames x {result.shape[1]} {what} at {animator.fps:g} fps "
                  f"({audio.duration_s:.1f} s of audio in {seconds:.2f} s)")
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def cmd_convert_official(args: argparse.Namespace) -> int:
    from model_core.official import convert_official

    out = convert_official(args.source, args.out, preset_name=args.preset)
    print(f"Wrote {out} (preset {args.preset}; licence CC BY-NC 4.0 recorded in its metadata).")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    import torch

    from model_core.checkpoint import CheckpointInfo, save_checkpoint
    from model_core.config import preset
    from model_core.model import JambaTalk

    torch.manual_seed(args.seed)
    config = preset(args.preset)
    model = JambaTalk(config)
    if args.random_head:
        # A zero head (the official init) predicts no motion; benchmarks and smoke tests want visible output.
        torch.nn.init.normal_(model.output_map.weight, std=1e-3)
    info = CheckpointInfo(config=config, provenance={"kind": "random initialisation", "seed": args.seed,
                                                     "preset": args.preset}, name=f"random-{args.preset}")
    save_checkpoint(args.out, model, info)
    print(f"Wrote a randomly initialised '{args.preset}' checkpoint to {args.out} (not trained).")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from model_core.checkpoint import read_checkpoint_info

    info = read_checkpoint_info(args.checkpoint)
    cfg = info.config
    print(json.dumps({"name": info.name, "vertex_count": cfg.vertex_count, "motion_fps": cfg.motion_fps,
                      "pattern": cfg.pattern, "share_weights": cfg.share_weights, "feature_dim": cfg.feature_dim,
                      "styles": cfg.style_names if cfg.style_embedding else [], "topology": info.topology,
                      "output_kind": cfg.output_kind, "blendshape_names": cfg.blendshape_names,
                      "head": info.head, "training_sources": info.sources,
                      "licence": info.licence, "provenance": info.provenance}, indent=2))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from model_core.worker.server import ServeOptions, serve

    return serve(ServeOptions(
        checkpoints=args.checkpoint, device=args.device, precision=args.precision, backend=args.backend,
        host=args.host, port=args.port, token_file=args.token_file, parent_pid=args.parent_pid,
        max_body_mb=args.max_body_mb, max_audio_minutes=args.max_audio_minutes, result_ttl=args.result_ttl,
        file_results=not args.no_file_results, allow_hosts=args.allow_host or [],
        max_queued_audio_mb=args.max_queued_audio_mb, head_timeout=args.head_timeout, body_timeout=args.body_timeout,
    ))


def cmd_bench(args: argparse.Namespace) -> int:
    from model_core.bench.cli import run_benchmark_cli

    return run_benchmark_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jambatalk", description="Speech-driven 3D facial animation (JambaTalk).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("animate", help="audio file(s) -> per-frame vertex offsets / PC2 / MDD")
    p.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--checkpoint", required=True, help="a .safetensors checkpoint")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", default="npy", choices=FORMATS,
                   help="npy: offsets (T, V, 3); pc2/mdd: template + offsets as a vertex cache; arkit-csv: the Live "
                        "Link Face CSV layout (Unreal); arkit-json: the 52 ARKit weights per frame (blendshape models)")
    p.add_argument("--template", help="neutral mesh (.obj or .npy) for pc2/mdd; default: the checkpoint's")
    p.add_argument("--subject", default=None, help="speaking style / subject name, when the model has styles")
    p.add_argument("--start", type=float, default=0.0, help="start of the audio range, seconds")
    p.add_argument("--end", type=float, default=None, help="end of the audio range, seconds")
    p.add_argument("--max-minutes", type=float, default=30.0, help="refuse longer audio (default 30)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--quiet", action="store_true")
    _add_runtime_options(p)
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("batch", help="a folder or CSV/JSONL manifest of lines -> animation files; resumable, "
                                     "batched, --workers N or --engine ray")
    from model_core.batch.cli import add_batch_arguments, run_batch_cli

    add_batch_arguments(p)
    _add_runtime_options(p)
    p.set_defaults(func=run_batch_cli)

    p = sub.add_parser("convert-official", help="official vocaset.pth / biwi.pth -> our .safetensors")
    p.add_argument("source")
    p.add_argument("--preset", default="vocaset", choices=("vocaset", "biwi"))
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_convert_official)

    p = sub.add_parser("init", help="write a randomly initialised checkpoint of a preset (untrained)")
    p.add_argument("--preset", default="small", choices=PRESETS)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random-head", action="store_true", help="non-zero output head, so the output moves")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("info", help="print what a checkpoint holds (config, licence, provenance)")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("serve", help="run the inference worker (HTTP on loopback, token required)")
    p.add_argument("--checkpoint", action="append", required=True, help="a checkpoint to serve (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (non-loopback needs --token-file)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (announced on stdout)")
    p.add_argument("--token-file", help="file whose first line is the token (default: random per launch)")
    p.add_argument("--parent-pid", type=int, help="exit when this process dies")
    p.add_argument("--max-body-mb", type=float, default=256.0, help="largest accepted request body")
    p.add_argument("--max-audio-minutes", type=float, default=30.0, help="longest accepted audio")
    p.add_argument("--result-ttl", type=float, default=600.0, help="seconds a finished result is kept")
    p.add_argument("--no-file-results", action="store_true",
                   help="do not offer results as files in a private temporary folder (loopback clients only)")
    p.add_argument("--allow-host", action="append", metavar="NAME",
                   help="also answer requests addressed to this name or address (repeatable; e.g. behind NAT)")
    p.add_argument("--max-queued-audio-mb", type=float, default=2048.0,
                   help="uploads and decoded audio held for queued jobs; beyond it: 503 busy with Retry-After")
    p.add_argument("--head-timeout", type=float, default=5.0,
                   help="seconds a connection may take to send its request head before it is closed")
    p.add_argument("--body-timeout", type=float, default=20.0,
                   help="seconds an upload may stall before it is abandoned (408)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    p.add_argument("--backend", default="auto", choices=("auto", "torch"))
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("head", help="head assets: export a head (identity, blendshape weights) as OBJ; info")
    from model_core.heads.cli import add_head_arguments, run_head_cli

    add_head_arguments(p)
    p.set_defaults(func=run_head_cli)

    p = sub.add_parser("synth-corpus", help="generate the synthetic talking-head corpus (VOCASET layout)")
    from model_core.synth.cli import add_synth_arguments, run_synth_cli

    add_synth_arguments(p)
    p.set_defaults(func=run_synth_cli)

    from model_core.training.cli import add_evaluate_arguments, add_train_arguments, run_evaluate_cli, run_train_cli

    p = sub.add_parser("train", help="train a preset on a dataset folder (TOML config; --example-config)")
    add_train_arguments(p)
    p.set_defaults(func=run_train_cli)

    p = sub.add_parser("evaluate", help="LVE / FDD / MVE of a checkpoint on a split, next to a static baseline")
    add_evaluate_arguments(p)
    p.set_defaults(func=run_evaluate_cli)

    p = sub.add_parser("score-speech", help="a checkpoint's mouth on real recorded speech: closures, jaw, pauses, lag")
    from model_core.evaluation.score_speech import add_score_speech_arguments, run_score_speech_cli

    add_score_speech_arguments(p)
    p.set_defaults(func=run_score_speech_cli)

    p = sub.add_parser("check-precision", help="how far bf16 and int8 land from fp32 for a checkpoint on recorded "
                                               "speech; --record lets --precision auto use a path within the bar")
    from model_core.evaluation.precision_check import add_check_precision_arguments, run_check_precision_cli

    add_check_precision_arguments(p)
    p.set_defaults(func=run_check_precision_cli)

    p = sub.add_parser("bench", help="inference speed and memory table (JSON too)")
    from model_core.bench.cli import add_bench_arguments

    add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # our errors are ValueErrors with one clear sentence
        print(f"jambatalk {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
