"""The decision outbox: DynamoDB stream records of the decisions table as ``Screening Decision`` details.

The event is not sent by the code that takes the decision: the table's stream carries each new
item to an EventBridge pipe, whose enrichment step (functions/decision_event) calls this. So a
decision exists in the table if and only if its event is on its way, and a crash anywhere in a
handler can neither lose the event nor send it twice.

Issue 23: a new item is forwarded only when a witness its writer does not control agrees that the
pipeline produced it (``execution_of``: the Step Functions execution the submission id names), and
every later change of an item (MODIFY, REMOVE) is evidence, classified here and never a decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kyc.aws.dynamodb_decision_store import deserialise_item
from kyc.domain.record import decision_event_detail

TTL_PRINCIPAL = "dynamodb.amazonaws.com"  # userIdentity of a TTL deletion (the service, not a role)
ERROR_DECISION = "ERROR"


@dataclass(frozen=True)
class ItemChange:
    """A decision item changed after it was written: recorded, alarmed when ``kind`` is ``other``."""

    event: str  # MODIFY or REMOVE
    submission_id: str
    kind: str  # erasure (erase's rewrite), expiry (the TTL), other (anyone else: an alarm)
    decision: str | None  # the item's decision after a MODIFY
    sequence_number: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "submission_id": self.submission_id,
            "kind": self.kind,
            "decision": self.decision,
            "sequence_number": self.sequence_number,
        }


def new_items(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The items of the INSERT records (new decisions), deserialised."""
    items: list[dict[str, Any]] = []
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        image = (record.get("dynamodb") or {}).get("NewImage")
        if not image:
            raise ValueError("stream record without NewImage: the table's StreamViewType must include it")
        items.append(deserialise_item(image))
    return items


def item_changes(records: Iterable[Mapping[str, Any]]) -> list[ItemChange]:
    """MODIFY and REMOVE records, each classified. An erasure's MODIFY leaves ``erased_at`` and no
    ``client_reference``; a TTL REMOVE names the DynamoDB service as its identity. Anything else
    (an update, a put over an item, a delete by a role) is ``other``."""
    changes = []
    for record in records:
        event = record.get("eventName")
        if event not in ("MODIFY", "REMOVE"):
            continue
        data = record.get("dynamodb") or {}
        keys = deserialise_item(data.get("Keys") or {})
        image = deserialise_item(data["NewImage"]) if data.get("NewImage") else {}
        identity = record.get("userIdentity") or {}
        if event == "REMOVE":
            kind = "expiry" if identity.get("principalId") == TTL_PRINCIPAL else "other"
        else:
            kind = "erasure" if image.get("erased_at") and "client_reference" not in image else "other"
        changes.append(
            ItemChange(
                event=str(event),
                submission_id=str(keys.get("submission_id") or image.get("submission_id")),
                kind=kind,
                decision=image.get("decision"),
                sequence_number=data.get("SequenceNumber"),
            )
        )
    return changes


# (submission id) -> the execution as DescribeExecution returns it, or None when there is none
DescribeExecution = Callable[[str], Mapping[str, Any] | None]


def unwitnessed_reason(item: Mapping[str, Any], describe: DescribeExecution) -> str | None:
    """Why ``item`` is not a decision the pipeline produced, or None when the execution its
    submission id names exists and screened exactly this upload (id and object version).

    ERROR is exempt: it is what the pipeline writes when it failed (sometimes with no execution at
    all) and never lets anyone through; withholding it would only lose the "screening failed" event.
    """
    if item.get("decision") == ERROR_DECISION:
        return None
    sid = str(item.get("submission_id"))
    execution = describe(sid)
    if execution is None:
        return "no Step Functions execution screened this submission"
    try:
        submission = (json.loads(execution.get("input") or "{}") or {}).get("submission") or {}
    except ValueError:
        return "the execution's input is not readable"
    if submission.get("submission_id") != sid:
        return "the execution screened another submission"
    if (item.get("source") or {}).get("version_id") != submission.get("version_id"):
        return "the record names another object version than the execution screened"
    return None


def new_decision_details(
    records: Iterable[Mapping[str, Any]], describe: DescribeExecution | None = None
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """One detail per witnessed INSERT, and (submission id, reason) for each INSERT withheld.
    Updates and removals are never decisions (``item_changes`` records them)."""
    details: list[dict[str, Any]] = []
    withheld: list[tuple[str, str]] = []
    for item in new_items(records):
        reason = unwitnessed_reason(item, describe) if describe is not None else None
        if reason is None:
            details.append(decision_event_detail(item))
        else:
            withheld.append((str(item.get("submission_id")), reason))
    return details, withheld
