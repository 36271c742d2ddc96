"""The whole pipeline through the local stack: S3 upload -> EventBridge -> SQS -> start -> state machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyc.domain.lineage import verify_lineage
from kyclocal.samples import write_clip
from kyclocal.stack import STACK_NAME, LocalStack
from kyclocal.template import TEMPLATE, state_machine_definition
from tests.integration.conftest import crash_in, screen

SCORED = {"PASS", "REVIEW", "REJECT"}
MAX_STATE_BYTES = 16 * 1024  # far below the 256 KiB quota; frames would blow through it at once


@pytest.mark.parametrize("name", ["h264.mp4", "hevc.mov", "vp9.webm", "av1.mp4", "h264-rotated.mp4"])
def test_pipeline_ordinary_clip_gets_scored_decision(
    stack: LocalStack, clips: dict[str, Path], name: str
) -> None:
    item = screen(stack, clips[name], key=f"uploads/e2e/{name}")

    assert item["decision"] in SCORED, item
    assert item["frames_sampled"] > 0
    assert item["source"]["sha256"] == __import__("hashlib").sha256(clips[name].read_bytes()).hexdigest()
    assert item["model"]["name"].startswith("reference-spectrum")
    assert item["policy"]["version"]


def test_pipeline_reference_model_scores_every_frame_with_a_face(stack: LocalStack, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "face.mp4", "mp4", "libx264", {"preset": "ultrafast"}, seconds=1.5, fps=10)

    item = screen(stack, clip, key="uploads/e2e/face.mp4")

    assert item["frames_scored"] == item["frames_sampled"] > 0
    assert item["frames_with_face"] == item["frames_scored"]
    assert 0.0 <= item["score"] <= 1.0
    assert item["decision"] in SCORED and "NO_FACE" not in item["reasons"]


def test_pipeline_state_machine_runs_the_file_the_template_deploys(stack: LocalStack) -> None:
    """The running definition is the ASL file with each DefinitionSubstitution replaced by the physical
    id CloudFormation created for it (worked out here from the stack's resources, not by the stack)."""
    asl_path, substitutions = state_machine_definition(TEMPLATE)
    assert asl_path.name == "screening.asl.json"
    cfn = stack.client("cloudformation")
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    }
    lam = stack.client("lambda")
    expected = asl_path.read_text(encoding="utf-8")
    for key, value in substitutions.items():
        if "Fn::GetAtt" in value:
            resolved = lam.get_function(FunctionName=physical[value["Fn::GetAtt"][0]])["Configuration"][
                "FunctionArn"
            ]
        elif value.get("Ref") == "AWS::Partition":
            resolved = "aws"
        else:
            resolved = physical[value["Ref"]]
        expected = expected.replace("${" + key + "}", resolved)
    deployed = stack.client("stepfunctions").describe_state_machine(stateMachineArn=stack.state_machine_arn)

    assert "${" not in deployed["definition"] and "$$.Execution" in deployed["definition"]
    assert json.loads(deployed["definition"]) == json.loads(expected)


def test_pipeline_history_carries_no_frame_data(stack: LocalStack, clips: dict[str, Path]) -> None:
    item = screen(stack, clips["h264.mp4"], key="uploads/history/clip.mp4")
    history = stack.execution_history(item["submission_id"])

    sizes = []
    for event in history:
        for details in event.values():
            if isinstance(details, dict):
                for field in ("input", "output"):
                    if isinstance(details.get(field), str):
                        sizes.append(len(details[field].encode("utf-8")))
                        assert "/9j/" not in details[field]  # base64 JPEG start
                        assert "iVBORw0KGgo" not in details[field]  # base64 PNG start
    assert sizes, "the history had no state payloads to measure"
    assert max(sizes) < MAX_STATE_BYTES, max(sizes)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "EMPTY_FILE"),
        (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", "PLAYLIST_OR_SCRIPT"),
        (b"ffconcat version 1.0\nfile 'seg.ts'\n", "PLAYLIST_OR_SCRIPT"),
    ],
)
def test_pipeline_hostile_upload_is_invalid_and_never_scored(
    stack: LocalStack, tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "upload.mp4"
    path.write_bytes(content)
    scored_before = sum(1 for name, _ in stack.router.invocations if name == "ScoreFramesFunction")

    item = screen(stack, path, key=f"uploads/hostile/{reason.lower()}.mp4")

    assert item["decision"] == "INVALID"
    assert item["reasons"] == [reason]
    assert sum(1 for name, _ in stack.router.invocations if name == "ScoreFramesFunction") == scored_before


def test_pipeline_key_with_special_characters_is_screened(stack: LocalStack, clips: dict[str, Path]) -> None:
    item = screen(stack, clips["h264.mp4"], key="uploads/ACME 2026/applicant+42 100%/selfie-é.mp4")

    assert item["decision"] in SCORED
    assert item["source"]["key"] == "uploads/ACME 2026/applicant+42 100%/selfie-é.mp4"


def test_pipeline_crash_in_extract_records_error_never_pass(
    stack: LocalStack, clips: dict[str, Path]
) -> None:
    stack.router.fault = crash_in("ExtractFramesFunction", "injected crash")
    item = screen(stack, clips["vp9.webm"], key="uploads/crash/extract.webm")

    assert item["decision"] == "ERROR"
    assert item["reasons"] == ["PIPELINE_ERROR"]


def test_pipeline_endpoint_failure_in_every_batch_ends_in_error(
    stack: LocalStack, clips: dict[str, Path]
) -> None:
    stack.router.fault = crash_in("ScoreFramesFunction", "injected scoring crash")
    item = screen(stack, clips["hevc.mov"], key="uploads/crash/score.mov")

    assert item["decision"] == "ERROR"
    assert item["decision"] != "PASS"


def test_pipeline_decide_failure_falls_back_to_direct_error_record(
    stack: LocalStack, clips: dict[str, Path]
) -> None:
    stack.router.fault = crash_in("DecideOutcomeFunction", "the decide function is down")
    item = screen(stack, clips["h264.mp4"], key="uploads/crash/decide.mp4")

    assert item["decision"] == "ERROR"
    assert item["recorded_by"] == "state-machine"


def test_pipeline_duplicate_event_starts_one_screening(stack: LocalStack, clips: dict[str, Path]) -> None:
    ident = stack.upload(clips["h264.mp4"], key="uploads/dup/clip.mp4")
    item = stack.wait_for_decision(ident["submission_id"], timeout_s=120)
    assert item is not None
    sqs = stack.client("sqs")
    event = {
        "version": "0",
        "id": "dup-1",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-28T17:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "bucket": {"name": ident["bucket"]},
            "object": {
                "key": ident["key"],
                "size": 1,
                "etag": ident["etag"],
                "version-id": ident["version_id"],
            },
        },
    }
    event["detail"] |= {
        "version": "0",
        "request-id": "dup",
        "requester": "123456789012",
        "reason": "PutObject",
    }
    for _ in range(3):
        sqs.send_message(QueueUrl=stack.admission_queue_url, MessageBody=json.dumps(event))
    assert stack.drain_admissions(timeout_s=30), "the duplicates were not consumed"

    executions = stack.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)[
        "executions"
    ]
    assert [e["name"] for e in executions].count(ident["submission_id"]) == 1
    assert stack.decision(ident["submission_id"])["decided_at"] == item["decided_at"]


def test_pipeline_lineage_verifies_and_detects_tampering(stack: LocalStack, clips: dict[str, Path]) -> None:
    item = screen(stack, clips["vp9.webm"], key="uploads/lineage/clip.webm")
    s3 = stack.client("s3")
    artefacts = item["artefacts"]
    lineage = json.loads(
        s3.get_object(Bucket=stack.resources.audit_bucket, Key=artefacts["lineage_key"])["Body"].read()
    )

    def fetch(bucket: str, key: str) -> bytes | None:
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    assert lineage["source"]["sha256"] == item["source"]["sha256"]
    assert lineage["frames"]["items"], "the lineage names no frames"
    assert verify_lineage(lineage, fetch) == []

    # frames live one object per scoring batch (issue 25): each is a hashed byte range of it
    items = lineage["frames"]["items"]
    victim, bucket = items[0]["key"], lineage["frames"]["bucket"]
    in_victim = [f for f in items if f["key"] == victim]
    assert 1 < len(in_victim) <= 8 and in_victim[0]["offset"] == 0
    original = fetch(bucket, victim)
    assert original is not None
    flipped = bytearray(original)
    flipped[in_victim[1]["offset"] + 100] ^= 0x01  # one byte inside the batch's second frame
    s3.put_object(Bucket=bucket, Key=victim, Body=bytes(flipped))
    assert verify_lineage(lineage, fetch) == [f"hash mismatch: {victim} @{in_victim[1]['offset']}"]
    s3.put_object(Bucket=bucket, Key=victim, Body=b"tampered")  # the whole object replaced
    assert verify_lineage(lineage, fetch) == [f"hash mismatch: {victim} @{f['offset']}" for f in in_victim]


def test_pipeline_aborted_execution_gets_error_decision_from_reconcile(
    stack: LocalStack, clips: dict[str, Path]
) -> None:
    release = __import__("threading").Event()

    def hold(name: str, event: dict) -> None:
        if name == "ValidateUploadFunction":
            release.wait(20)  # the screening is stuck in validate while an operator aborts it

    stack.router.fault = hold
    ident = stack.upload(clips["vp9.webm"], key="uploads/abort/clip.webm")
    sfn = stack.client("stepfunctions")
    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{ident['submission_id']}"
    deadline = __import__("time").monotonic() + 30
    while __import__("time").monotonic() < deadline:
        try:
            if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                break
        except sfn.exceptions.ExecutionDoesNotExist:
            pass
        __import__("time").sleep(0.2)
    sfn.stop_execution(executionArn=arn, error="OperatorAbort", cause="drill")
    release.set()

    item = stack.wait_for_decision(ident["submission_id"], timeout_s=60)

    assert item is not None
    assert (item["decision"], item["reasons"], item["recorded_by"]) == (
        "ERROR",
        ["EXECUTION_FAILED"],
        "reconcile",
    )
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_pipeline_review_decision_notifies_reviewers_with_contact_sheet(
    stack: LocalStack, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "review.mp4", "mp4", "libx264", {"preset": "ultrafast"}, seconds=1.5, fps=10)

    item = screen(stack, clip, key="uploads/ref-77/review.mp4")

    assert item["decision"] == "REVIEW"
    sqs = stack.client("sqs")
    deadline = __import__("time").monotonic() + 30
    notices: list[dict] = []
    while not notices and __import__("time").monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=stack.review_queue_url, WaitTimeSeconds=1).get("Messages", [])
        notices = [json.loads(m["Body"]) for m in messages]
        notices = [n for n in notices if n.get("submission_id") == item["submission_id"]]
    [notice] = notices
    assert notice["reasons"] == item["reasons"]
    assert "ref-77/review.mp4" not in json.dumps(notice)
    head = stack.client("s3").head_object(
        Bucket=stack.resources.review_bucket, Key=f"reviews/{item['submission_id']}/contact-sheet.png"
    )
    assert head["SSEKMSKeyId"] == stack.kms_key_id
