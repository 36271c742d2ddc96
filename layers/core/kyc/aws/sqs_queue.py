"""One SQS queue's message visibility: how long a message the consumer hands back stays hidden."""

from __future__ import annotations

from typing import Any

from kyc.aws.clients import client


class SqsQueue:
    def __init__(self, queue_url: str, sqs_client: Any = None) -> None:
        self._url = queue_url
        self._sqs = sqs_client or client("sqs")

    def hide_for(self, receipt_handle: str, seconds: int) -> None:
        """The message reappears ``seconds`` from now (instead of after the queue's visibility
        timeout) once the consumer reports it failed."""
        self._sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
