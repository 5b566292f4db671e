"""Reading the worker's .npy results without numpy's loader: the header is checked before any data is used."""

from __future__ import annotations

import ast

import numpy as np

from .protocol import MAX_NPY_HEADER_BYTES, NPY_MAGIC, RESULT_DTYPES


def parse_npy_header(data: bytes | bytearray | memoryview) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, data offset) of a .npy file's header at the start of `data`; ValueError with a reason.

    Only what the worker sends is accepted: format 1.0-3.0, a float32/float16 descr, C order, a shape of
    non-negative integers. The header dict is read with ast.literal_eval (literals only: no code, no pickle).
    """
    view = memoryview(data).cast("B")
    if len(view) < 10 or bytes(view[:6]) != NPY_MAGIC:
        raise ValueError("it is not a .npy file")
    major, minor = view[6], view[7]
    if major == 1:
        start = 10
        length = int.from_bytes(view[8:10], "little")
    elif major in (2, 3):
        start = 12
        if len(view) < start:
            raise ValueError("its .npy header is cut short")
        length = int.from_bytes(view[8:12], "little")
    else:
        raise ValueError(f"its .npy format version {major}.{minor} is unknown")
    if length > MAX_NPY_HEADER_BYTES:
        raise ValueError(f"its .npy header claims {length} bytes")
    if len(view) < start + length:
        raise ValueError("its .npy header is cut short")
    try:
        text = bytes(view[start:start + length]).decode("utf-8" if major == 3 else "latin-1")
        header = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        raise ValueError("its .npy header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise ValueError("its .npy header does not have exactly descr, fortran_order and shape")
    descr, fortran_order, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(descr, str) or descr not in RESULT_DTYPES:
        raise ValueError(f"its element type {str(descr)[:40]!r} is not float32 or float16")
    if fortran_order is not False:
        raise ValueError("it is not in C order")
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError(f"its shape {str(shape)[:60]} is not a tuple of non-negative integers")
    return np.dtype(descr), shape, start + length
