"""The corpus README: how it was made, from what, under which licences, and what was rejected."""

from __future__ import annotations

import re


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def corpus_readme(meta: dict, rejected: list[dict]) -> str:
    head = meta["head"]
    lines = [
        "# JambaTalk blendshape corpus",
        "",
        f"Made by `{meta['generator']}` (format {meta['format_version']}) with options "
        f"`{meta['options']}`. The same options give the same corpus.",
        "",
        f"**{meta['takes']} takes, {_minutes(meta['seconds'])} of speech** "
        f"(train {meta['split_takes']['train']}, val {meta['split_takes']['val']}, test {meta['split_takes']['test']}"
        " takes). Every take is animated with ARKit-52 weights at "
        f"{meta['fps']:g} fps on the head `{head['name']}` ({head['vertices']} vertices; {head['licence']}), each "
        "voice with its own face (a MakeHuman identity) and speaking style (`speakers.json`).",
        "",
        "## Sources",
        "",
        "| source | takes | speech | voices | languages | phone timing | text | licence of the audio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in sorted(meta["sources"].items()):
        voices = ", ".join(f"{v} ({_minutes(sec)})" for v, sec in sorted(s["voices"].items()))
        texts = sorted({re.sub(r", seed \d+", ", seeded", t) for t in s["text_sources"]})  # one line per kind
        lines.append(f"| {name} | {s['takes']} | {_minutes(s['seconds'])} | {voices} | {', '.join(s['languages'])} | "
                     f"{', '.join(s['timings'])} | {'; '.join(texts)} | {'; '.join(s['licences'])} |")
    lines += [
        "",
        "Attribution: the Asterisk prompts are recordings by Allison Smith for the Asterisk project (Debian "
        "`asterisk-core-sounds-en*`), CC-BY-SA 3.0: models trained on them must say so in their card.",
        f"Head: {head['credits']}",
        "",
        "## How the motion was made",
        "",
        "Phone timings (exact from the synthesiser, or forced-aligned with pocketsphinx for recordings and flite) "
        "map onto one ARPAbet inventory, and `model_core/corpus/arkit_motion.py` turns them into ARKit weights: "
        "coarticulated jaw and lip channels (dominance functions with each speaker's anticipation and carry-over), "
        "bilabial closures solved exactly through `mouthClose`, pauses relaxing to a resting mouth, blinks and "
        "brow raises from a separate random stream. Vertices are not stored: `head.safetensors` + a speaker's "
        "identity coefficients + the weights give them (`model_core/data/blendshape_corpus.py`).",
        "",
        "## Landmarks of the head (vertex indices)",
        "",
        ", ".join(f"{k} {v}" for k, v in sorted(head["landmarks"].items())),
        "",
        f"## Rejected alignments: {meta['rejected']['count']} ({_minutes(meta['rejected']['seconds'])})",
        "",
    ]
    if rejected:
        lines += ["| take | source | reasons |", "|---|---|---|"]
        lines += [f"| {r['take']} | {r['source']} | {'; '.join(r['reasons'])} |" for r in rejected]
    else:
        lines.append("None.")
    lines += ["", "Files: `audio/*.flac`, `weights/*.npy`, `takes/*.json` (text, phones, checks), `speakers.json`, "
              "`splits.json`, `rejected.json`, `regions/`, `head.safetensors`, `meta.json`.", ""]
    return "\n".join(lines)
