"""The decision outbox: DynamoDB stream records of the decisions table as ``Screening Decision`` details.

The event is not sent by the code that takes the decision: the table's stream carries each new
item to an EventBridge pipe, whose enrichment step (functions/decision_event) calls this. So a
decision exists in the table if and only if its event is on its way, and a crash anywhere in a
handler can neither lose the event nor send it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kyc.aws.dynamodb_decision_store import deserialise_item
from kyc.domain.record import decision_event_detail


def new_decision_details(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One detail per INSERT (a new decision). Updates and removals (erasure's rewrite, the TTL)
    are not decisions; the pipe's filter drops them already, this is the second line."""
    details: list[dict[str, Any]] = []
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        image = (record.get("dynamodb") or {}).get("NewImage")
        if not image:
            raise ValueError("stream record without NewImage: the table's StreamViewType must include it")
        details.append(decision_event_detail(deserialise_item(image)))
    return details
