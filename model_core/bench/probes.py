"""What the benchmarks record about the machine and each run, torch-free so that the Blender-side benchmark can
use it too: CPU model and features, memory high-water marks, how busy other processes kept the CPUs, and the
timing loop every benchmark shares."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from model_core.precision import cpuinfo_value  # torch-free to import, like this module

GIB = 1024**3


def proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0), so the peak covers only what follows."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib() -> int:
    # ru_maxrss is KiB on Linux (bytes on macOS); /proc's VmHWM honours the reset above.
    hwm = proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def busy_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def foreign_share(before: tuple[int, int] | None, after: tuple[int, int] | None, cpu_s: float) -> float | None:
    """Share of all cores' time other processes used between two `busy_jiffies` readings, while this process
    used `cpu_s` of CPU time (None off Linux)."""
    if not before or not after or after[1] <= before[1]:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((after[0] - before[0]) / hz - cpu_s) / ((after[1] - before[1]) / hz))


def foreign_cpu_share(interval: float = 1.0) -> float | None:
    """Share of all cores' time that other processes used over `interval` seconds (this one is idle)."""
    before = busy_jiffies()
    time.sleep(interval)
    after = busy_jiffies()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def load_now() -> dict[str, Any]:
    """The load average and other processes' CPU share over the next second (benchmarks record it)."""
    return {"loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "foreign_cpu_share": foreign_cpu_share(1.0)}


def describe_load(load: dict[str, Any]) -> str:
    share = load["foreign_cpu_share"]
    return (f"loadavg {' '.join(f'{v:.2f}' for v in load['loadavg'] or [])}; "
            f"other processes {'?' if share is None else f'{100 * share:.0f} %'} of the CPUs")


def wait_for_idle(max_wait: float, threshold: float = 0.1, interval: float = 2.0) -> float | None:
    """Wait up to `max_wait` s until other processes use under `threshold` of the CPUs; the last share seen."""
    deadline = time.monotonic() + max_wait
    share = foreign_cpu_share(min(interval, max(max_wait, 0.1)))
    while share is not None and share > threshold and time.monotonic() < deadline:
        share = foreign_cpu_share(interval)
    return share


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one), for benchmark reports."""
    return cpuinfo_value("model name") or platform.processor() or platform.machine()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info(threads: int) -> dict[str, Any]:
    import torch
    import transformers

    from model_core import precision

    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_cores": available_cores(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "torch_threads": threads,
        "cpu_features": precision.cpu_features().describe(),
        # What `auto` picks on this CPU for a model measured accurate on every path (others get fp32).
        "cpu_auto_precision": precision.cpu_default(accurate=frozenset(precision.CPU_PRECISIONS)),
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY",
                                                          "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
                if k in os.environ},
    }
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return info


def timed_runs(fn: Callable[[], Any], repeats: int, finish: Callable[[], None] | None = None) -> tuple[Any, dict]:
    """Run fn `repeats` times (`finish` after each, inside the timing: e.g. a CUDA synchronise).

    Returns (the last result, {best_s, median_s, runs_s, cpu_runs_s, foreign_runs}): wall and process-CPU time of
    each run, and the share of all cores' time *other* processes used during it (None off Linux); a high share
    means that run's time is pessimistic. The previous result is dropped before each run, so repeats do not hold
    two outputs at once.
    """
    runs: list[float] = []
    cpus: list[float] = []
    foreign: list[float | None] = []
    result = None
    for _ in range(max(1, repeats)):
        result = None
        jiffies0, cpu0, t0 = busy_jiffies(), time.process_time(), time.perf_counter()
        result = fn()
        if finish is not None:
            finish()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        runs.append(wall)
        cpus.append(cpu)
        foreign.append(foreign_share(jiffies0, busy_jiffies(), cpu))
    return result, {"best_s": min(runs), "median_s": statistics.median(runs), "runs_s": runs, "cpu_runs_s": cpus,
                    "foreign_runs": foreign}
