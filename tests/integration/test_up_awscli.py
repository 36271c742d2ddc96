"""`kycscreen up` driven end to end by the real AWS CLI, as a team's onboarding system would use it.

The CLI (awscli in .venv-awscli, `make awscli`) knows nothing of kycscreen: it gets the printed
settings as environment variables, uploads with SSE-KMS and a client reference, reads the decision
from the table through ClientReferenceIndex and by id, and receives the `Screening Decision` event.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.clips import make_clip
from tests.fixtures.kycscreen_up import ROOT, read_settings, start_up, stop_up

AWS = ROOT / ".venv-awscli" / "bin" / "aws"
NEEDED = (
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "KYC_INTAKE_BUCKET",
    "KYC_UPLOAD_PREFIX",
    "KYC_KMS_KEY_ID",
    "KYC_DECISIONS_TABLE",
    "KYC_DECISION_EVENTS_QUEUE_URL",
)


def aws(env: dict[str, str], *args: str) -> Any:
    proc = subprocess.run(
        [str(AWS), *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.mark.skipif(not AWS.exists(), reason="the AWS CLI is not installed: `make awscli`")
def test_up_serves_the_aws_cli_end_to_end_and_stops_on_sigterm(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "selfie.mp4", width=160, height=120, fps=10, seconds=1.5)
    state = tmp_path / "state"
    up = start_up("--state-dir", str(state))
    try:
        settings = read_settings(up)
        assert set(NEEDED) <= set(settings), settings
        # issue 20: the workbench is served with a config.json naming this run's API and reviewer pool
        with urllib.request.urlopen(settings["KYC_WORKBENCH_URL"] + "config.json", timeout=10) as page:
            config = json.loads(page.read())
        assert config["apiUrl"] == settings["KYC_API_URL"]
        assert config["userPoolClientId"] == settings["KYC_COGNITO_CLIENT_ID"]
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)} | settings
        key = f"{settings['KYC_UPLOAD_PREFIX']}{uuid.uuid4().hex}.mp4"  # as the README: no reference in keys
        put = aws(
            env,
            "s3api",
            "put-object",
            "--bucket",
            settings["KYC_INTAKE_BUCKET"],
            "--key",
            key,
            "--body",
            str(clip),
            "--server-side-encryption",
            "aws:kms",
            "--ssekms-key-id",
            settings["KYC_KMS_KEY_ID"],
            "--metadata",
            "client-reference=app-42",
        )
        assert put["ServerSideEncryption"] == "aws:kms"

        items: list[dict[str, Any]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not items:
            items = aws(
                env,
                "dynamodb",
                "query",
                "--table-name",
                settings["KYC_DECISIONS_TABLE"],
                "--index-name",
                "ClientReferenceIndex",
                "--key-condition-expression",
                "client_reference = :r",
                "--expression-attribute-values",
                '{":r": {"S": "app-42"}}',
            )["Items"]
            time.sleep(1)
        assert len(items) == 1, "no decision for the upload"
        sid = items[0]["submission_id"]["S"]
        by_id = aws(
            env,
            "dynamodb",
            "get-item",
            "--table-name",
            settings["KYC_DECISIONS_TABLE"],
            "--key",
            json.dumps({"submission_id": {"S": sid}}),
        )["Item"]
        assert by_id["decision"]["S"] in {"PASS", "REVIEW", "REJECT"}
        assert by_id["source"]["M"]["key"]["S"] == key

        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not events:
            received = aws(
                env,
                "sqs",
                "receive-message",
                # awscli v1 sends SQS calls to the queue URL's legacy host unless told the endpoint
                "--endpoint-url",
                settings["AWS_ENDPOINT_URL"],
                "--queue-url",
                settings["KYC_DECISION_EVENTS_QUEUE_URL"],
                "--wait-time-seconds",
                "2",
            )
            events = [json.loads(m["Body"]) for m in (received or {}).get("Messages", [])]
        assert [(e["detail-type"], e["detail"]["submission_id"]) for e in events] == [
            ("Screening Decision", sid)
        ]
        assert events[0]["detail"]["client_reference"] == "app-42"
    finally:
        code, stop_s = stop_up(up)

    assert code == 0
    assert stop_s < 15, f"SIGTERM took {stop_s:.1f} s"
    saved = json.loads((state / "state.json").read_text(encoding="utf-8"))
    assert saved["decisions"] == 1
