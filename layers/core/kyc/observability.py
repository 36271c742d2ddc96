"""Powertools Logger, Tracer and Metrics shared by every function, and the lineage log record.

One correlation id per upload (the submission id) ties the records of every stage together;
object keys never appear in clear (they can carry applicant identifiers), only pseudonyms.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from kyc.domain.timestamps import parse_utc
from kyc.version import code_version

logger = Logger()
tracer = Tracer()
metrics = Metrics()

LINEAGE_MESSAGE = "lineage"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def log_lineage(stage: str, submission_id: str, **record: Any) -> dict[str, Any]:
    """Emit the one lineage record of a stage: inputs and outputs as content hashes, never content."""
    entry = {"stage": stage, "submission_id": submission_id, "code_version": code_version(), **record}
    logger.info(LINEAGE_MESSAGE, extra={"lineage": entry})
    return entry


def count(name: str, value: float = 1, unit: str = MetricUnit.Count, **dimensions: str) -> None:
    """A metric with its own low-cardinality dimensions (outcome, reason_code), flushed at once."""
    with single_metric(name=name, unit=unit, value=value) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=str(dim))


def stage_duration(stage: str) -> Callable[[Handler], Handler]:
    """Decorate a stage handler: emit ``StageDuration{stage, service}`` (ms) when it returns or raises.

    One dimension of a handful of fixed values, so the metric stays cheap; a failed stage is timed too,
    because a slow failure (a decoder that hangs until its budget) is what the on-call SRE looks for.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def timed(event: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                count("StageDuration", value=elapsed_ms, unit=MetricUnit.Milliseconds, stage=stage)

        return timed  # type: ignore[return-value]

    return decorate


def time_to_decision(received_at: str | None, now: datetime | None = None) -> float | None:
    """Emit ``TimeToDecision`` (s): from the upload's S3 event time to the recorded decision.

    Measured from the event, not from the execution start, so time spent waiting in the admission
    queue counts: that wait is what the applicant sees. An unreadable or future timestamp is skipped.
    """
    if not received_at:
        return None
    try:
        received = parse_utc(received_at)
    except ValueError:
        return None
    seconds = ((now or datetime.now(UTC)) - received).total_seconds()
    if seconds < 0:
        return None
    count("TimeToDecision", value=seconds, unit=MetricUnit.Seconds)
    return seconds
