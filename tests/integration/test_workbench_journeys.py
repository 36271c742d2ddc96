"""The reviewer workbench in a real browser: one journey per test, checked against the API itself.

The stack is the local one (template.yaml in moto's server, the real pipeline and handlers), with the
review API over local HTTP (kyclocal.api_gateway) and the workbench served with the template's
security headers (kyclocal.workbench). Real clips are screened into the REVIEW queue. The browser is
Debian's headless Chromium, driven by Playwright in .venv-browser (``make browser``) through
tests/browser/journeys.py: the journey reports what the page showed and what the browser saw
(console errors, page errors, dialogs, CSP violations); these tests assert on that, and check each
outcome through the API with the user's own token (an oracle the page does not control).

This deployment marks MODEL_NOT_CALIBRATED high-risk (KYC_REVIEW_HIGH_RISK_REASONS), so every verdict
on these cases needs an approver (four-eyes). Screenshots of each journey's last page go to
build/browser/.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pycognito.aws_srp import N_HEX

from kyclocal.cognito import create_user, sign_in
from kyclocal.stack import LocalStack, LocalStackSettings
from kyclocal.workbench import WorkbenchServer, cors_env, serve_for_stack
from tests.fixtures.browser import SCREENSHOTS, browser_or_skip, run_journey
from tests.fixtures.workbench_cases import HOSTILE, HOSTILE_DEVICE, hostile_clip, scene_clip

USERS = {
    "alice": "reviewer",
    "dave": "reviewer",
    "bob": "approver",
    "carol": "approver",
    "erin": "auditor",
}


@dataclass
class Bench:
    stack: LocalStack
    workbench: WorkbenchServer
    api_url: str
    passwords: dict[str, str]
    cases: dict[str, str] = field(default_factory=dict)  # name -> review id (submission id)
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            cognito = self.stack.client("cognito-idp")
            self.tokens[user] = sign_in(cognito, self.stack.pool, user, self.passwords[user])["id_token"]
        return self.tokens[user]

    def api(self, user: str | None, method: str, path: str, body: Any = None, token: str | None = None):
        """One API call as ``user`` (or with a given token): (status, JSON body)."""
        headers = {"Accept": "application/json"}
        bearer = token or (self.token(user) if user else None)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.api_url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def journey(self, name: str, user: str | None = None, **params: Any) -> dict[str, Any]:
        spec = {
            "journey": name,
            "url": self.workbench.url,
            "api_url": self.api_url,
            "screenshot": str(SCREENSHOTS / f"{params.pop('shot', name)}.png"),
            **params,
        }
        if user:
            spec["user"] = {"name": user, "password": self.passwords[user]}
        return run_journey(spec)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    browser_or_skip()
    clips = tmp_path_factory.mktemp("workbench-clips")
    files = {
        "oldest": scene_clip(clips / "oldest.mp4", 1),
        "second": scene_clip(clips / "second.mp4", 2),
        "hostile": hostile_clip(clips),
    }
    workbench = WorkbenchServer()
    settings = LocalStackSettings(
        frame_count=8,
        api_port=0,
        extra_env={
            **cors_env(workbench),  # the page's origin, as WorkbenchOrigin is in AWS
            "KYC_REVIEW_HIGH_RISK_REASONS": "MODEL_NOT_CALIBRATED",  # four-eyes on every verdict here
        },
    )
    with workbench, LocalStack(settings) as stack:
        cognito = stack.client("cognito-idp")
        passwords = {name: create_user(cognito, stack.pool, name, group) for name, group in USERS.items()}
        serve_for_stack(workbench, stack)
        bench = Bench(stack, workbench, stack.api.url, passwords)
        for name, path in files.items():  # one after the other: "oldest" is the oldest decision
            for _attempt in range(2):
                sid = stack.upload(path)["submission_id"]
                decision = stack.wait_for_decision(sid, timeout_s=600)
                # a machine starved of CPU can time a task out (ERROR, PIPELINE_ERROR): the client's
                # retry, once; these journeys need REVIEW cases, the pipeline's own tests judge ERROR
                if decision is None or decision["decision"] != "ERROR":
                    break
            assert decision is not None and decision["decision"] == "REVIEW", (name, decision)
            bench.cases[name] = sid
            time.sleep(1.1)  # decided_at has second resolution somewhere: keep the order unambiguous
        yield bench


def _clean(outcome: dict[str, Any]) -> None:
    """Nothing went wrong in the browser: no console error, no uncaught exception, no dialog, no CSP block."""
    assert outcome["console_errors"] == [], outcome["console_errors"]
    assert outcome["page_errors"] == [], outcome["page_errors"]
    assert outcome["dialogs"] == []
    assert outcome["violations"] == [], outcome["violations"]


def _verdicts(bench: Bench, case: str, user: str = "erin") -> list[dict[str, Any]]:
    status, body = bench.api(user, "GET", f"/reviews/{bench.cases[case]}")
    assert status == 200, body
    return body["verdicts"]


def _me(bench: Bench, user: str) -> str:
    status, body = bench.api(user, "GET", "/me")
    assert status == 200, body
    return body["reviewer_id"]


def test_reviewer_claims_the_oldest_case_sees_the_evidence_and_records_attack_face_swap(bench: Bench) -> None:
    outcome = bench.journey("reviewer_verdict", "alice", reason="Blending seam along the jaw on frames 3-9.")
    _clean(outcome)
    result = outcome["result"]
    assert result["oldest"] == bench.cases["oldest"]  # the queue's first row is the oldest decision
    assert result["seen"]["sheet_width"] > 0  # the contact sheet loaded (an image, through the CSP)
    assert result["seen"]["face_rows"] > 0  # face-stage evidence per frame
    assert "REVIEW" in result["seen"]["facts"]
    # what the API recorded, read with another person's token
    (verdict,) = _verdicts(bench, "oldest")
    assert (verdict["verdict"], verdict["attack_type"]) == ("attack", "face_swap")
    assert verdict["reason"] == "Blending seam along the jaw on frames 3-9."
    assert verdict["reviewer_id"] == _me(bench, "alice")
    assert verdict["status"] == "awaiting_approval"
    shown = result["verdicts"][0]
    assert shown["id"] == verdict["verdict_id"] and "face swap" in shown["value"]
    assert "awaiting approval" in shown["status"]
    assert "approver" in result["notice"]  # the page says the verdict waits for four-eyes


def test_approver_confirms_the_verdict(bench: Bench) -> None:
    if not _verdicts(bench, "oldest"):
        pytest.skip("needs the reviewer journey's verdict")
    outcome = bench.journey("approver_confirms", "bob", review_id=bench.cases["oldest"])
    _clean(outcome)
    assert bench.cases["oldest"] in outcome["result"]["listed"]  # found under "awaiting approval"
    (verdict,) = _verdicts(bench, "oldest")
    assert verdict["status"] == "effective"
    assert verdict["approval"]["approver_id"] == _me(bench, "bob") != verdict["reviewer_id"]
    assert "effective" in outcome["result"]["verdicts"][0]["status"]


def test_nobody_confirms_their_own_verdict(bench: Bench) -> None:
    case = bench.cases["second"]
    assert bench.api("carol", "POST", f"/reviews/{case}/claim")[0] == 200
    status, verdict = bench.api(
        "carol",
        "POST",
        f"/reviews/{case}/verdicts",
        {"verdict": "genuine", "reason": "Live, natural motion."},
    )
    assert status == 201 and verdict["status"] == "awaiting_approval", verdict
    outcome = bench.journey("case_view", "carol", review_id=case, shot="own-verdict")
    _clean(outcome)
    assert outcome["result"]["controls"]["approve"] is False  # no confirm button on one's own verdict
    assert "Your own verdict" in outcome["result"]["verdicts"][0]["text"]
    status, body = bench.api("carol", "POST", f"/reviews/{case}/verdicts/{verdict['verdict_id']}/approve", {})
    assert (status, body["error"]["code"]) == (403, "SELF_APPROVAL")  # and the API refuses it anyway
    assert _verdicts(bench, "second")[0]["status"] == "awaiting_approval"


def test_a_second_reviewer_cannot_claim_a_leased_case(bench: Bench) -> None:
    case = bench.cases["hostile"]
    assert bench.api("alice", "POST", f"/reviews/{case}/claim")[0] == 200  # alice holds the lease
    outcome = bench.journey("case_view", "dave", review_id=case, click_claim=True, shot="leased-case")
    _clean_except_refused_call(outcome)
    result = outcome["result"]
    assert "LEASE_HELD" in result["notice"]
    assert result["after"]["verdict_form"] is False
    status, body = bench.api("dave", "POST", f"/reviews/{case}/claim")
    assert (status, body["error"]["code"]) == (409, "LEASE_HELD")


def _clean_except_refused_call(outcome: dict[str, Any]) -> None:
    """As _clean, but the browser logs a refused API call (4xx) as a console error: allow those only."""
    assert all("status of 4" in line for line in outcome["console_errors"]), outcome["console_errors"]
    assert outcome["page_errors"] == [] and outcome["dialogs"] == [] and outcome["violations"] == []


def test_an_auditor_reads_and_cannot_write(bench: Bench) -> None:
    case = bench.cases["oldest"]
    outcome = bench.journey("case_view", "erin", review_id=case, shot="auditor")
    _clean(outcome)
    controls = outcome["result"]["controls"]
    assert controls == {"claim": False, "verdict_form": False, "approve": False, "read_only_note": True}
    assert outcome["result"]["verdicts"]  # reads the verdicts
    for method, path, body in (
        ("POST", f"/reviews/{case}/claim", None),
        ("POST", f"/reviews/{case}/verdicts", {"verdict": "genuine", "reason": "auditor tries"}),
    ):
        status, answer = bench.api("erin", method, path, body)
        assert (status, answer["error"]["code"]) == (403, "FORBIDDEN"), (path, answer)


def _jwt(claims: dict[str, Any], key: Any) -> str:
    from joserfc import jwt

    return jwt.encode({"alg": "RS256", "kid": "dummy"}, claims, key)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _moto_signing_key() -> Any:
    """The key moto signs its Cognito tokens with (published in its package): signature valid, so
    only the expiry can make the token fail."""
    import moto.cognitoidp
    from joserfc.jwk import RSAKey

    path = Path(moto.cognitoidp.__file__).parent / "resources" / "jwks-private.json.gz"
    return RSAKey.import_key(json.loads(gzip.decompress(path.read_bytes())))


@pytest.mark.parametrize("kind", ["expired", "forged"])
def test_an_expired_or_forged_token_gets_401_and_the_page_says_so(bench: Bench, kind: str) -> None:
    from joserfc.jwk import RSAKey

    claims = _claims(bench.token("alice"))
    if kind == "expired":
        token = _jwt(
            claims | {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, _moto_signing_key()
        )
    else:  # same claims, fresh expiry, signed by a key that is not the pool's
        token = _jwt(claims | {"exp": int(time.time()) + 3600}, RSAKey.generate_key(2048))
    status, body = bench.api(None, "GET", "/reviews", token=token)
    assert (status, body["error"]["code"]) == (
        401,
        "UNAUTHORIZED",
    )  # the API refuses it, whatever the page does
    outcome = bench.journey("bad_token", "alice", token=token, shot=f"token-{kind}")
    assert outcome["page_errors"] == [] and outcome["dialogs"] == [] and outcome["violations"] == []
    assert "401" in outcome["result"]["notice"] and "expired" in outcome["result"]["notice"]
    assert outcome["result"]["signin_shown"] is True


def test_hostile_provenance_strings_are_shown_as_text_and_never_run(bench: Bench) -> None:
    outcome = bench.journey("hostile_strings", "erin", review_id=bench.cases["hostile"])
    _clean(outcome)
    result = outcome["result"]
    # the very strings the applicant wrote are on the page, character for character, as text: whole in
    # the claim generator and the action's software agent, cut to the tag reader's length in the device
    # make (the device model is not in the lineage record: data minimisation)
    assert result["provenance_text"].count(HOSTILE) >= 2
    assert result["provenance_text"].count(HOSTILE[:64]) >= 3
    assert ("<svg" not in result["provenance_text"]) or HOSTILE_DEVICE in result["provenance_text"]
    assert result["injected_elements"] == 0  # no element, handler or javascript: link came from the data
    assert result["canary"] is None  # nothing the strings carry ran
    assert all(href.startswith("#/") for href in result["links"])


def test_sign_in_proves_the_password_with_srp_and_never_sends_it(bench: Bench) -> None:
    """The form signs in with USER_SRP_AUTH and PASSWORD_VERIFIER only (the template's app client allows
    no other password flow); the password is in no request. moto does not check the SRP proof (the
    maths are proven against pycognito in test_workbench_srp.py); this journey proves the flow."""
    outcome = bench.journey("srp_sign_in", "dave", cognito_endpoint=bench.stack.pool.endpoint)
    _clean(outcome)
    requests = outcome["result"]["requests"]
    password = bench.passwords["dave"]
    assert [r["target"].rsplit(".", 1)[-1] for r in requests] == ["InitiateAuth", "RespondToAuthChallenge"]
    start, answer = (json.loads(r["body"]) for r in requests)
    assert start["AuthFlow"] == "USER_SRP_AUTH" and "PASSWORD" not in start["AuthParameters"]
    srp_a = int(start["AuthParameters"]["SRP_A"], 16)
    n = int(N_HEX, 16)
    assert 1 < srp_a < n  # a group element, not a hash or an encoding of the password
    assert answer["ChallengeName"] == "PASSWORD_VERIFIER"
    assert set(answer["ChallengeResponses"]) == {
        "USERNAME",
        "PASSWORD_CLAIM_SECRET_BLOCK",
        "PASSWORD_CLAIM_SIGNATURE",
        "TIMESTAMP",
    }
    assert all(password not in r["body"] for r in requests)
    assert "dave" in outcome["result"]["who"]
