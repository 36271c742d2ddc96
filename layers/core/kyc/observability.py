"""Powertools Logger, Tracer and Metrics shared by every function, and the lineage log record.

One correlation id per upload (the submission id) ties the records of every stage together;
object keys never appear in clear (they can carry applicant identifiers), only pseudonyms.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from kyc.version import code_version

logger = Logger()
tracer = Tracer()
metrics = Metrics()

LINEAGE_MESSAGE = "lineage"


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
