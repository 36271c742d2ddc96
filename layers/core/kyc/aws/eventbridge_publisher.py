"""Downstream notification: one ``Screening Decision`` event per decision, without raw scores."""

from __future__ import annotations

import json
from typing import Any

from kyc.aws.clients import client

DECISION_SOURCE = "kyc.screening"
DECISION_DETAIL_TYPE = "Screening Decision"


class DecisionPublishError(Exception):
    pass


class EventBridgePublisher:
    def __init__(self, event_bus_name: str, events_client: Any = None) -> None:
        self._bus = event_bus_name
        self._events = events_client or client("events")

    def publish(self, detail: dict[str, Any]) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": DECISION_SOURCE,
                    "DetailType": DECISION_DETAIL_TYPE,
                    "Detail": json.dumps(detail),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise DecisionPublishError(json.dumps(response.get("Entries", [])))
