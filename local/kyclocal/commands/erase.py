"""`kycscreen erase`: the erasure function against the local stack, the way `aws lambda invoke` runs it.

It runs on the saved local state (``--state-dir``, default $KYCSCREEN_STATE_DIR or .local-stack),
as `kycscreen run` left it, and saves the erasure back there, so a decision taken by an earlier
`kycscreen run` is erased (issue 23: it used to start an empty stack and answer PENDING).
``--screen FILE`` first screens files (under the client reference, when one is given) and then
erases; the output shows the function's answer and each decision record after erasure.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any, TextIO

from kyclocal.stack import LocalStack, LocalStackSettings
from kyclocal.state import state_directory

FUNCTION = "EraseSubmissionFunction"


def register(sub: argparse._SubParsersAction) -> None:
    erase = sub.add_parser(
        "erase", help="erase a submission (GDPR Art. 17), keeping the pseudonymised record"
    )
    target = erase.add_mutually_exclusive_group(required=True)
    target.add_argument("--submission", help="submission id")
    target.add_argument("--client-reference", help="every submission recorded under this reference")
    erase.add_argument("--force", action="store_true", help="erase even if another version is in flight")
    erase.add_argument("--reason", default=None, help="erasure reason recorded (default GDPR_ART17_REQUEST)")
    erase.add_argument("--request-reference", default=None, help="the DSR ticket id, recorded as given")
    erase.add_argument("--screen", type=Path, action="append", default=[], help="screen this file first")
    erase.add_argument("--frames", type=int, default=8)
    erase.add_argument(
        "--state-dir", type=Path, help="saved local state (default: $KYCSCREEN_STATE_DIR or .local-stack)"
    )
    erase.set_defaults(command=cmd_erase)


def cmd_erase(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    directory = state_directory(getattr(args, "state_dir", None))
    with LocalStack(LocalStackSettings(frame_count=args.frames, state_dir=directory)) as stack:
        sids = [_screen(stack, path, args.client_reference) for path in args.screen]
        event = erase_event(args, default_submission=sids[0] if sids else None)
        payload, errored = invoke_erase(stack, event)
        answer = json.loads(payload)
        records = {
            r["submission_id"]: stack.decision(r["submission_id"]) for r in answer.get("submissions", [])
        }
    print(json.dumps({"erase": answer, "records": records}, indent=2, default=str), file=out)
    if errored:
        return 1
    return 0 if set(answer.get("outcomes", {})) <= {"ERASED", "ALREADY_ERASED"} else 3


def erase_event(args: argparse.Namespace, default_submission: str | None = None) -> dict[str, Any]:
    """The function's input; ``--submission -`` means the first file screened with ``--screen``."""
    event: dict[str, Any] = {"force": args.force}
    if args.client_reference:
        event["client_reference"] = args.client_reference
    else:
        event["submission_id"] = default_submission if args.submission == "-" else args.submission
    if args.reason:
        event["reason"] = args.reason
    if args.request_reference:
        event["request_reference"] = args.request_reference
    return event


def invoke_erase(stack: LocalStack, event: dict[str, Any]) -> tuple[bytes, bool]:
    """Run the handler through the stack's router, with its logs written to CloudWatch Logs in moto."""
    return stack.router.invoke(FUNCTION, json.dumps(event))


def _screen(stack: LocalStack, path: Path, client_reference: str | None) -> str:
    # A generated key, as the upload API makes them: neither the reference nor the file's name goes into
    # a key (S3 access logs keep keys beyond erasure); the reference travels as object metadata.
    key = f"{stack.settings.upload_prefix}local/{uuid.uuid4().hex}{path.suffix.lower()}"
    metadata = {"client-reference": client_reference} if client_reference else None
    ident = stack.upload(path, key=key, metadata=metadata)
    if stack.wait_for_decision(ident["submission_id"], timeout_s=300) is None:
        raise SystemExit(f"no decision for {path}")
    return str(ident["submission_id"])
