"""`jambatalk head export OUT.obj [--head FILE] [--identity SEED] [--weights name=value ...]`."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from model_core.heads.asset import HeadAsset, load_head, write_obj
from model_core.heads.identity import random_identity

SHIPPED_HEAD = Path(__file__).resolve().parents[2] / "models" / "heads" / "makehuman-arkit" / "head.safetensors"


def resolve_head(name_or_path: str) -> HeadAsset:
    """'makehuman' (the shipped CC0 head) or a path to any head file in our format."""
    if name_or_path in ("makehuman", "makehuman-arkit"):
        return load_head(SHIPPED_HEAD)
    return load_head(name_or_path)


def parse_weights(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)  # "jawOpen" alone has an empty value: not a number either
        except ValueError:
            raise ValueError(f"--weights takes name=value pairs such as jawOpen=0.5 (got '{item}').") from None
    return out


def add_head_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="head_command", required=True)
    p = sub.add_parser("export", help="write a head (an identity, posed by blendshape weights) as OBJ")
    p.add_argument("out", help="output .obj")
    p.add_argument("--head", default="makehuman", help="'makehuman' (shipped, CC0) or a head .safetensors")
    p.add_argument("--identity", type=int, default=None, help="seed of a random identity (default: the neutral)")
    p.add_argument("--weights", nargs="*", default=[], metavar="NAME=VALUE", help="blendshape weights, e.g. "
                   "jawOpen=0.4 mouthFunnel=0.3")
    p = sub.add_parser("info", help="names, landmarks, parts and licence of a head")
    p.add_argument("--head", default="makehuman")


def run_head_cli(args: argparse.Namespace) -> int:
    head = resolve_head(args.head)
    if args.head_command == "info":
        print(f"{head.name}: {head.vertex_count} vertices, {len(head.faces)} faces, "
              f"{len(head.blendshape_names)} blendshapes, {len(head.identity_names)} identity targets")
        print("blendshapes:", " ".join(head.blendshape_names))
        print("landmarks:", ", ".join(f"{k}={v}" for k, v in head.landmarks.items()))
        print("parts:", ", ".join(f"{k}=[{a}, {b})" for k, (a, b) in head.parts.items()))
        print("licence:", head.info.get("licence", "unknown"))
        print("credits:", head.info.get("credits", ""))
        return 0
    neutral = head.neutral
    label = "neutral"
    if args.identity is not None:
        identity = random_identity(np.random.default_rng(args.identity), head.identity_names)
        neutral = head.identity_neutral(identity.coefficients(head.identity_names))
        label = f"identity seed {args.identity}"
    weights = parse_weights(args.weights)
    vertices = head.pose(head.weights_vector(weights), neutral=neutral)
    posed = " ".join(f"{k}={v:g}" for k, v in weights.items()) or "no weights"
    write_obj(args.out, vertices, head.faces,
              header=f"{head.name} ({label}; {posed}); {head.info.get('licence', '')}\n"
                     f"{head.info.get('credits', '')}")
    print(f"Wrote {args.out}: {head.vertex_count} vertices, {len(head.faces)} faces ({label}; {posed}).")
    return 0
