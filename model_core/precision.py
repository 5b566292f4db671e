"""Which number format a model runs in, and preparing a model for it.

Paths (`--precision`):
- fp32: the exact path; the golden tests and every reference use it.
- bf16: the audio encoder stored and run in bfloat16 end to end (bfloat16 has float32's range), the decoder in
  float32. bf16 autocast was measured first and left behind: it re-casts the weights and activations between ops
  on every call (docs/benchmarks.md has the figures of every path).
- fp16: CUDA autocast of the encoder (float16 needs float32 islands for its range).
- int8: dynamic int8 quantisation of the audio encoder's linear layers (weights int8, activations quantised per
  call); CPU only, the rest float32.
- auto: on CUDA bf16 (else fp16); on a CPU bf16 where the CPU computes bf16 natively (AVX512-BF16 or AMX) *and*
  the checkpoint records that its bf16 path was measured within `DEFAULT_ERROR_BAR_MM` of fp32 on recorded speech
  (`provenance["precision_error_mm"]`, written by the recipe that made it), else fp32. A fast path is the default
  only for a model it was measured accurate on: how far bf16 lands depends on the weights (the stage-2 ARKit
  model, whose lips move faster, lands 0.07 mm off where the stage-1 model landed 0.035 mm). Where neither flag is
  present no path is assumed faster (docs/benchmarks.md).

`JAMBATALK_CPU_PRECISION` (fp32, bf16 or int8) overrides the CPU's automatic choice, e.g. to pin the exact path.
"""

from __future__ import annotations

import functools
import gc
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: the command line lists these choices without it
    import torch
    from torch import nn

from model_core.memory import release_memory

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
# Half the bake tolerance: the largest vertex error against fp32 (mm, on recorded speech) a default path may add.
DEFAULT_ERROR_BAR_MM = 0.05
# Where a checkpoint's provenance records each path's measured error (mm) against fp32.
ERROR_RECORD_KEY = "precision_error_mm"
PRECISION_HELP = ("auto: bf16 on CUDA, and on CPUs that compute bf16 natively (AVX512-BF16, AMX) for a model "
                  f"whose checkpoint records its bf16 path within {DEFAULT_ERROR_BAR_MM} mm of fp32, else fp32; "
                  "int8: dynamic int8 audio encoder (CPU); fp32: the exact path")
CPU_OVERRIDE_ENV = "JAMBATALK_CPU_PRECISION"
CPU_PRECISIONS = ("fp32", "bf16", "int8")


@dataclass(frozen=True)
class CpuFeatures:
    """What this CPU computes natively, from its flags (Linux /proc/cpuinfo) and torch's own detection."""

    flags: frozenset[str]
    capability: str  # torch's vector ISA: DEFAULT, AVX2, AVX512, ...

    @property
    def native_bf16(self) -> bool:
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags

    @property
    def int8_dot_product(self) -> bool:
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & self.flags)

    def describe(self) -> str:
        have = [name for name, on in (("AMX", self.amx), ("AVX512-BF16", self.native_bf16 and not self.amx),
                                      ("VNNI", self.int8_dot_product)) if on]
        return f"{self.capability}" + (f" + {', '.join(have)}" if have else "")


def cpuinfo_value(key: str) -> str | None:
    """The value of the first `key : value` line of /proc/cpuinfo (None where there is none, e.g. off Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


@functools.cache
def cpu_features() -> CpuFeatures:
    import torch

    # Without /proc/cpuinfo: torch's capability alone, and no native bf16 assumed.
    flags = frozenset((cpuinfo_value("flags") or "").split())
    return CpuFeatures(flags, torch.backends.cpu.get_cpu_capability())


def accurate_paths(provenance: dict) -> frozenset[str]:
    """The paths a checkpoint's provenance records as measured within DEFAULT_ERROR_BAR_MM of fp32."""
    record = provenance.get(ERROR_RECORD_KEY)
    if not isinstance(record, dict):
        return frozenset()
    return frozenset(path for path, mm in record.items()
                     if isinstance(mm, int | float) and 0 <= mm <= DEFAULT_ERROR_BAR_MM)


def cpu_default(features: CpuFeatures | None = None, accurate: frozenset[str] = frozenset()) -> str:
    """The CPU path `auto` means here: the override, else bf16 on native-bf16 CPUs for a model measured accurate
    in bf16 (`accurate`, see `accurate_paths`), else fp32."""
    override = os.environ.get(CPU_OVERRIDE_ENV, "").strip().lower()
    if override:
        if override not in CPU_PRECISIONS:
            raise ValueError(f"{CPU_OVERRIDE_ENV}={override!r}: choose one of {', '.join(CPU_PRECISIONS)}.")
        return override
    features = features or cpu_features()
    return "bf16" if features.native_bf16 and "bf16" in accurate else "fp32"


def resolve(device: torch.device, precision: str = "auto", accurate: frozenset[str] = frozenset()) -> str:
    """The concrete path for `precision` on `device`: fp32, bf16, fp16 or int8. `accurate`: the fast paths the
    model was measured accurate on (a CPU's `auto` takes only those)."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}: choose {', '.join(PRECISIONS)}.")
    if device.type == "cuda":
        if precision == "int8":
            raise ValueError("--precision int8 runs on the CPU only; on a GPU use bf16 or fp16.")
        if precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return precision
    if device.type == "cpu":
        if precision == "fp16":
            raise ValueError("--precision fp16 needs a CUDA GPU; on a CPU use bf16, int8 or fp32.")
        return cpu_default(accurate=accurate) if precision == "auto" else precision
    # MPS and others: float32 unless asked otherwise.
    return "fp32" if precision in ("auto", "int8") else precision


def autocast_dtype(path: str) -> torch.dtype | None:
    """fp16 runs under autocast (float16's range needs float32 islands); the other paths do not."""
    import torch

    return torch.float16 if path == "fp16" else None


def encoder_dtype(path: str) -> torch.dtype:
    """The dtype of the audio encoder's weights and activations (bfloat16 has float32's range: no islands)."""
    import torch

    return torch.bfloat16 if path == "bf16" else torch.float32


def prepare(model: nn.Module, path: str, device: torch.device) -> nn.Module:
    """Make `model`'s audio encoder (in eval mode, on `device`) ready for `path`, in place; returns the model.

    bf16: the encoder's parameters become bfloat16 (it then runs in bfloat16 end to end). int8 (CPU): its linear
    layers are quantised dynamically. The decoder stays float32 on every path.
    """
    import torch
    from torch import nn

    encoder = getattr(model, "audio_encoder", None)
    if encoder is None:
        return model
    if path == "bf16":
        encoder.to(torch.bfloat16)
    elif path == "int8" and device.type == "cpu":
        with warnings.catch_warnings():
            # torch.ao's eager quantisation is deprecated in favour of torchao, which is not a dependency;
            # the kernels it calls (fbgemm / oneDNN) are the same.
            warnings.simplefilter("ignore")
            from torch.ao.quantization import quantize_dynamic

            model.audio_encoder = quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)
        del encoder
        gc.collect()
        release_memory()  # the float32 weights just let go would otherwise stay in the process's heap
    return model
