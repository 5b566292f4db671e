"""Inference benchmark table + JSON; the same as `jambatalk bench`.

Run from the repository root: `python scripts/bench_inference.py --durations 10,60` (see --help).
"""

from __future__ import annotations

import sys
from pathlib import Path

# A plain script does not see the repository's packages: put the root on the path first.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
