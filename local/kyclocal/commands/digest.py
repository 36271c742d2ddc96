"""`kycscreen digest`: write the next signed evidence digest of the saved local stack, on demand.

In AWS the digest function runs on the template's schedule; locally this runs the same handler
(moto's KMS signs with the local key saved in the state directory). ``--public-key FILE`` also
writes the signing key's public key (PEM) for `kycscreen verify-digests --public-key`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kyclocal.stack import LocalStack, LocalStackSettings
from kyclocal.state import MARKER, state_directory

FUNCTION = "DigestEvidenceFunction"


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("digest", help="write the next signed evidence digest of the saved local state")
    cmd.add_argument(
        "--settle-seconds",
        type=int,
        default=0,
        help="cover decisions up to this many seconds ago (default 0: up to now; the template waits 900)",
    )
    cmd.add_argument("--public-key", type=Path, help="also write the signing key's public key (PEM) here")
    add_state_dir(cmd)
    cmd.set_defaults(command=cmd_digest)


def add_state_dir(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--state-dir", type=Path, help="saved local state (default: $KYCSCREEN_STATE_DIR or .local-stack)"
    )


def saved_state(explicit: Path | None) -> Path | None:
    """The saved state directory, or None (said on stderr) when nothing was saved there."""
    directory = state_directory(explicit)
    if not (directory / MARKER).is_file():
        print(
            f"no saved local state in {directory}: screen something with `kycscreen run` first",
            file=sys.stderr,
        )
        return None
    return directory


def cmd_digest(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    directory = saved_state(args.state_dir)
    if directory is None:
        return 2
    with LocalStack(LocalStackSettings(state_dir=directory, triggers=False)) as stack:
        result, errored = run_digest(stack, settle_seconds=args.settle_seconds)
        if args.public_key and not errored:
            write_public_key(stack, args.public_key)
    if not errored and result.get("genesis_sha256"):
        pin_genesis(directory, str(result["genesis_sha256"]))
    print(json.dumps(result, default=str), file=out)
    return 1 if errored else 0


GENESIS_FILE = "digest-genesis.sha256"


def pin_genesis(directory: Path, sha256: str) -> None:
    """Record digest 1's hash as the auditor would, once (never overwritten): a chain restarted
    later cannot re-pin itself. `kycscreen verify-digests` checks the chain against it."""
    path = directory / GENESIS_FILE
    if not path.exists():
        path.write_text(sha256 + "\n")


def run_digest(stack: LocalStack, settle_seconds: int = 0) -> tuple[dict[str, Any], bool]:
    """The digest function through the stack's router, as the schedule would invoke it."""
    payload, errored = stack.router.invoke(FUNCTION, json.dumps({"settle_seconds": settle_seconds}))
    return json.loads(payload), errored


def write_public_key(stack: LocalStack, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    der = stack.client("kms").get_public_key(KeyId=stack.outputs["DigestSigningKeyArn"])["PublicKey"]
    key = serialization.load_der_public_key(der)
    path.write_bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
