"""Tell reviewers a submission needs a person: one SNS message per REVIEW, ids and reasons only.

The message never carries the upload's object key (it can name the applicant) nor raw scores
(docs/review.md): the scores are on the contact sheet behind a short-lived link.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kyc.aws.clients import client

REVIEW_SUBJECT = "KYC screening: review needed"
MESSAGE_TYPE = "kyc.screening.review"


class ReviewNotifyError(Exception):
    """SNS did not take the message; the decision stands, the notification is what failed."""


@dataclass(frozen=True)
class ReviewNotice:
    submission_id: str
    decision: str
    reasons: Sequence[str]
    client_reference: str | None = None
    contact_sheet_url: str | None = None
    link_expires_at: str | None = None
    review_url: str | None = None  # the authenticated workbench's page, when there is one (issue 23)

    def to_message(self) -> dict[str, Any]:
        return {
            "type": MESSAGE_TYPE,
            "submission_id": self.submission_id,
            "client_reference": self.client_reference,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "contact_sheet_url": self.contact_sheet_url,
            "link_expires_at": self.link_expires_at,
            "review_url": self.review_url,
        }


class SnsReviewNotifier:
    def __init__(self, topic_arn: str, sns_client: Any = None) -> None:
        self._topic_arn = topic_arn
        self._sns = sns_client or client("sns")

    def notify(self, notice: ReviewNotice) -> str:
        """Publish the notice; returns the SNS message id."""
        try:
            response = self._sns.publish(
                TopicArn=self._topic_arn,
                Subject=REVIEW_SUBJECT,
                Message=json.dumps(notice.to_message(), indent=2),
                MessageAttributes={
                    "decision": {"DataType": "String", "StringValue": notice.decision},
                    "submission_id": {"DataType": "String", "StringValue": notice.submission_id},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise ReviewNotifyError("review topic did not accept the message") from exc
        return str(response["MessageId"])
