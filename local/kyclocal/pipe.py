"""The decision outbox pipe (``AWS::Pipes::Pipe`` in template.yaml) as the local stack runs it.

moto's CloudFormation cannot create a pipe, and moto runs none: the stack reads the pipe's
declaration from the translated template (source stream, filter, enrichment function, target
bus, event source and detail type) and runs it with a pump, as it runs the SQS event source
mapping. Nothing here re-declares the pipe: change template.yaml and the local pipe follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class PipeTemplateError(ValueError):
    """template.yaml declares a pipe this emulation does not understand."""


@dataclass(frozen=True)
class PipeSpec:
    logical_id: str
    source_table: str  # logical id of the table whose stream is the source
    filters: tuple[str, ...]  # EventBridge patterns, as declared
    enrichment: str | None  # logical id of the enrichment function
    target_bus: str  # logical id of the target event bus
    source: str
    detail_type: str
    batch_size: int
    maximum_retry_attempts: int
    dead_letter_queue: str | None  # logical id of the DLQ

    @classmethod
    def from_template(cls, body: dict[str, Any]) -> PipeSpec:
        pipes = [(lid, r) for lid, r in body["Resources"].items() if r.get("Type") == "AWS::Pipes::Pipe"]
        if len(pipes) != 1:
            raise PipeTemplateError(f"template.yaml declares {len(pipes)} pipes; the local stack runs one")
        logical_id, resource = pipes[0]
        props = resource["Properties"]
        source_params = props.get("SourceParameters", {})
        stream = source_params.get("DynamoDBStreamParameters", {})
        bus_params = props.get("TargetParameters", {}).get("EventBridgeEventBusParameters", {})
        if "InputTemplate" in props.get("TargetParameters", {}):
            raise PipeTemplateError("the local pipe does not render an InputTemplate")
        return cls(
            logical_id=logical_id,
            source_table=_get_att(props["Source"], "StreamArn"),
            filters=tuple(f["Pattern"] for f in source_params.get("FilterCriteria", {}).get("Filters", [])),
            enrichment=_get_att(props["Enrichment"], "Arn") if "Enrichment" in props else None,
            target_bus=_get_att(props["Target"], "Arn"),
            source=bus_params["Source"],
            detail_type=bus_params["DetailType"],
            batch_size=int(stream.get("BatchSize", 10)),
            maximum_retry_attempts=int(stream.get("MaximumRetryAttempts", -1)),
            dead_letter_queue=(
                _get_att(stream["DeadLetterConfig"]["Arn"], "Arn") if "DeadLetterConfig" in stream else None
            ),
        )

    def passes(self, record: dict[str, Any]) -> bool:
        """The pipe's filter: a record passes when any pattern matches it (none declared: all pass)."""
        from moto.events.models import EventPattern  # EventBridge's pattern language, as moto implements it

        return not self.filters or any(EventPattern.load(p).matches_event(record) for p in self.filters)

    def entries(self, details: list[Any], bus_name: str) -> list[dict[str, Any]]:
        """PutEvents entries for the enrichment's output: one event per element, as Pipes sends them."""
        return [
            {
                "Source": self.source,
                "DetailType": self.detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": bus_name,
            }
            for detail in details
        ]


def _get_att(value: Any, attribute: str) -> str:
    """The logical id in ``{"Fn::GetAtt": [id, attribute]}``; anything else is not a local reference."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        parts = target if isinstance(target, list) else target.split(".", 1)
        if parts[1] == attribute:
            return parts[0]
    raise PipeTemplateError(f"expected Fn::GetAtt ...{attribute}, got {value!r}")
