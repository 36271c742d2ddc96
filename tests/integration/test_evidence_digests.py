"""Write-once, pseudonymised audit evidence and its signed digests, through the local stack (issue 13).

Uploads whose object keys and client references name a person are screened; then every version of
every object in the audit bucket is read and searched for those identifiers and for image bytes.
The audit bucket's Object Lock (as the template declares it; the local stack applies what moto's
CloudFormation skips) refuses deleting a version. `kycscreen digest` signs the evidence and
`verify-digests` passes; a tampered digest, a removed digest, altered evidence and a foreign signature
each fail it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kyclocal.commands.digest import run_digest
from kyclocal.commands.verify_digests import EXIT_BROKEN, EXIT_INTACT, digest_report, exit_code
from kyclocal.stack import LocalStack
from tests.integration.conftest import screen

# What names the applicant: the raw object keys and the client references (docs/erasure.md).
APPLICANTS = [
    ("uploads/jane.doe@example.com/DE-ID-L01X00T47/selfie.mp4", "CRM-jane.doe-19880412", "h264.mp4"),
    ("uploads/Mária Kovács+ID 7741/vidéo.webm", "onboarding/maria.kovacs/7741", "vp9.webm"),
]
IMAGE_MARKERS = {
    "JPEG": b"\xff\xd8\xff",
    "PNG": b"\x89PNG\r\n\x1a\n",
    "JPEG (base64)": b"/9j/",
    "PNG (base64)": b"iVBORw0KGgo",
}


def personal_data_in(blob: bytes, identifiers: list[str]) -> list[str]:
    """What in ``blob`` names an applicant or is an image: each identifier as raw UTF-8, JSON-escaped
    and URL-quoted, plus image magic bytes (raw or base64)."""
    from urllib.parse import quote

    found = []
    for ident in identifiers:
        forms = {
            ident.encode(),
            json.dumps(ident)[1:-1].encode(),
            quote(ident).encode(),
            quote(ident, "").encode(),
        }
        if any(form in blob for form in forms):
            found.append(ident)
    found += [name for name, marker in IMAGE_MARKERS.items() if marker in blob]
    return found


def _identifiers() -> list[str]:
    return [v for key, ref, _ in APPLICANTS for v in (key, ref)]


@pytest.fixture(scope="module")
def screened(stack: LocalStack, clips: dict[str, Path]) -> list[dict[str, Any]]:
    items = []
    for key, reference, clip in APPLICANTS:
        ident = stack.upload(clips[clip], key=key, metadata={"client-reference": reference})
        item = stack.wait_for_decision(ident["submission_id"], timeout_s=180)
        assert item is not None, key
        items.append(item)
    return items


def _audit_versions(stack: LocalStack) -> Iterator[tuple[str, str, bytes]]:
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])[
                "Body"
            ].read()
            yield version["Key"], version["VersionId"], body


# ------------------------------------------------------------------ pseudonymised evidence only
def test_detector_finds_identifiers_and_images() -> None:
    # the scan below can fail: it sees each kind of leak it looks for
    assert personal_data_in(
        b'{"k": "uploads/jane.doe@example.com/DE-ID-L01X00T47/selfie.mp4"}', _identifiers()
    )
    assert personal_data_in(json.dumps({"r": APPLICANTS[1][1]}).encode(), _identifiers())
    assert personal_data_in(json.dumps({"k": APPLICANTS[1][0]}).encode(), _identifiers())  # \u escapes
    assert personal_data_in(b"prefix\x89PNG\r\n\x1a\nrest", []) == ["PNG"]
    assert personal_data_in(base64.b64encode(b"\xff\xd8\xff\xe0 a jpeg"), []) == ["JPEG (base64)"]


def test_audit_bucket_holds_no_raw_key_reference_or_image(stack: LocalStack, screened: list[dict]) -> None:
    versions = list(_audit_versions(stack))
    sids = {item["submission_id"] for item in screened}
    assert {key.split("/")[1] for key, _, _ in versions if key.startswith("decisions/")} >= sids
    leaks = {
        f"{key}@{version}": found
        for key, version, body in versions
        if (found := personal_data_in(key.encode() + b"\n" + body, _identifiers()))
    }
    assert leaks == {}
    # the applicants' identifiers did reach the stack (the decision records hold them until erasure)
    assert {item["client_reference"] for item in screened} == {ref for _, ref, _ in APPLICANTS}


def test_contact_sheets_go_to_the_review_bucket_not_the_audit_bucket(
    stack: LocalStack, screened: list[dict]
) -> None:
    s3 = stack.client("s3")
    reviews = [i for i in screened if i["decision"] == "REVIEW"]  # accepted clips: frames to draw
    assert reviews
    sheets = s3.list_objects_v2(Bucket=stack.resources.review_bucket).get("Contents", [])
    assert {o["Key"] for o in sheets} == {f"reviews/{i['submission_id']}/contact-sheet.png" for i in reviews}
    assert not [k for k, _, _ in _audit_versions(stack) if k.startswith("reviews/")]


# ------------------------------------------------------------------ Object Lock
def test_audit_object_versions_are_locked_for_the_decision_retention(
    stack: LocalStack, screened: list[dict]
) -> None:
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    key = screened[0]["artefacts"]["lineage_key"]
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"  # AuditObjectLockMode's default
    until = head["ObjectLockRetainUntilDate"]
    expected = datetime.now(UTC) + timedelta(days=int(stack.parameters["DecisionRetentionDays"]))
    assert abs(until - expected) < timedelta(days=1)
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])["Body"].read()


def test_overwriting_audit_evidence_keeps_the_locked_original(stack: LocalStack) -> None:
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    key = "probes/lock-probe/lineage.json"  # outside decisions/: the digest tests below verify it
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": stack.kms_key_id}
    first = s3.put_object(Bucket=bucket, Key=key, Body=b"original", **kms)["VersionId"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"forged", **kms)
    s3.delete_object(Bucket=bucket, Key=key)  # only a delete marker: the versions stay
    for version in (first,):
        with pytest.raises(ClientError):
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert s3.get_object(Bucket=bucket, Key=key, VersionId=first)["Body"].read() == b"original"


def test_compliance_mode_refuses_even_a_governance_bypass(stack: LocalStack) -> None:
    # what AuditObjectLockMode=COMPLIANCE gives every version (here set on one object)
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    until = datetime.now(UTC) + timedelta(days=30)
    version = s3.put_object(
        Bucket=bucket,
        Key="probes/compliance-probe/lineage.json",
        Body=b"kept",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=stack.kms_key_id,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
    )["VersionId"]
    with pytest.raises(ClientError):
        s3.delete_object(
            Bucket=bucket,
            Key="probes/compliance-probe/lineage.json",
            VersionId=version,
            BypassGovernanceRetention=True,
        )


# ------------------------------------------------------------------ signed digests
@pytest.fixture(scope="module")
def digests(stack: LocalStack, screened: list[dict], clips: dict[str, Path]) -> list[dict[str, Any]]:
    first, errored = run_digest(stack)
    assert not errored, first
    later = screen(stack, clips["hevc.mov"], key="uploads/later/selfie.mov")
    second, errored = run_digest(stack)
    assert not errored, second
    third, errored = run_digest(stack)  # nothing new: an empty digest still extends the chain
    assert not errored, third
    return [first, second, third, {"later": later}]


def _evidence_keys(stack: LocalStack) -> set[str]:
    """The decision and lineage documents in the audit bucket, listed independently of any record."""
    s3 = stack.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.resources.audit_bucket, Prefix="decisions/"
    )
    return {
        o["Key"]
        for page in pages
        for o in page.get("Contents", [])
        if o["Key"].endswith(("/scores.json", "/lineage.json")) and "-probe/" not in o["Key"]
    }


def test_digests_chain_and_verify(stack: LocalStack, digests: list[dict[str, Any]]) -> None:
    first, second, third, _ = digests
    assert [d["sequence"] for d in (first, second, third)] == [1, 2, 3]
    assert second["period"]["start"] == first["period"]["end"]
    assert third["entries"] == 0
    report = digest_report(stack, genesis=first["genesis_sha256"])
    assert report.problems == [] and report.verified and exit_code(report) == EXIT_INTACT
    # every item and every version of every evidence document, counted here from the stores themselves
    items = stack.client("dynamodb").scan(TableName=stack.resources.decisions_table)["Items"]
    assert report.entries == len(_evidence_keys(stack)) + len(items)
    raw = stack.client("s3").get_object(Bucket=stack.resources.audit_bucket, Key=first["digest_key"])
    assert first["genesis_sha256"] == hashlib.sha256(raw["Body"].read()).hexdigest()
    wrong = digest_report(stack, genesis="0" * 64)
    assert [p.split(":", 1)[0] for p in wrong.problems] == ["genesis"] and exit_code(wrong) == EXIT_BROKEN
    s3 = stack.client("s3")
    head = s3.head_object(Bucket=stack.resources.audit_bucket, Key=second["digest_key"])
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["SSEKMSKeyId"] == stack.kms_key_id


def test_verify_digests_offline_with_an_exported_public_key(
    stack: LocalStack, digests, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization

    from kyclocal.commands.digest import write_public_key

    pem = tmp_path / "digest-key.pem"
    write_public_key(stack, pem)
    assert digest_report(stack, pem.read_bytes()).verified
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    other = stranger.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    report = digest_report(stack, other)
    assert len([p for p in report.problems if p.startswith("signature: ")]) == 3


def _rewrite_digest(stack: LocalStack, key: str, change: Any, signer: Any = None) -> str:
    """Put a new version of digest ``key`` with its body changed (re-signed by ``signer`` if given)."""
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    change(document["digest"])
    if signer is not None:
        message = json.dumps(document["digest"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        document["signature"] = base64.b64encode(
            signer.sign(message.encode(), ec.ECDSA(hashes.SHA256()))
        ).decode()
    return s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document).encode(),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=stack.kms_key_id,
    )["VersionId"]


def _undo(stack: LocalStack, key: str, version: str) -> None:
    """Remove a tampering version (GOVERNANCE: only with the bypass, as an administrator could)."""
    stack.client("s3").delete_object(
        Bucket=stack.resources.audit_bucket, Key=key, VersionId=version, BypassGovernanceRetention=True
    )


def _reverse(body: dict) -> None:
    body["entries"].reverse()


def _drop_first(body: dict) -> None:
    del body["entries"][0]


def _alter_first(body: dict) -> None:
    body["entries"][0]["sha256"] = "0" * 64


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        # the chain is read at each digest's first version: a rewrite shows as a second version
        ("removed entry", _drop_first, {"overwritten"}),
        ("altered entry", _alter_first, {"overwritten"}),
        ("reordered entries", _reverse, {"overwritten"}),
    ],
)
def test_tampered_digest_fails(
    stack: LocalStack, digests, name: str, change: Any, expected: set[str]
) -> None:
    key = digests[0]["digest_key"]
    version = _rewrite_digest(stack, key, change)
    try:
        problems = digest_report(stack).problems
    finally:
        _undo(stack, key, version)
    kinds = {p.split(":", 1)[0] for p in problems}
    assert expected == kinds, (name, problems)
    assert any(key in p for p in problems)
    assert digest_report(stack).verified  # undone: intact again


def test_delete_marker_on_a_digest_is_a_finding_not_a_gap(stack: LocalStack, digests) -> None:
    s3, bucket, key = stack.client("s3"), stack.resources.audit_bucket, digests[1]["digest_key"]
    marker = s3.delete_object(Bucket=bucket, Key=key)["VersionId"]  # what a plain delete does under the lock
    try:
        report = digest_report(stack)
    finally:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=marker)
    assert report.problems == [f"deleted: {key} is hidden by a delete marker"]
    assert exit_code(report) == EXIT_BROKEN
    assert digest_report(stack).verified


def test_altered_evidence_fails(stack: LocalStack, screened: list[dict], digests) -> None:
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    key = screened[1]["artefacts"]["lineage_key"]
    forged = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    forged["decision"]["decision"] = "PASS"
    version = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(forged).encode(),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=stack.kms_key_id,
    )["VersionId"]
    try:
        problems = digest_report(stack).problems
    finally:
        _undo(stack, key, version)
    assert problems == [f"overwritten: {key} has 2 versions (written once by decide)"], problems
    assert digest_report(stack).verified


def test_wrong_signature_fails(stack: LocalStack, digests) -> None:
    key = digests[2]["digest_key"]
    impostor = ec.generate_private_key(ec.SECP256R1())
    version = _rewrite_digest(stack, key, lambda body: None, signer=impostor)
    try:
        problems = digest_report(stack).problems
    finally:
        _undo(stack, key, version)
    # the impostor's version is never read as the digest: the chain links the first version
    assert problems == [f"overwritten: {key} has 2 versions (digests are written once)"], problems


def test_record_missing_from_every_digest_is_reported(stack: LocalStack, digests) -> None:
    # a decision record that appears inside a covered period after its digest (a back-dated insert)
    ddb, table = stack.client("dynamodb"), stack.resources.decisions_table
    inside = digests[1]["period"]["start"]
    sid = "f" * 64
    ddb.put_item(
        TableName=table,
        Item={
            "submission_id": {"S": sid},
            "decision": {"S": "PASS"},
            "decided_at": {"S": inside},
            "artefacts": {
                "M": {
                    "lineage_key": {"S": f"decisions/{sid}/lineage.json"},
                    "lineage_sha256": {"S": "0" * 64},
                }
            },
        },
    )
    try:
        problems = digest_report(stack).problems
    finally:
        ddb.delete_item(TableName=table, Key={"submission_id": {"S": sid}})
    assert problems == [f"unlisted: decision item {sid} (decided {inside}) is in no digest"]


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("jq")), reason="needs openssl and jq")
def test_digest_verifies_with_jq_and_openssl_as_documented(
    stack: LocalStack, digests, tmp_path: Path
) -> None:
    """A second, independent tool: the docs/digests.md pipeline, not this project's code, checks it."""
    from kyclocal.commands.digest import write_public_key

    write_public_key(stack, tmp_path / "digest-key.pem")
    s3 = stack.client("s3")
    body = s3.get_object(Bucket=stack.resources.audit_bucket, Key=digests[1]["digest_key"])["Body"].read()
    (tmp_path / "d.json").write_bytes(body)
    script = (
        "jq -jcS .digest d.json > body.bin && jq -r .signature d.json | base64 -d > sig.der && "
        "openssl dgst -sha256 -verify digest-key.pem -signature sig.der body.bin"
    )
    ok = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stdout + ok.stderr
    # the same pipeline refuses a body with one listed hash changed
    document = json.loads(body)
    document["digest"]["entries"][0]["sha256"] = "0" * 64
    (tmp_path / "d.json").write_text(json.dumps(document))
    bad = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert bad.returncode != 0 and "Verification failure" in bad.stdout + bad.stderr


def test_audit_writes_carry_the_sha256_checksum_object_lock_requires(
    stack: LocalStack, screened, digests
) -> None:
    # S3 refuses a PutObject into an Object Lock bucket without Content-MD5 or an x-amz-checksum header;
    # every writer sends SHA-256, which S3 checks and keeps (compared here with hashlib's)
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    for key in (screened[0]["artefacts"]["lineage_key"], digests[0]["digest_key"]):
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode(), key


# ------------------------------------------------------------------ insider attacks (issue 23)
# moto does not evaluate IAM: each attack uses only calls the named role's policy allows (checked
# by tests/unit/iac), and the check that must report it is named in the assertion.
def test_attack_delete_markers_hide_nothing_and_the_chain_goes_on(
    stack: LocalStack, screened: list[dict], digests
) -> None:
    """Anyone with s3:DeleteObject (allowed even under COMPLIANCE) puts delete markers on every
    digest and on a decision's lineage.json: the next digest chains on (no fresh chain), and
    verify-digests reports every marker, exit 1."""
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    hidden = [d["Key"] for d in digest_listing(stack)] + [screened[0]["artefacts"]["lineage_key"]]
    markers = {key: s3.delete_object(Bucket=bucket, Key=key)["VersionId"] for key in hidden}
    assert not s3.list_objects_v2(Bucket=bucket, Prefix="digests/").get("Contents")  # hidden from latest
    try:
        after, errored = run_digest(stack)
        assert not errored, after
        assert after["sequence"] == digests[2]["sequence"] + 1 and after["delete_markers"] == len(hidden)
        report = digest_report(stack)
    finally:
        for key, marker in markers.items():
            s3.delete_object(Bucket=bucket, Key=key, VersionId=marker)
    deleted = sorted(p for p in report.problems if p.startswith("deleted: "))
    assert len(deleted) == len(hidden), report.problems
    assert all(any(key in p for p in deleted) for key in hidden)
    assert exit_code(report) == EXIT_BROKEN
    assert digest_report(stack).verified  # the markers removed: the chain (now one longer) is intact


def digest_listing(stack: LocalStack) -> list[dict[str, Any]]:
    s3 = stack.client("s3")
    return s3.list_objects_v2(Bucket=stack.resources.audit_bucket, Prefix="digests/").get("Contents", [])


def test_attack_pre_digest_rewrite_by_the_decide_role_is_reported(
    stack: LocalStack, clips: dict[str, Path], digests
) -> None:
    """The decide role (PutItem on the table, PutObject on decisions/*) turns a decision into PASS
    and writes a matching new scores.json *before* the hourly digest runs. The digest hashes what it
    reads, so it lists both versions; verify-digests reports the second version, exit 1."""
    item = screen(stack, clips["vp9.webm"], key="uploads/rewrite/selfie.webm")
    sid, s3, bucket = item["submission_id"], stack.client("s3"), stack.resources.audit_bucket
    key = item["artefacts"]["scores_key"]
    scores = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    forged = json.dumps(scores | {"decision": "PASS"}).encode()
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=forged,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=stack.kms_key_id,
        ChecksumAlgorithm="SHA256",
    )
    stack.client("dynamodb").update_item(
        TableName=stack.resources.decisions_table,
        Key={"submission_id": {"S": sid}},
        UpdateExpression="SET decision = :p, artefacts.scores_sha256 = :h",
        ExpressionAttributeValues={":p": {"S": "PASS"}, ":h": {"S": hashlib.sha256(forged).hexdigest()}},
    )
    result, errored = run_digest(stack)
    assert not errored, result
    report = digest_report(stack)
    assert f"overwritten: {key} has 2 versions (written once by decide)" in report.problems, report.problems
    assert exit_code(report) == EXIT_BROKEN


def test_attack_offline_guess_of_an_object_key_is_not_confirmed(
    stack: LocalStack, screened: list[dict]
) -> None:
    """Issue 23: whoever reads a decision record (or its execution input) holds bucket, version id and
    submission id. With the old unkeyed id, SHA-256 over bucket, key and version, a guessed key (an
    e-mail, a document number) was confirmed offline. Now no unkeyed hash of the stored fields and a
    candidate matches; only KMS GenerateMac under the pseudonym key does (a call CloudTrail records,
    allowed by the key policy to the stack's roles only: tests/unit/iac/test_pseudonym_key.py)."""
    import os

    candidates = [key for key, _, _ in APPLICANTS] + ["uploads/someone.else@example.com/selfie.mp4"]
    kms = stack.client("kms")
    for item in screened:
        source, sid = item["source"], item["submission_id"]
        offline = {
            hashlib.sha256("\x00".join((source["bucket"], guess, source["version_id"])).encode()).hexdigest()
            for guess in candidates
        }
        assert sid not in offline  # the pre-issue-23 scheme would have matched the true key here
        with_kms = [
            guess
            for guess in candidates
            if kms.generate_mac(
                KeyId=os.environ["KYC_PSEUDONYM_KEY_ARN"],
                MacAlgorithm="HMAC_SHA_256",
                Message=b"\x00".join(
                    (
                        b"kycscreen-submission/2",
                        source["bucket"].encode(),
                        guess.encode(),
                        source["version_id"].encode(),
                    )
                ),
            )["Mac"].hex()
            == sid
        ]
        assert len(with_kms) == 1 and with_kms[0] in {key for key, _, _ in APPLICANTS}
