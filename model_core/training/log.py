"""Per-epoch training log: a CSV file (always) and TensorBoard scalars (when asked for and installed)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

LOG_COLUMNS = ("epoch", "global_step", "lr", "seconds", "train_loss", "train_vertex_mse", "train_velocity_mse",
               "train_lip_feature_mse", "train_lip_ctc", "train_moe_balance", "val_vertex_mse", "val_lve", "val_fdd",
               "val_mve", "baseline_val_lve", "best", "train_lip_mse", "train_weight_mse",
               "train_lip_gap_mse", "train_closure_mse", "train_opening_mse", "train_phone_ce",
               "train_phone_accuracy")


class RunLog:
    def __init__(self, folder: Path, tensorboard: bool = False) -> None:
        self.path = folder / "log.csv"
        if not self.path.is_file():
            with self.path.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(LOG_COLUMNS)
        elif tuple(_header(self.path)) != LOG_COLUMNS:
            self._rewrite(read_log(self.path))  # a run started by an older version: its rows under today's columns
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(folder / "tensorboard"))
            except ImportError:
                print("TensorBoard logging was asked for but the tensorboard package is not installed; "
                      "only log.csv is written.", file=sys.stderr)

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([_cell(row.get(c)) for c in LOG_COLUMNS])
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "global_step", "best") and isinstance(value, int | float):
                    self.writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])
            self.writer.flush()

    def truncate_after(self, epoch: int) -> None:
        """Drop rows of epochs later than `epoch` (they are about to be trained again after a resume)."""
        rows = read_log(self.path)
        kept = [r for r in rows if int(r["epoch"]) <= epoch]
        if len(kept) != len(rows):
            self._rewrite(kept)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        with self.path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
