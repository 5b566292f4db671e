"""Which number format a model runs in, and preparing a model for it.

Paths (`--precision`):
- fp32: the exact path; the golden tests and every reference use it.
- bf16: the linear and convolution weights stored in bfloat16 once, the network run under bf16 autocast (norms,
  softmax and the Mamba scan stay float32). Storing the weights avoids autocast casting 300 M float32 weights
  again on every call, which was a quarter of the time; it also halves their memory.
- fp16: CUDA autocast only.
- int8: dynamic int8 quantisation of the audio encoder's linear layers (weights int8, activations quantised per
  call); CPU only, the rest float32.
- auto: on CUDA bf16 (else fp16); on a CPU bf16 where the CPU computes bf16 natively (AVX512-BF16 or AMX), else
  fp32. Measured by `jambatalk bench` (docs/benchmarks.md): where neither is present no path is assumed faster.

`JAMBATALK_CPU_PRECISION` (fp32, bf16 or int8) overrides the CPU's automatic choice, e.g. to pin the exact path.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: the command line lists these choices without it
    import torch
    from torch import nn

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
PRECISION_HELP = ("auto: bf16 on CUDA, and on CPUs that compute bf16 natively (AVX512-BF16, AMX), else fp32; "
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


@functools.cache
def cpu_features() -> CpuFeatures:
    import torch

    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass  # not Linux: torch's capability alone, and no native bf16 assumed
    return CpuFeatures(frozenset(flags), torch.backends.cpu.get_cpu_capability())


def cpu_default(features: CpuFeatures | None = None) -> str:
    """The CPU path `auto` means here: the override, else bf16 on native-bf16 CPUs, else fp32."""
    override = os.environ.get(CPU_OVERRIDE_ENV, "").strip().lower()
    if override:
        if override not in CPU_PRECISIONS:
            raise ValueError(f"{CPU_OVERRIDE_ENV}={override!r}: choose one of {', '.join(CPU_PRECISIONS)}.")
        return override
    features = features or cpu_features()
    return "bf16" if features.native_bf16 else "fp32"


def resolve(device: torch.device, precision: str = "auto") -> str:
    """The concrete path for `precision` on `device`: fp32, bf16, fp16 or int8."""
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
        return cpu_default() if precision == "auto" else precision
    # MPS and others: float32 unless asked otherwise.
    return "fp32" if precision in ("auto", "int8") else precision


def autocast_dtype(path: str) -> torch.dtype | None:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(path)


def prepare(model: nn.Module, path: str, device: torch.device) -> nn.Module:
    """Make `model`'s audio encoder (in eval mode, on `device`) ready for `path`, in place; returns the model.

    bf16 on a CPU: the encoder's linear and convolution weights become bfloat16 (biases and norms stay float32;
    autocast does the rest). int8: its linear layers are quantised dynamically. The decoder stays float32.
    """
    import torch
    from torch import nn

    encoder = getattr(model, "audio_encoder", None)
    if device.type != "cpu" or encoder is None:
        return model
    if path == "bf16":
        for module in encoder.modules():
            # A weight-normalised convolution (wav2vec2's positional one) computes its weight on every call from
            # parameters of its own; autocast casts that result, as before.
            if isinstance(module, nn.Linear | nn.Conv1d) and not hasattr(module, "parametrizations"):
                module.weight.data = module.weight.data.to(torch.bfloat16)
    elif path == "int8":
        with warnings.catch_warnings():
            # torch.ao's eager quantisation is deprecated in favour of torchao, which is not a dependency;
            # the kernels it calls (fbgemm / oneDNN) are the same.
            warnings.simplefilter("ignore")
            from torch.ao.quantization import quantize_dynamic

            model.audio_encoder = quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)
    return model
