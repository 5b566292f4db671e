"""Giving freed memory back to the operating system after a large upload or decode.

glibc keeps freed heap memory for reuse; after a burst of large requests the worker's resident size would stay
at its peak although nothing holds it. `malloc_trim` returns it. A no-op where there is no glibc."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

TRIM_ABOVE_BYTES = 8 * 2**20  # smaller requests leave too little behind to be worth a heap walk

_libc = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        _libc = None


def release_memory(handled_bytes: int = TRIM_ABOVE_BYTES) -> None:
    """Return free heap pages to the system when a request of `handled_bytes` has just been let go."""
    if _libc is not None and handled_bytes >= TRIM_ABOVE_BYTES:
        _libc.malloc_trim(0)
