"""`kycscreen invoke`: the Docker-free counterpart of `sam local invoke`, against the local stack."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kyclocal.stack import LocalStack, LocalStackSettings


def register(sub: argparse._SubParsersAction) -> None:
    invoke = sub.add_parser("invoke", help="invoke one function with an event, against the local stack")
    invoke.add_argument("function", help="logical id (ValidateUploadFunction) or folder name (validate)")
    invoke.add_argument("event", type=Path)
    invoke.add_argument(
        "--upload", type=Path, help="put this file in the intake bucket at the event's key first"
    )
    invoke.set_defaults(command=cmd_invoke)


def cmd_invoke(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from kyclocal.stack import FUNCTIONS

    out = out or sys.stdout
    by_folder = {folder: name for name, folder in FUNCTIONS.items()}
    name = by_folder.get(args.function, args.function)
    if name not in FUNCTIONS:
        print(f"unknown function {args.function}; one of: {', '.join(FUNCTIONS)}", file=sys.stderr)
        return 2
    event = json.loads(args.event.read_text(encoding="utf-8"))
    with LocalStack(LocalStackSettings(triggers=False)) as stack:
        if args.upload:
            event = _place_upload(stack, event, args.upload)
        payload, errored = stack.router.invoke(name, json.dumps(event))
    print(json.dumps(json.loads(payload), indent=2), file=out)
    return 1 if errored else 0


def _place_upload(stack: LocalStack, event: dict[str, Any], path: Path) -> dict[str, Any]:
    """Put ``path`` where the event says the upload is, in the local intake bucket."""
    submission = event.get("submission") or (event.get("state") or {}).get("submission")
    if submission is not None:
        ident = stack.upload(path, key=submission["key"])
        submission |= {k: ident[k] for k in ("bucket", "version_id", "etag", "submission_id")}
        submission["size"] = path.stat().st_size
        if isinstance(event.get("validation"), dict):  # an extract event: point it at these bytes
            import hashlib

            event["validation"] |= {
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "size": submission["size"],
            }
        return event
    if event.get("Records") and "body" in event["Records"][0]:  # an SQS batch of S3 events
        for record in event["Records"]:
            record["body"] = json.dumps(_place_upload(stack, json.loads(record["body"]), path))
        return event
    if "detail" in event:  # an S3 Object Created event
        ident = stack.upload(path, key=event["detail"]["object"]["key"])
        event["detail"]["bucket"]["name"] = ident["bucket"]
        event["detail"]["object"] |= {
            "version-id": ident["version_id"],
            "etag": ident["etag"],
            "size": path.stat().st_size,
        }
        return event
    raise SystemExit("--upload needs an event with a submission or an S3 Object Created detail")
