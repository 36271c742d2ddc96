"""`kycscreen up` serves the API and the reviewer pool as documented (docs/review.md, docs/openapi.yaml).

The command is run as a newcomer runs it; the page's part is played with the printed settings only:
sign in at ``KYC_COGNITO_ENDPOINT`` with ``KYC_COGNITO_CLIENT_ID``, call ``KYC_API_URL`` with the ID token.
"""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config

from tests.fixtures.kycscreen_up import ROOT, read_settings, start_up, stop_up

pytestmark = pytest.mark.integration


def test_up_prints_the_api_and_pool_settings_and_creates_users_who_can_sign_in():
    up = start_up(
        "--no-state",
        "--user",
        "alice:reviewer",
        "--user",
        "audrey:auditor:Given-By-Hand-0123!",
        "--webhook-url",
        "http://127.0.0.1:9/hooks/kyc",  # issue 20: the webhook's secret is printed for the receiver
    )
    try:
        lines: list[str] = []
        settings = read_settings(up, lines=lines)
        for key in (
            "KYC_API_URL",
            "KYC_COGNITO_REGION",
            "KYC_COGNITO_USER_POOL_ID",
            "KYC_COGNITO_CLIENT_ID",
            "KYC_COGNITO_ENDPOINT",
        ):
            assert settings.get(key), key
        assert settings["KYC_API_URL"].endswith("/v1")
        secrets = boto3.client(
            "secretsmanager",
            region_name=settings["AWS_DEFAULT_REGION"],
            endpoint_url=settings["AWS_ENDPOINT_URL"],
            aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        )
        secret = secrets.get_secret_value(SecretId=settings["KYC_WEBHOOK_SECRET_ARN"])["SecretString"]
        assert (
            len(secret) == 64 and secret.isalnum()
        )  # the template's GenerateSecretString: 64, no punctuation
        users = {u.split(":")[0]: u.split(":", 2) for u in lines if u.startswith("KYC_USER=")}
        assert set(users) == {"KYC_USER=alice", "KYC_USER=audrey"}
        assert users["KYC_USER=audrey"][2] == "Given-By-Hand-0123!"
        idp = boto3.client(  # InitiateAuth is an unsigned call in AWS too: no credentials at all
            "cognito-idp",
            region_name=settings["KYC_COGNITO_REGION"],
            endpoint_url=settings["KYC_COGNITO_ENDPOINT"],
            config=Config(signature_version=UNSIGNED),
        )
        for name, group, password in users.values():
            # USER_PASSWORD_AUTH, which the template's app client does not allow: moto ignores the client's
            # auth flows and checks a password only in this flow (its SRP accepts any proof), so this is
            # how the printed password is shown to be the user's. The page's SRP: test_workbench_srp.py.
            tokens = idp.initiate_auth(
                ClientId=settings["KYC_COGNITO_CLIENT_ID"],
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": name.removeprefix("KYC_USER="), "PASSWORD": password},
            )["AuthenticationResult"]
            me = requests.get(
                settings["KYC_API_URL"] + "/me",
                headers={"Authorization": f"Bearer {tokens['IdToken']}"},
                timeout=10,
            )
            assert me.status_code == 200 and me.json()["groups"] == [group]
        assert requests.get(settings["KYC_API_URL"] + "/me", timeout=10).status_code == 401
    finally:
        code, _ = stop_up(up)
    assert code == 0


def test_up_refuses_a_malformed_user():
    done = subprocess.run(
        [sys.executable, "-m", "kyclocal.cli", "up", "--no-state", "--user", "alice"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "NAME:GROUP" in done.stderr


def test_up_refuses_a_webhook_url_that_is_not_https():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kyclocal.cli",
            "up",
            "--no-state",
            "--webhook-url",
            "http://example.com/hook",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "https" in done.stderr
