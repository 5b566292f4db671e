"""`jambatalk bench` and what every benchmark script shares.

- `probes`: the machine (CPU model and features), memory high-water marks, other processes' load, and the timing
  loop `timed_runs` (torch-free: the Blender-side benchmark uses it too);
- `signals`: the audio benchmarked (a synthetic speech-like signal; recorded speech for the shipped model);
- `measure`: one measurement in a fresh process (time, peak memory, error against float32);
- `report`: the targets and the table; `cli`: the command.

Every (preset, device, precision, duration) is measured in a fresh child process (`python -m model_core.cli
bench --one SPEC`), so its peak RSS belongs to that measurement alone. The machine may be shared, so each
measurement also records how much CPU time *other* processes used while it ran; a large `busy` share means the
timing is pessimistic.
"""

from model_core.bench.probes import (
    available_cores,
    busy_jiffies,
    cpu_model,
    describe_load,
    load_now,
    timed_runs,
    wait_for_idle,
)
from model_core.bench.signals import recorded_speech, synth_speech

__all__ = ["available_cores", "busy_jiffies", "cpu_model", "describe_load", "load_now", "recorded_speech",
           "synth_speech", "timed_runs", "wait_for_idle"]
