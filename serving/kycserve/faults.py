"""Fault injection for tests: make the server misbehave the way real endpoints do.

Faults are consumed one per request, in order; when the queue is empty the server behaves. A
5xx storm is just many faults in a row.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from enum import StrEnum


class Fault(StrEnum):
    # SageMaker runtime front end (only on /endpoints/{name}/invocations)
    THROTTLE = "throttle"  # 400 ThrottlingException
    SERVICE_UNAVAILABLE = "service_unavailable"  # 503 ServiceUnavailable
    INTERNAL_FAILURE = "internal_failure"  # 500 InternalFailure
    MODEL_NOT_READY = "model_not_ready"  # 429 ModelNotReadyException
    # the container itself (a 4xx/5xx here becomes ModelError 424 on the runtime route)
    CONTAINER_4XX = "container_4xx"
    CONTAINER_5XX = "container_5xx"
    SLOW = "slow"  # sleep ``slow_seconds`` then answer normally
    MALFORMED_JSON = "malformed_json"
    DROP_FRAME = "drop_frame"  # one frame fewer than asked
    EXTRA_FRAME = "extra_frame"  # an id that was never sent
    OUT_OF_RANGE = "out_of_range"  # p_fake 1.5
    NAN_SCORE = "nan_score"  # p_fake NaN (non-standard JSON, as json.dumps writes it)
    MISSING_MODEL = "missing_model"  # no model name/version


SERVICE_FAULTS = frozenset(
    {Fault.THROTTLE, Fault.SERVICE_UNAVAILABLE, Fault.INTERNAL_FAILURE, Fault.MODEL_NOT_READY}
)


class FaultInjector:
    """A thread-safe queue of faults, one consumed per invocation request."""

    def __init__(self, faults: Iterable[Fault] = (), *, slow_seconds: float = 1.0) -> None:
        self._queue: deque[Fault] = deque(faults)
        self._lock = threading.Lock()
        self.slow_seconds = slow_seconds
        self.requests = 0

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._queue.extend(faults)

    def next(self) -> Fault | None:
        """The fault for this request, or None to behave."""
        with self._lock:
            self.requests += 1
            return self._queue.popleft() if self._queue else None
