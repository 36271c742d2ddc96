"""Where a local run's time goes: wall and CPU seconds per stage, measured where the work runs.

The local stack runs every handler, moto and the model server in one process, plus the decoders'
sandbox children, so a stage's CPU is read per thread: the Lambda router records the CPU of the
thread that ran each invocation (``time.thread_time``), the model server the CPU of the thread that
answered each request (the endpoint's scoring, the local DetectFaces), and the sandbox children
report theirs in the lineage records (added by the caller with ``record``). What is left of the
process's CPU is moto (every AWS call the handlers make, the state machine engine), the handlers'
helper threads and the runner: ``(emulator and the rest)``.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field

REST = "(emulator and the rest)"


def process_cpu_s() -> float:
    """CPU seconds of this process and of its reaped children (the sandboxes), user + system."""
    own = os.times()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.user + own.system + children.ru_utime + children.ru_stime


@dataclass
class StageFigures:
    calls: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0


@dataclass
class StageClock:
    """Per-stage calls, wall seconds and CPU seconds; ``start`` and ``stop`` bracket the run."""

    stages: dict[str, StageFigures] = field(default_factory=dict)
    per_submission_cpu_s: dict[str, float] = field(default_factory=dict)  # handlers and sandboxes only
    total_cpu_s: float = 0.0
    _began_cpu: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._began_cpu = process_cpu_s()

    def stop(self) -> None:
        self.total_cpu_s = process_cpu_s() - self._began_cpu

    def record(self, stage: str, wall_s: float, cpu_s: float, submission_id: str | None = None) -> None:
        with self._lock:
            figures = self.stages.setdefault(stage, StageFigures())
            figures.calls += 1
            figures.wall_s += wall_s
            figures.cpu_s += cpu_s
            if submission_id:
                self.per_submission_cpu_s[submission_id] = (
                    self.per_submission_cpu_s.get(submission_id, 0.0) + cpu_s
                )

    def timed(self, stage: str) -> _Timed:
        """``with clock.timed(name):`` records the block's wall time and this thread's CPU time."""
        return _Timed(self, stage)

    def table(self) -> list[tuple[str, int, float, float]]:
        """(stage, calls, wall s, CPU s), largest CPU first; the unattributed rest last."""
        rows = sorted(
            ((n, f.calls, f.wall_s, f.cpu_s) for n, f in self.stages.items()), key=lambda row: -row[3]
        )
        rest = self.total_cpu_s - sum(row[3] for row in rows)
        return [*rows, (REST, 0, 0.0, max(0.0, rest))]


class _Timed:
    def __init__(self, clock: StageClock, stage: str) -> None:
        self._clock, self._stage = clock, stage

    def __enter__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()

    def __exit__(self, *exc: object) -> None:
        self._clock.record(self._stage, time.perf_counter() - self._wall, time.thread_time() - self._cpu)
