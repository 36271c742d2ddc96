"""`kycscreen verify-digests`: check the signed evidence digests offline, as an auditor would.

Every digest's ECDSA signature is checked locally with the signing key's public key (a PEM or DER
file, or fetched once with GetPublicKey), the chain is walked (sequence, previous digest's hash,
periods that meet), every listed document is read back and its SHA-256 recomputed, and every
decision record of a covered period must be listed. Any gap, break, reordering, removed, added or
altered entry is reported; exit 0 intact, 1 a problem, 2 nothing to verify. docs/digests.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kyc.aws.dynamodb_review_store import DynamoDBReviewStore
from kyc.aws.evidence_digests import DecisionTimeIndex
from kyc.domain.digest import DIGEST_PREFIX, DigestReport, StoredDigest, verify_digests
from kyclocal.commands.digest import add_state_dir, saved_state
from kyclocal.stack import LocalStack, LocalStackSettings

EXIT_INTACT, EXIT_BROKEN, EXIT_UNKNOWN = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("verify-digests", help="verify the signed evidence digests of the saved local state")
    cmd.add_argument(
        "--public-key",
        type=Path,
        help="the signing key's public key, PEM or DER (default: GetPublicKey once)",
    )
    cmd.add_argument("--json", action="store_true", help="the report as one JSON object")
    add_state_dir(cmd)
    cmd.set_defaults(command=cmd_verify_digests)


def cmd_verify_digests(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    directory = saved_state(args.state_dir)
    if directory is None:
        return EXIT_UNKNOWN
    public_key = args.public_key.read_bytes() if args.public_key else None
    with LocalStack(LocalStackSettings(state_dir=directory, triggers=False)) as stack:
        report = digest_report(stack, public_key)
    if report.digests == 0:
        print("no digests: run `kycscreen digest` first", file=sys.stderr)
        return EXIT_UNKNOWN
    if args.json:
        print(json.dumps(report.to_dict()), file=out)
    else:
        print_report(report, out)
    return EXIT_INTACT if report.verified else EXIT_BROKEN


def digest_report(stack: LocalStack, public_key: bytes | None = None) -> DigestReport:
    """Read the digests and the evidence from the stack; verify with ``public_key`` or GetPublicKey."""
    if public_key is None:
        public_key = stack.client("kms").get_public_key(KeyId=stack.outputs["DigestSigningKeyArn"])[
            "PublicKey"
        ]
    s3, bucket = stack.client("s3"), stack.resources.audit_bucket
    index = DecisionTimeIndex(stack.resources.decisions_table, stack.client("dynamodb"))
    reviews_table = stack.physical_ids.get("ReviewsTable")  # issue 20: the review API's records
    reviews = (
        DynamoDBReviewStore(reviews_table, retention_s=0, dynamodb_client=stack.client("dynamodb"))
        if reviews_table
        else None
    )
    return verify_digests(
        read_digests(s3, bucket),
        signature_verifier(public_key),
        lambda key: _get(s3, bucket, key),
        recorded=index.decided_in,  # every record of the covered periods must be listed
        reviewed=reviews.recorded_in if reviews else None,  # and every verdict and approval document
    )


def read_digests(s3: Any, bucket: str) -> list[StoredDigest]:
    """Every digest key's current bytes, with how many versions it has (more than one: overwritten)."""
    versions: dict[str, int] = {}
    deleted: set[str] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=DIGEST_PREFIX):
        for version in page.get("Versions", []):
            versions[version["Key"]] = versions.get(version["Key"], 0) + 1
        for marker in page.get("DeleteMarkers", []):
            if marker.get("IsLatest"):
                deleted.add(marker["Key"])
    return [
        StoredDigest(key=key, data=data, versions=count)
        for key, count in sorted(versions.items())
        if key not in deleted and (data := _get(s3, bucket, key)) is not None
    ]


def signature_verifier(public_key: bytes) -> Any:
    """(message, DER signature) -> valid, with ECDSA P-256 / SHA-256, computed here (no KMS call)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if public_key.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(public_key)
    else:
        key = serialization.load_der_public_key(public_key)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("the digest signing key is ECC_NIST_P256 (secp256r1)")

    def verify(message: bytes, signature: bytes) -> bool:
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    return verify


def print_report(report: DigestReport, out: TextIO) -> None:
    print(f"digests     {report.digests}", file=out)
    print(f"documents   {report.entries}", file=out)
    print(f"covers      {report.first_period_start or 'the beginning'} .. {report.last_period_end}", file=out)
    if report.verified:
        print("\nverification OK: every signature, link and listed document checks out", file=out)
        return
    print("\nverification FAILED:", file=out)
    for problem in report.problems:
        print(f"  - {problem}", file=out)


def _get(s3: Any, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchVersion", "404", "NoSuchBucket"):
            return None
        raise
