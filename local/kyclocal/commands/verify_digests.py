"""`kycscreen verify-digests`: check the signed evidence digests offline, as an auditor would.

Every digest's ECDSA signature is checked locally with the signing key's public key (a PEM or DER
file, or fetched once with GetPublicKey), the chain is walked (sequence, previous digest's hash,
periods that meet, a genesis pinned by the auditor), every version of every audit object and every
decision item is read back from the stores (versions, not the latest: a delete marker or a second
version is a finding) and compared with its listing, and everything before the last period's end
must be listed. Exit 0 intact, 1 a problem (also: no digest where evidence exists), 2 nothing at
all to verify. docs/digests.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kyc.aws.evidence_digests import AuditVersions, DecisionItems
from kyc.domain.digest import DigestReport, Evidence, StoredDigest, verify_digests
from kyclocal.commands.digest import GENESIS_FILE, add_state_dir, saved_state
from kyclocal.stack import LocalStack, LocalStackSettings

EXIT_INTACT, EXIT_BROKEN, EXIT_UNKNOWN = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("verify-digests", help="verify the signed evidence digests of the saved local state")
    cmd.add_argument(
        "--public-key",
        type=Path,
        help="the signing key's public key, PEM or DER (default: GetPublicKey once)",
    )
    cmd.add_argument(
        "--genesis",
        help="SHA-256 of digest 1 as the auditor recorded it (default: the state directory's "
        f"{GENESIS_FILE}, written by the first `kycscreen digest`)",
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
    genesis = args.genesis or pinned_genesis(directory)
    with LocalStack(LocalStackSettings(state_dir=directory, triggers=False)) as stack:
        report = digest_report(stack, public_key, genesis=genesis)
    if exit_code(report) == EXIT_UNKNOWN:
        print("no digests and no evidence: nothing to verify", file=sys.stderr)
        return EXIT_UNKNOWN
    if args.json:
        print(json.dumps(report.to_dict()), file=out)
    else:
        print_report(report, out)
    return exit_code(report)


def exit_code(report: DigestReport) -> int:
    """0 intact; 1 any finding, or no digest where evidence exists; 2 nothing at all to verify."""
    if report.digests == 0 and not report.expected:
        return EXIT_UNKNOWN
    return EXIT_INTACT if report.verified else EXIT_BROKEN


def pinned_genesis(directory: Path) -> str | None:
    """The genesis the auditor recorded locally (outside the stack: the state directory's file)."""
    path = directory / GENESIS_FILE
    return path.read_text().strip() or None if path.is_file() else None


def digest_report(
    stack: LocalStack, public_key: bytes | None = None, *, genesis: str | None = None
) -> DigestReport:
    """Read the digests and the evidence from the stack; verify with ``public_key`` or GetPublicKey."""
    if public_key is None:
        public_key = stack.client("kms").get_public_key(KeyId=stack.outputs["DigestSigningKeyArn"])[
            "PublicKey"
        ]
    audit = AuditVersions(stack.resources.audit_bucket, stack.client("s3"))
    items = DecisionItems(stack.resources.decisions_table, stack.client("dynamodb"))
    return verify_digests(
        read_digests(audit),
        signature_verifier(public_key),
        Evidence(versions=audit.list(), fetch=audit.read, items=items.all()),
        now=datetime.now(UTC),
        genesis_sha256=genesis,
    )


def read_digests(audit: AuditVersions) -> list[StoredDigest]:
    """Every digest at its first version, with its version count and delete markers (both findings)."""
    return audit.stored_digests()


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
