"""benchmarks/stages.py's clock: CPU is charged to the thread that did the work, waiting is not work."""

from __future__ import annotations

import threading
import time

from kyclocal.stage_clock import REST, StageClock


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_work_and_waiting_are_told_apart_per_stage_and_the_rest_is_reported() -> None:
    clock = StageClock()
    clock.start()

    def waits() -> None:
        with clock.timed("waits"):
            time.sleep(0.3)

    def works() -> None:
        with clock.timed("works"):
            _spin(0.3)

    threads = [threading.Thread(target=waits), threading.Thread(target=works)]
    for t in threads:
        t.start()
    _spin(0.2)  # this thread's own work belongs to no stage
    for t in threads:
        t.join()
    clock.stop()
    rest = clock.table()[-1]
    assert rest[0] == REST and rest[3] >= 0.15  # the main thread's 0.2 s of work belongs to no stage
    clock.record("sandbox", 0.0, 0.5, "sid-1")  # a child's CPU, as its lineage record reports it
    rows = {name: (calls, wall, cpu) for name, calls, wall, cpu in clock.table()}
    assert rows["waits"][0] == 1 and rows["waits"][1] >= 0.3 and rows["waits"][2] < 0.05
    assert rows["works"][0] == 1 and 0.29 <= rows["works"][2] <= rows["works"][1] + 0.05
    assert clock.per_submission_cpu_s == {"sid-1": 0.5}
    assert rows[REST][2] == max(0.0, rest[3] - 0.5)  # charged to its stage, no longer to the rest
