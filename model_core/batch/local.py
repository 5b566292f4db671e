"""The local engine: the lines in this process, or spread over `--workers N` processes on this machine.

Each worker process loads each model once and takes chunks of lines from this process, sending back one report row
per line as it finishes. A worker that dies (killed, out of memory) has the lines it had not finished given to a
fresh worker once; twice, and they fail with a sentence saying so. Workers die with this process (Linux: the
kernel kills them; elsewhere they stop when their pipe closes), so a killed batch leaves nothing running behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait

from model_core.batch.manifest import BatchLine
from model_core.batch.runner import LineRunner, RunnerOptions, report_row

RowSink = Callable[[dict], None]
MAX_ATTEMPTS = 2
_POLL_S = 1.0


def chunks(lines: list[BatchLine], size: int) -> list[list[BatchLine]]:
    return [lines[i: i + size] for i in range(0, len(lines), size)]


def chunk_size(options: RunnerOptions) -> int:
    # Two passes' worth: packing sorts within a chunk, and a chunk is what a dying worker can lose.
    return max(1, options.batch_lines) * 2


def run_local(lines: list[BatchLine], options: RunnerOptions, workers: int, on_row: RowSink) -> None:
    """Every line's report row goes to `on_row` as it finishes (KeyboardInterrupt stops the run and the workers)."""
    if workers <= 1:
        runner = LineRunner(options)
        for chunk in chunks(lines, chunk_size(options)):
            runner.run(chunk, on_row)
        return
    threads = options.threads or max(1, (os.cpu_count() or 1) // workers)
    _Pool(replace(options, threads=threads), workers).run(lines, on_row)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    lines: dict[int, BatchLine] = field(default_factory=dict)  # given, not yet reported (by line number)


class _Pool:
    def __init__(self, options: RunnerOptions, size: int) -> None:
        self.options = options
        self.size = size
        self.context = multiprocessing.get_context("spawn")  # no forked torch threads

    def run(self, lines: list[BatchLine], on_row: RowSink) -> None:
        queue = deque(chunks(lines, chunk_size(self.options)))
        attempts: dict[int, int] = {}
        workers = [self._start() for _ in range(min(self.size, len(queue)))]
        try:
            while queue or any(w.lines for w in workers):
                for index, worker in enumerate(workers):
                    if not worker.lines and queue and not worker.process.is_alive():
                        worker.conn.close()
                        workers[index] = worker = self._start()
                    if not worker.lines and queue:
                        chunk = queue.popleft()
                        worker.lines = {line.number: line for line in chunk}
                        for line in chunk:
                            attempts[line.number] = attempts.get(line.number, 0) + 1
                        worker.conn.send(chunk)
                busy = [w for w in workers if w.lines]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=_POLL_S)
                for worker in busy:
                    if worker.conn in ready:
                        self._receive(worker, on_row)
                for index, worker in enumerate(workers):
                    if worker.lines and not worker.process.is_alive() and worker.process.sentinel in ready:
                        self._receive(worker, on_row)  # rows it sent before dying
                        lost = list(worker.lines.values())
                        code = worker.process.exitcode
                        retry = [line for line in lost if attempts[line.number] < MAX_ATTEMPTS]
                        for line in lost:
                            if attempts[line.number] >= MAX_ATTEMPTS:
                                on_row(_died_row(line, code))
                        if retry:
                            queue.appendleft(retry)
                        worker.conn.close()
                        workers[index] = self._start()
        finally:
            self._stop(workers)

    def _start(self) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker_main, args=(child, self.options, os.getpid()), daemon=True,
                                       name="jambatalk-batch-worker")
        process.start()
        child.close()
        return _Worker(process, parent)

    @staticmethod
    def _receive(worker: _Worker, on_row: RowSink) -> None:
        with contextlib.suppress(EOFError, OSError):
            while worker.conn.poll():
                row = worker.conn.recv()
                worker.lines.pop(row["line"], None)
                on_row(row)

    @staticmethod
    def _stop(workers: list[_Worker]) -> None:
        for worker in workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                worker.conn.send(None)
        for worker in workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: the worker exits through its atomic writes' clean-up
                worker.process.join(timeout=10)
            worker.conn.close()


def _died_row(line: BatchLine, code: int | None) -> dict:
    how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
    return report_row(line, "failed", error=f"The worker process died ({how}) while animating this line, "
                                            f"{MAX_ATTEMPTS} times; it may need more memory.")


def _die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel SIGKILL this worker when its parent dies (kill -9 included)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before we asked
        os._exit(1)


def _worker_main(conn: Connection, options: RunnerOptions, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    # SIGTERM as an exception, so a write in progress removes its temp file on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        runner = LineRunner(options)
        while (chunk := conn.recv()) is not None:
            runner.run(chunk, conn.send)
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # Ctrl-C (the whole process group gets it) or the parent is gone
