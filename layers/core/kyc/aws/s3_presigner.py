"""Presigned POST for the intake bucket: signs the policy that ``kyc.domain.upload_request`` plans.

A presigned POST is signed with the credentials of whoever presigns it (the function's role), so the
role needs ``s3:PutObject`` on the upload prefix and ``kms:GenerateDataKey`` on the stack key; the
policy document then narrows that to one key, one size range, one content type and SSE-KMS. Nothing
here talks to S3: signing is local, which is why it cannot fail on a throttled API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from kyc.domain.upload_request import UploadTicket

# SigV4 explicitly: SSE-KMS uploads are refused under the legacy signature.
_SIGV4 = Config(signature_version="s3v4")


@dataclass(frozen=True)
class PresignedPost:
    """Where to POST and the form fields to send before the file part."""

    url: str
    fields: Mapping[str, str]


class S3Presigner:
    """Signs upload tickets for one bucket."""

    def __init__(self, bucket: str, s3_client: Any = None) -> None:
        self._bucket = bucket
        self._s3 = s3_client or boto3.session.Session().client("s3", config=_SIGV4)

    def presign_post(self, ticket: UploadTicket) -> PresignedPost:
        """The signed form: ``fields`` carry the policy, signature and every field the policy pins."""
        signed = self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=ticket.key,
            Fields=dict(ticket.fields),
            Conditions=[_copy(c) for c in ticket.conditions],
            ExpiresIn=ticket.expires_in_s,
        )
        return PresignedPost(url=signed["url"], fields=dict(signed["fields"]))


def _copy(condition: Any) -> Any:
    """botocore may mutate the list it is given; the ticket stays frozen."""
    return dict(condition) if isinstance(condition, Mapping) else list(condition)
