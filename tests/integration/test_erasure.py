"""Erasure through the local stack: a screened upload leaves no video or frame version, and a
pseudonymised decision record that still proves what was decided on which bytes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from kyclocal.commands.erase import invoke_erase
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip
from tests.unit.functions.handler_loader import expected_pseudonym

REFERENCE = "ACME-CUST-0042"
KEY = f"uploads/{REFERENCE}/Jane Doe/selfie.mp4"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(LocalStackSettings(frame_count=8)) as running:
        yield running


@pytest.fixture(scope="module")
def screened(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict:
    clip = make_clip(Path(tmp_path_factory.mktemp("erase")) / "selfie.mp4", seconds=1.0, fps=10)
    ident = stack.upload(clip, key=KEY, metadata={"client-reference": REFERENCE})
    item = stack.wait_for_decision(ident["submission_id"], timeout_s=120)
    assert item is not None and item["client_reference"] == REFERENCE
    return {"ident": ident, "before": item}


def _versions(stack: LocalStack, bucket: str, prefix: str) -> list[str]:
    page = stack.client("s3").list_object_versions(Bucket=bucket, Prefix=prefix)
    return [v["Key"] for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]


def test_erase_by_reference_screened_upload_leaves_no_video_or_frames(
    stack: LocalStack, screened: dict, caplog: pytest.LogCaptureFixture
) -> None:
    sid = screened["ident"]["submission_id"]
    r = stack.resources
    assert _versions(stack, r.work_bucket, f"frames/{sid}/")  # the screening did write frames
    staged = [k for k in _versions(stack, r.work_bucket, "evidence/") if f"/decisions/{sid}/" in k]
    assert staged  # decide staged copies of the audit documents (they hold the decision's evidence)

    payload, errored = invoke_erase(stack, {"client_reference": REFERENCE, "request_reference": "DSR-1"})

    assert not errored, payload
    assert json.loads(payload)["outcomes"] == {"ERASED": 1}
    assert _versions(stack, r.intake_bucket, KEY) == []
    assert _versions(stack, r.work_bucket, f"frames/{sid}/") == []
    assert _versions(stack, r.work_bucket, f"scores/{sid}/") == []
    # issue 23: the staging copies under evidence/ go too (listed here by the sid, not by the code's prefix)
    assert [k for k in _versions(stack, r.work_bucket, "evidence/") if f"/decisions/{sid}/" in k] == []
    assert "erasure.json" in " ".join(_versions(stack, r.audit_bucket, f"decisions/{sid}/"))
    lineage = [rec.lineage for rec in caplog.records if getattr(rec, "lineage", {}).get("stage") == "erase"]
    assert [e["submission_id"] for e in lineage] == [sid]  # one lineage event per erasure
    assert KEY not in json.dumps(lineage) and REFERENCE not in json.dumps(lineage)


def test_erase_record_after_erasure_keeps_decision_without_personal_data(
    stack: LocalStack, screened: dict
) -> None:
    before, after = screened["before"], stack.decision(screened["ident"]["submission_id"])
    assert after is not None
    text = json.dumps(after)
    assert KEY not in text and REFERENCE not in text and "Jane Doe" not in text
    for name in ("decision", "reasons", "policy", "decided_at", "execution_arn"):
        assert after.get(name) == before.get(name)
    assert after["source"]["sha256"] == before["source"]["sha256"] and after["source"]["sha256"]
    assert after["source"]["key"] == expected_pseudonym(KEY)  # keyed: HMAC under the stack's PseudonymKey
    assert after["client_reference_pseudonym"] == expected_pseudonym(REFERENCE)
    assert after["erased_at"] and after["erasure_reason"] == "GDPR_ART17_REQUEST"


def test_erase_second_call_already_erased(stack: LocalStack, screened: dict) -> None:
    sid = screened["ident"]["submission_id"]
    before = stack.decision(sid)
    payload, errored = invoke_erase(stack, {"submission_id": sid})
    assert not errored and json.loads(payload)["outcomes"] == {"ALREADY_ERASED": 1}
    assert stack.decision(sid) == before


def test_erasure_sends_no_decision_event(stack: LocalStack, screened: dict) -> None:
    """The erasure rewrites the record (a MODIFY on the table's stream): not a new decision, so the
    pipe's filter keeps it off the bus. The subscriber saw the decision once, before the erasure."""
    from tests.integration.test_decision_events import Subscriber

    sid = screened["ident"]["submission_id"]
    assert stack.decision(sid)["erased_at"]  # the tests above erased it

    events = Subscriber(stack).settled(sid)

    assert [e["detail"]["decision"] for e in events] == [screened["before"]["decision"]]


def _all_log_lines(stack: LocalStack) -> list[str]:
    """Every line every function wrote to CloudWatch Logs (moto), as an operator could read them."""
    logs = stack.client("logs")
    lines = []
    for group in logs.describe_log_groups()["logGroups"]:
        kwargs = {"logGroupName": group["logGroupName"]}
        while True:
            page = logs.filter_log_events(**kwargs)
            lines += [e["message"] for e in page["events"]]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    return lines


def test_local_stack_pseudonym_key_is_an_hmac_key(stack: LocalStack) -> None:
    """The template's PseudonymKey as moto holds it after kyclocal.kms: GenerateMac over HTTP works on
    it (and is the stdlib HMAC of moto's key material), and refuses the stack's encryption key.
    (moto's DescribeKey cannot read the policy of a key its CloudFormation created: it is not used.)"""
    kms = stack.client("kms")
    arn = stack.outputs["PseudonymKeyArn"]
    mac = kms.generate_mac(KeyId=arn, Message=REFERENCE.encode(), MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert f"hmac:{arn.rsplit('/', 1)[1][:8]}:{mac.hex()}" == expected_pseudonym(REFERENCE, arn)
    with pytest.raises(kms.exceptions.InvalidKeyUsageException):
        kms.generate_mac(KeyId=stack.kms_key_id, Message=b"x", MacAlgorithm="HMAC_SHA_256")


def test_logs_of_a_screening_and_its_erasure_hold_no_raw_key_or_reference(
    stack: LocalStack, screened: dict
) -> None:
    sid = screened["ident"]["submission_id"]
    invoke_erase(stack, {"submission_id": sid})  # erased already, or now: its log lines count as well
    lines = _all_log_lines(stack)
    text = "\n".join(lines)
    assert sid in text and len(lines) > 10  # the screening's and the erasure's lines are all here
    for clear in (KEY, REFERENCE, "Jane Doe", REFERENCE.lower()):
        assert clear not in text, f"{clear!r} is in the logs"
    admission = [json.loads(line) for line in lines if '"message":"admission"' in line]
    assert [a["object"] for a in admission if a.get("submission_id") == sid] == [expected_pseudonym(KEY)]
    lineage = [json.loads(line)["lineage"] for line in lines if '"message":"lineage"' in line]
    validate = [e for e in lineage if e["stage"] == "validate" and e["submission_id"] == sid]
    assert [e["inputs"]["object"] for e in validate] == [expected_pseudonym(KEY)]
    # no unkeyed pseudonym anywhere ("sha256:" followed by anything but the serving image's digest,
    # which the deployment witness records, issue 24)
    image_digest = re.compile(r"@sha256:[0-9a-f]{64}|\"image_digest\": ?\"sha256:[0-9a-f]{64}")
    assert "sha256:" not in image_digest.sub("", text), [
        line[max(0, line.find("sha256:") - 80) : line.find("sha256:") + 80]
        for line in lines
        if "sha256:" in image_digest.sub("", line)
    ][:3]
