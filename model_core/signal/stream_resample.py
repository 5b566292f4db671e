"""Resampling to 16 kHz block by block, bit for bit as scipy's `resample_poly` on the whole signal, and the
plan for decoding only part of a long file with the same result as decoding all of it and cutting.

Why blocks: a decoder must not hold a long file's samples twice. Why exactly equal: a strip cut from a
recording must animate the same whether the worker decoded the whole file or only the strip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

TARGET_SAMPLE_RATE = 16000
BLOCK_SAMPLES = 1 << 20


class StreamResampler:
    """resample_poly to 16 kHz, block by block, with the same output as on the whole signal (bit for bit).

    Each block is filtered together with enough neighbouring input (the filter's half length) on both sides, and
    blocks start at multiples of the decimation factor, so every output sample sees exactly the inputs and the
    phase it would see in one call; memory stays a few blocks, whatever the length.
    """

    def __init__(self, rate: int, block: int = BLOCK_SAMPLES) -> None:
        g = math.gcd(rate, TARGET_SAMPLE_RATE)
        self.up, self.down = TARGET_SAMPLE_RATE // g, rate // g
        need = -(-10 * max(self.up, self.down) // self.up) + 1  # resample_poly's half filter, in input samples
        self.context = self.down * -(-need // self.down)
        self.block = self.down * max(1, -(-block // self.down))
        self.passthrough = rate == TARGET_SAMPLE_RATE
        self.left = np.zeros(0, dtype=np.float32)
        self.pending: list[np.ndarray] = []
        self.pending_len = 0

    def output_length(self, frames: int) -> int:
        """How many 16 kHz samples `frames` input samples give (resample_poly's rule)."""
        return -(-frames * self.up // self.down)

    def _filter(self, core: np.ndarray, right: np.ndarray, final: bool) -> np.ndarray:
        segment = np.concatenate([self.left, core, right])
        out = resample_poly(segment, self.up, self.down)
        start = len(self.left) * self.up // self.down
        end = None if final else start + len(core) * self.up // self.down
        return np.asarray(out[start:end], dtype=np.float32)

    def feed(self, mono: np.ndarray) -> list[np.ndarray]:
        if self.passthrough:
            return [mono]
        self.pending.append(mono)
        self.pending_len += len(mono)
        if self.pending_len < self.block + self.context:
            return []
        buffer = np.concatenate(self.pending)
        out = []
        while len(buffer) >= self.block + self.context:
            core, right = buffer[:self.block], buffer[self.block:self.block + self.context]
            out.append(self._filter(core, right, final=False))
            self.left = core[-self.context:]
            buffer = buffer[self.block:]
        self.pending, self.pending_len = [buffer], len(buffer)
        return out

    def finish(self) -> list[np.ndarray]:
        if self.passthrough:
            return []
        core = np.concatenate(self.pending) if self.pending else np.zeros(0, dtype=np.float32)
        return [self._filter(core, np.zeros(0, dtype=np.float32), final=True)]


class GrowingOutput:
    """The 16 kHz result, written into one array sized from the header (grown only if the header lied)."""

    def __init__(self, expected: int) -> None:
        self.array = np.empty(max(0, expected), dtype=np.float32)
        self.length = 0

    def extend(self, parts: list[np.ndarray]) -> None:
        for part in parts:
            end = self.length + len(part)
            if end > len(self.array):
                grown = np.empty(max(end, len(self.array) * 5 // 4 + 1024), dtype=np.float32)
                grown[:self.length] = self.array[:self.length]
                self.array = grown
            self.array[self.length:end] = part
            self.length = end

    def result(self) -> np.ndarray:
        if self.length == len(self.array):
            return self.array
        return self.array[:self.length].copy()


@dataclass(frozen=True)
class SourceSpan:
    """Which input samples to decode so that output samples [first, stop) come out as from the whole signal.

    The input starts `lead` output samples early, on a multiple of the decimation factor (so the filter's phase
    is the whole signal's), and both ends carry the filter's reach; `lead` is what to drop from the front.
    """

    start: int  # first input sample to decode
    stop: int  # one past the last
    lead: int  # output samples before `first` that the decoded span gives

    @classmethod
    def plan(cls, resampler: StreamResampler, frames: int, first: int, stop: int) -> SourceSpan:
        up, down = resampler.up, resampler.down
        reach = -(-resampler.context // down) + 1  # the filter's half length, in steps of `down`, and one more
        begin = max(0, first // up - reach)
        end = min(frames, (stop // up + 1 + reach) * down)
        return cls(begin * down, end, first - begin * up)
