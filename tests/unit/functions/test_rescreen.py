"""Rescreen (issue 21) against moto: what a backlog re-screen counts when things go missing.

A submission whose evidence is gone (expired, erased) is NOT_RETAINED, not a failure; an item that
never wrote its result (a Map iteration that died) is a failure; the report lands on the package,
which promotion reads. The scoring path itself runs in tests/integration/test_promotion_journey.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from kyc.aws.model_registry import ModelRegistry
from kyc.domain.promotion import promotion_refusals
from tests.unit.functions.handler_loader import FakeContext, load_handler

GROUP = "kyc-test-candidates"
SHADOW = "/kyc/kyc-test/shadow-policy"
SHA = "ab" * 32


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("audit", "work"):
            s3.create_bucket(Bucket=bucket)
        key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        app = load_handler(
            "rescreen",
            {
                "KYC_WORK_BUCKET": "work",
                "KYC_AUDIT_BUCKET": "audit",
                "KYC_KMS_KEY_ID": key,
                "KYC_MODEL_PACKAGE_GROUP": GROUP,
                "KYC_SHADOW_POLICY_PARAMETER": SHADOW,
            },
            monkeypatch,
        )
        registry = ModelRegistry(GROUP, boto3.client("sagemaker", region_name="us-east-1"))
        registry.ensure_group()
        arn = registry.register(
            image="i", model_data_url="s3://audit/m", description="c", metadata={"ModelSha256": SHA}
        ).arn
        document = {
            "version": "p",
            "deployment": {
                "endpoint_name": "kyc-v1",
                "variant": "AllTraffic",
                "artefact_sha256": SHA,
                "model_package_arn": arn,
            },
        }
        version = boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name=SHADOW, Type="SecureString", Value=json.dumps(document)
        )["Version"]
        run = {"run_id": "r1", "model_package_arn": arn, "shadow_policy_version": version, "expected": 3}
        yield {"app": app, "registry": registry, "arn": arn, "run": run}


def _item(sid: str) -> dict[str, str]:
    return {"submission_id": sid, "recorded": "PASS", "lineage_key": f"decisions/{sid}/lineage.json"}


def test_gone_evidence_is_not_retained_and_a_missing_item_is_a_failure(env: dict[str, Any]) -> None:
    app, run = env["app"], env["run"]
    answers = [
        app.lambda_handler({"mode": "item", "item": _item(s), "run": run}, FakeContext()) for s in "ab"
    ]
    assert [a["status"] for a in answers] == ["NOT_RETAINED", "NOT_RETAINED"]
    # the third manifest item never wrote a result: the report counts it as failed
    report = app.lambda_handler({"mode": "report", "run": run}, FakeContext())
    assert (report["submissions"], report["compared"], report["failed"]) == (0, 0, 1)
    package = env["registry"].describe(env["arn"])
    assert package.metadata["RescreenFailed"] == "1"
    assert package.metadata["RescreenReportS3Uri"] == "s3://audit/rescreen/r1/report.json"
    assert "1 failed" in " ".join(promotion_refusals(package.to_dict()))


def test_a_shadow_pointer_of_another_package_is_refused(env: dict[str, Any]) -> None:
    run = env["run"] | {"model_package_arn": env["arn"].replace("/1", "/2")}
    answer = env["app"].lambda_handler({"mode": "item", "item": _item("c"), "run": run}, FakeContext())
    assert answer["status"] == "FAILED" and answer["candidate"] is None
