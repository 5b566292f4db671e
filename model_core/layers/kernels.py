"""Optional CUDA kernels from mamba-ssm / causal-conv1d, used automatically when they import."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache

import torch

FORCE_TORCH_ENV = "JAMBATALK_FORCE_TORCH"


@lru_cache(maxsize=1)
def _load() -> tuple[Callable | None, Callable | None]:
    # mamba-ssm 2.2.x raises ImportError without its CUDA extension; 2.3.x imports but fails at call time,
    # so importing is only the first half of the check: `kernels_usable` also needs a CUDA tensor.
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # noqa: BLE001 - any failure means "no kernel"
        selective_scan_fn = None
    try:
        from causal_conv1d import causal_conv1d_fn
    except Exception:  # noqa: BLE001
        causal_conv1d_fn = None
    return selective_scan_fn, causal_conv1d_fn


def selective_scan_kernel() -> Callable | None:
    return _load()[0]


def causal_conv1d_kernel() -> Callable | None:
    return _load()[1]


def kernels_available() -> bool:
    """True when the mamba-ssm selective-scan kernel imports (CUDA builds only)."""
    return selective_scan_kernel() is not None


def kernels_usable(tensor: torch.Tensor, allowed: bool = True) -> bool:
    """Whether this tensor's computation may take the CUDA kernel path."""
    if not allowed or os.environ.get(FORCE_TORCH_ENV, "") not in ("", "0"):
        return False
    return tensor.is_cuda and kernels_available()
