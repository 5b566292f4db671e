"""The Ray engine: the same lines and the same `LineRunner`, on a Ray cluster through Ray Data.

The driver reads and checks the manifest (the same code as the local engine), hands the lines to Ray Data
(`from_items`), and `map_batches` runs them on a pool of actors, each of which builds one `LineRunner` (one
model load per actor) and writes the lines' files; the driver streams the report rows back. Actors restart
when they die and their unfinished batches are retried (Ray Data's actor-pool defaults);
a retried line whose files and record were already written finds them and is skipped, so nothing is lost and
nothing is written twice. On a cluster, every node needs this package installed and must see the same paths
(audio, models, the output folder: shared storage).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import replace

from model_core.batch.local import chunk_size
from model_core.batch.manifest import BatchLine
from model_core.batch.runner import LineRunner, RunnerOptions

INSTALL_HINT = ("--engine ray needs Ray: pip install 'jambatalk[scale]' (or pip install 'ray[data]>=2.40'); "
                "without it, leave out --engine ray to run on this machine.")


def require_ray() -> None:
    """ValueError with the install sentence when Ray (with Ray Data) cannot be imported."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError(INSTALL_HINT) from None


class RayLines:
    """The actor `map_batches` builds: one `LineRunner` (models load on first use), kept for the actor's life."""

    def __init__(self, options: RunnerOptions) -> None:
        self.runner = LineRunner(options)

    def __call__(self, batch: dict) -> dict:
        lines = [BatchLine.from_json(str(text)) for text in batch["line"]]
        return {"row": [json.dumps(row) for row in self.runner.run(lines)]}


def default_workers(gpus_per_worker: float, cpus_per_worker: float) -> int:
    """As many actors as the cluster has room for: GPUs / gpus-per-worker, else CPUs / cpus-per-worker."""
    import ray

    resources = ray.cluster_resources()
    if gpus_per_worker > 0:
        return max(1, math.floor(resources.get("GPU", 0) / gpus_per_worker))
    return max(1, math.floor(resources.get("CPU", 1) / max(cpus_per_worker, 1e-3)))


def run_ray(lines: list[BatchLine], options: RunnerOptions, on_row: Callable[[dict], None], *,
            address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0,
            cpus_per_worker: float = 1.0) -> int:
    """Run the lines on Ray (a running cluster at `address`, else a local instance); returns the actor count."""
    require_ray()
    import ray
    import ray.data

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 configure_logging=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours counts lines, with their status
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on progress bars and finishing
        if hasattr(context, "print_on_execution_start"):
            context.print_on_execution_start = False
        size = workers or default_workers(gpus_per_worker, cpus_per_worker)
        threads = max(1, math.floor(cpus_per_worker))
        dataset = ray.data.from_items([{"line": line.to_json()} for line in lines],
                                      override_num_blocks=max(1, min(len(lines), size * 4)))
        # Actor pools restart dead actors and retry their unfinished batches by default (max_restarts and
        # max_task_retries -1); a retried line that was finished finds its record and is skipped.
        rows = dataset.map_batches(
            RayLines, fn_constructor_kwargs={"options": _with_threads(options, threads)},
            batch_size=chunk_size(options), batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=size), num_gpus=gpus_per_worker or None, num_cpus=cpus_per_worker,
        )
        for row in rows.iter_rows():
            on_row(json.loads(row["row"]))
        return size
    finally:
        if started_here:
            ray.shutdown()


def _with_threads(options: RunnerOptions, threads: int) -> RunnerOptions:
    return replace(options, threads=options.threads or threads)
