"""NotifyReview handler against moto in-process: the sheet lands under the KMS key, the message is lean."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import numpy as np
import pytest
from moto import mock_aws

from kyc.aws.s3_object_store import canonical_json
from kyc.domain.lineage import sha256_hex
from kyc.media.contact_sheet import decode_image, encode_png

APP = Path(__file__).resolve().parents[3] / "functions" / "notify" / "app.py"
SID = "ab" * 32
UPLOAD_KEY = "uploads/jane.doe@example.com/selfie.mp4"


@dataclass
class _Context:
    function_name: str = "NotifyReviewFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:NotifyReviewFunction"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class _Env:
    app: ModuleType
    s3: Any
    sqs: Any
    queue_url: str
    kms_key: str


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Env]:
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "KycScreening")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "kyc-screening")
    with mock_aws():
        from kyc.aws.clients import client

        client.cache_clear()
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("work", "audit", "review"):
            s3.create_bucket(Bucket=bucket)
        kms_key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="review")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="reviewers")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )
        monkeypatch.setenv("KYC_WORK_BUCKET", "work")
        monkeypatch.setenv("KYC_AUDIT_BUCKET", "audit")
        monkeypatch.setenv("KYC_REVIEW_BUCKET", "review")
        monkeypatch.setenv("KYC_KMS_KEY_ID", kms_key)
        monkeypatch.setenv("KYC_REVIEW_TOPIC_ARN", topic)
        spec = importlib.util.spec_from_file_location("kyc_function_notify_test", APP)
        assert spec is not None and spec.loader is not None
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        yield _Env(app, s3, sqs, queue_url, kms_key)
        client.cache_clear()


def _stage_frames(s3: Any, count: int = 4, scores: bool = True) -> dict[str, Any]:
    prefix = f"frames/{SID}/"
    entries = []
    for i in range(count):
        pixels = np.zeros((120, 160, 3), dtype=np.uint8)
        pixels[:] = (200, 30, 30)
        data = encode_png(pixels)
        s3.put_object(Bucket="work", Key=f"{prefix}{i:03d}.png", Body=data)
        entries.append({"index": i, "file": f"{i:03d}.png", "pts_s": i * 0.5, "sha256": sha256_hex(data)})
    s3.put_object(
        Bucket="work",
        Key=f"{prefix}manifest.json",
        Body=canonical_json({"prefix": prefix, "frames": entries}),
    )
    if scores:
        doc = {
            "frames": [
                {
                    "frame_id": f"{i:03d}",
                    "p_fake": 0.61,
                    "faces": [{"box": [0.2, 0.2, 0.4, 0.5], "confidence": 0.9, "p_fake": 0.61}],
                    "quality": [],
                }
                for i in range(count - 1)
            ]
        }
        s3.put_object(Bucket="audit", Key=f"decisions/{SID}/scores.json", Body=canonical_json(doc))
    return {
        "submission_id": SID,
        "decision": "REVIEW",
        "reasons": ["MODEL_UNCERTAIN"],
        "manifest_key": f"{prefix}manifest.json",
        "scores_key": f"decisions/{SID}/scores.json",
        # the state machine passes the whole submission: its raw key must not reach the message
        "submission": {"submission_id": SID, "key": UPLOAD_KEY, "client_reference": "ref-123"},
    }


def _messages(env: _Env) -> list[dict[str, Any]]:
    got = env.sqs.receive_message(QueueUrl=env.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def test_notify_review_publishes_ids_reasons_and_link_only(env: _Env) -> None:
    event = _stage_frames(env.s3)

    result = env.app.lambda_handler(event, _Context())

    [message] = _messages(env)
    assert message["submission_id"] == SID
    assert message["client_reference"] == "ref-123"
    assert message["reasons"] == ["MODEL_UNCERTAIN"]
    assert message["decision"] == "REVIEW"
    url = urlparse(message["contact_sheet_url"])
    assert url.path.endswith(f"/reviews/{SID}/contact-sheet.png")
    assert parse_qs(url.query)["X-Amz-Expires"] == ["900"]
    body = json.dumps(message)
    assert "jane.doe" not in body and "uploads/" not in body
    assert "0.61" not in body and "p_fake" not in body
    assert result["contact_sheet_key"] == f"reviews/{SID}/contact-sheet.png"


def test_notify_review_with_a_workbench_sends_its_link_and_no_bearer_link_to_a_face(
    env: _Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: with a workbench configured, the message leads to the authenticated page only."""
    monkeypatch.setenv("KYC_REVIEW_WORKBENCH_URL", "https://review.example.com/kyc/")
    spec = importlib.util.spec_from_file_location("kyc_function_notify_workbench_test", APP)
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    event = _stage_frames(env.s3)

    result = app.lambda_handler(event, _Context())

    [message] = _messages(env)
    assert message["review_url"] == f"https://review.example.com/kyc/#/case/{SID}"  # web/js/app.js route
    assert message["contact_sheet_url"] is None and message["link_expires_at"] is None
    body = json.dumps(message)
    assert "X-Amz-" not in body and "contact-sheet.png" not in body and "amazonaws.com" not in body
    # the sheet is still drawn for the workbench to show, under the stack key
    assert result["contact_sheet_key"] == f"reviews/{SID}/contact-sheet.png"
    head = env.s3.head_object(Bucket="review", Key=result["contact_sheet_key"])
    assert head["SSEKMSKeyId"] == env.kms_key


def test_notify_review_without_a_workbench_sends_no_review_url(env: _Env) -> None:
    env.app.lambda_handler(_stage_frames(env.s3), _Context())

    [message] = _messages(env)
    assert message["review_url"] is None and "X-Amz-Expires" in message["contact_sheet_url"]


def test_notify_review_sheet_encrypted_with_stack_key(env: _Env) -> None:
    event = _stage_frames(env.s3)

    env.app.lambda_handler(event, _Context())

    key = f"reviews/{SID}/contact-sheet.png"
    head = env.s3.head_object(Bucket="review", Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == env.kms_key
    assert head["ContentType"] == "image/png"
    sheet = decode_image(env.s3.get_object(Bucket="review", Key=key)["Body"].read())
    assert (sheet.width, sheet.height) == (4 + 4 * (192 + 4), 4 + 192 + (14 + 2 * 4) + 4)
    # the write-once audit bucket holds no image of the applicant: only the scores staged above
    audit = [o["Key"] for o in env.s3.list_objects_v2(Bucket="audit").get("Contents", [])]
    assert audit == [f"decisions/{SID}/scores.json"]


def test_notify_review_missing_scores_still_notifies(env: _Env) -> None:
    event = _stage_frames(env.s3, scores=False)

    result = env.app.lambda_handler(event, _Context())

    assert result["notified"] is True
    assert len(_messages(env)) == 1


def test_notify_non_review_decision_sends_nothing(env: _Env) -> None:
    event = _stage_frames(env.s3) | {"decision": "PASS"}

    result = env.app.lambda_handler(event, _Context())

    assert result == {"submission_id": SID, "notified": False}
    assert _messages(env) == []


def test_notify_tampered_frame_raises_and_sends_nothing(env: _Env) -> None:
    event = _stage_frames(env.s3)
    env.s3.put_object(Bucket="work", Key=f"frames/{SID}/001.png", Body=b"\x89PNG\r\n\x1a\nother")

    with pytest.raises(Exception, match="manifest hash"):
        env.app.lambda_handler(event, _Context())

    assert _messages(env) == []


def test_notify_review_sheet_names_the_earlier_submission_of_reused_media(env: _Env) -> None:
    """A MEDIA_REUSED decision's sheet carries one header line (11 px, then the 4 px gap) above the
    grid, drawn in the caption colour; without a match the sheet has no header (the test above)."""
    event = _stage_frames(env.s3)
    earlier = "cd" * 32
    reuse = {
        "checked": True,
        "matched": True,
        "match_count": 2,
        "matches": [{"submission_id": earlier, "kind": "perceptual", "strength": 0.875}],
    }
    lineage = {"decision": {"reuse": reuse}}
    env.s3.put_object(Bucket="audit", Key=f"decisions/{SID}/lineage.json", Body=canonical_json(lineage))

    env.app.lambda_handler(event, _Context())

    png = env.s3.get_object(Bucket="review", Key=f"reviews/{SID}/contact-sheet.png")["Body"].read()
    sheet = decode_image(png).to_ndarray(format="rgb24")
    assert sheet.shape[:2] == (4 + 192 + (14 + 2 * 4) + 4 + 11 + 4, 4 + 4 * (192 + 4))
    header = sheet[4 : 4 + 7, 4:]  # one glyph row
    background = sheet[0, 0]
    assert (header != background).any(axis=2).sum() > 100  # text was drawn there


def test_reuse_sheet_line_names_the_strongest_match_and_counts_the_rest() -> None:
    from kyc.domain.reuse import sheet_lines

    earlier = "cd" * 32
    result = {
        "matched": True,
        "match_count": 3,
        "matches": [{"submission_id": earlier, "kind": "exact", "strength": 1.0}],
    }
    assert sheet_lines(result) == [f"reused: exact match of {earlier[:16]}, strength 1.0, 2 more"]
    assert sheet_lines({"matched": False, "matches": []}) == []
    assert sheet_lines(None) == []
