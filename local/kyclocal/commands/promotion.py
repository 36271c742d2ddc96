"""`kycscreen register | approve | rescreen | promote | rollback | reject`: the learning loop's steps.

They run against a running local stack (`kycscreen up --policy champion-policy.json`, whose policy
parameter is the production pointer), through its AWS endpoint only, as an operator's scripts would
against AWS: the Model Registry, the endpoints and the pointer are SageMaker's and SSM's, the shadow
deployment and the re-screen are the stack's functions (docs/learning-loop.md).

  kycscreen register build/retrain          # the gated candidate -> a package PendingManualApproval;
                                            # the run's end -> EventBridge -> the learning index's catch-up
  kycscreen approve  ARN --by alice --note "report read"   # a person; EventBridge -> shadow endpoint
  kycscreen rescreen ARN                    # the backlog scored by the candidate: a report, no change
  kycscreen promote  ARN                    # one write of the production pointer, or a refusal
  kycscreen rollback                        # the pointer's previous value, from SSM's history
  kycscreen reject   ARN --by bob --note "worse on replays"    # a person; EventBridge -> endpoint deleted
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kyclocal.stack import DEFAULT_PORT

COMMAND_NAMES = ("register", "approve", "rescreen", "promote", "rollback", "reject")


def register(sub: argparse._SubParsersAction) -> None:
    helps = {
        "register": "register a gated retrain candidate in the Model Registry (PendingManualApproval)",
        "approve": "approve a package as a person; its shadow deployment follows (EventBridge)",
        "rescreen": "score the retained backlog with a shadowed candidate; a report, no decision changes",
        "promote": "switch traffic and policy to an approved, shadowed, re-screened package in one step",
        "rollback": "one step back: the production pointer's previous value (SSM history)",
        "reject": "reject a package as a person; its endpoint is deleted unless production serves it",
    }
    for name in COMMAND_NAMES:
        cmd = sub.add_parser(name, help=helps[name])
        if name == "register":
            cmd.add_argument("out", type=Path, help="the --out folder of `kycscreen retrain`")
        elif name != "rollback":
            cmd.add_argument("package", help="model package ARN")
        if name in ("approve", "reject"):
            cmd.add_argument("--by", required=True, help=f"who {name}s (recorded on the package)")
            cmd.add_argument("--note", required=True, help="why (recorded on the package)")
        cmd.add_argument(
            "--endpoint-url",
            default=f"http://127.0.0.1:{DEFAULT_PORT}",
            help="the running `kycscreen up` (default %(default)s)",
        )
        cmd.set_defaults(command=cmd_promotion, step=name)


def cmd_promotion(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from kyc.aws.model_registry import RegistryError
    from kyc.aws.production_pointer import PointerError
    from kyclocal import loop

    out = out or sys.stdout
    try:
        stack = loop.RemoteStack(args.endpoint_url)
        result = _run(loop, stack, args)
    except (loop.LoopError, RegistryError, PointerError) as exc:
        print(f"kycscreen {args.step}: refused: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(
            f"kycscreen {args.step}: is `kycscreen up` running at {args.endpoint_url}? {exc}", file=sys.stderr
        )
        return 2
    print(json.dumps(result, indent=2, default=str), file=out)
    refused = isinstance(result, dict) and result.get("status") == "REFUSED"  # a rejection's kept endpoint
    return 0 if result is not None and not refused else 1


def _run_ended(stack: Any) -> None:
    """The retrain run's outcome is in the stack: its end, as SageMaker announces it, goes through the
    template's rules (RetrainCatchUpRule: the learning index's catch-up, issue 21 autoindex)."""
    from kyclocal.events import pipeline_run_ended

    for delivery in pipeline_run_ended(stack, "Succeeded"):
        outcome = "failed" if delivery.errored else delivery.payload.decode()[:200]
        print(
            f"kycscreen register: run ended -> {delivery.rule} -> {delivery.function}: {outcome}",
            file=sys.stderr,
        )


def _run(loop: Any, stack: Any, args: argparse.Namespace) -> Any:
    if args.step == "register":
        package = loop.register_candidate(stack, args.out)
        _run_ended(stack)
        if package is None:
            print(
                f"kycscreen register: {args.out} holds no package (the gate registered nothing)",
                file=sys.stderr,
            )
            return None
        return package.to_dict()
    if args.step == "approve":
        return loop.approve(stack, args.package, approver=args.by, note=args.note)
    if args.step == "reject":
        result = loop.reject(stack, args.package, approver=args.by, note=args.note)
        if result.get("status") == "REFUSED":  # the package is Rejected; its endpoint stays (the reason)
            print(f"kycscreen reject: the endpoint stays: {result.get('reason')}", file=sys.stderr)
        return result
    if args.step == "rescreen":
        return loop.rescreen(stack, args.package)
    version = loop.promote(stack, args.package) if args.step == "promote" else loop.rollback(stack)
    return {
        "pointer_version": version.version,
        "deployment": version.document.get("deployment"),
        # the drift alarm's yardstick now in force (None: the DriftBaseline* parameters apply)
        "drift_baseline": version.document.get("drift_baseline"),
    }
