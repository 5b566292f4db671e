"""The batch's progress bar: lines done out of all, lines/s, ETA, and how many were skipped or failed so far."""

from __future__ import annotations

from collections import Counter

from tqdm import tqdm


class BatchProgress:
    def __init__(self, total: int, *, quiet: bool = False) -> None:
        self.counts: Counter[str] = Counter()
        self._bar = tqdm(total=total, unit="line", disable=quiet, dynamic_ncols=True, smoothing=0.1)

    def add(self, row: dict) -> None:
        self.counts[row["status"]] += 1
        self._bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())), refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
