"""`kycscreen up`: the local stack as a service, for any AWS SDK or the AWS CLI, until SIGINT or SIGTERM.

A team wiring its onboarding system to the screening service points its own code at the printed
endpoint and uses it as it would use the deployed stack: put a video under the upload prefix with
SSE-KMS (and ``x-amz-meta-client-reference``), then read the decision from the table or receive the
``Screening Decision`` event.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from kyclocal.stack import LocalStack

DEFAULT_PORT = 4599
DEFAULT_API_PORT = 4600  # issue 20: the API
DEFAULT_WORKBENCH_PORT = 4601  # issue 20: the reviewer workbench (kyclocal.workbench), KYC_WORKBENCH_URL


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "up",
        help="serve the local stack to AWS SDKs and the AWS CLI until Ctrl-C or SIGTERM",
        description=__doc__,
        epilog=(
            "Once ready it prints KEY=value lines (the endpoint, region, bucket, prefix, key, table and "
            "queue a client needs), then `ready`. Stop it with Ctrl-C or SIGTERM: it saves the state "
            "(as `kycscreen run` does) and exits within seconds."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of the AWS endpoint (%(default)s)")
    cmd.add_argument("--model", default="reference", choices=("reference", "onnx"))
    cmd.add_argument("--onnx-config", type=Path)
    cmd.add_argument("--frames", type=int, default=32)
    cmd.add_argument("--policy", type=Path, metavar="FILE", help="decision policy document (SSM override)")
    cmd.add_argument("--concurrency", type=int, metavar="N", help="screenings run at once (default: CPUs)")
    cmd.add_argument("--state-dir", type=Path, help="default: $KYCSCREEN_STATE_DIR or .local-stack")
    cmd.add_argument("--no-state", action="store_true", help="start empty and keep nothing")
    cmd.add_argument(
        "--api-port",
        type=int,
        default=DEFAULT_API_PORT,
        help="port of the screening and review API (%(default)s)",
    )
    cmd.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:GROUP[:PASSWORD]",
        help="create a reviewer-pool user (group reviewer, approver or auditor); repeatable. Without a "
        "password one is generated; each user is printed as KYC_USER=NAME:GROUP:PASSWORD",
    )
    # issue 20 (workbench): web/ with the template's security headers and a config.json for this stack
    cmd.add_argument(
        "--workbench-port",
        type=int,
        default=DEFAULT_WORKBENCH_PORT,
        help="port of the reviewer workbench (%(default)s; 0: a free one)",
    )
    cmd.add_argument("--no-workbench", action="store_true", help="do not serve the reviewer workbench")
    # issue 20: the optional webhook (WebhookUrl); the secret's ARN is printed as KYC_WEBHOOK_SECRET_ARN
    cmd.add_argument(
        "--webhook-url",
        metavar="URL",
        help="POST every decision and review, signed, to this URL (https, or http to loopback)",
    )
    cmd.set_defaults(command=cmd_up)


def client_settings(stack: LocalStack) -> dict[str, str]:
    """What a client needs, under the names the AWS SDKs and CLI read (AWS_*) or ours (KYC_*)."""
    return (
        {
            "AWS_ENDPOINT_URL": stack.endpoint_url,
            "AWS_DEFAULT_REGION": stack.region,
            # the stack's dummy credentials (moto accepts any; nothing real exists there)
            "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
            "KYC_INTAKE_BUCKET": stack.resources.intake_bucket,
            "KYC_UPLOAD_PREFIX": stack.settings.upload_prefix,
            "KYC_KMS_KEY_ID": stack.kms_key_id,
            "KYC_DECISIONS_TABLE": stack.resources.decisions_table,
            "KYC_DECISION_EVENT_BUS": stack.resources.event_bus,
            "KYC_DECISION_EVENTS_QUEUE_URL": stack.decision_events_queue_url,
            "KYC_REVIEW_QUEUE_URL": stack.review_queue_url,
            "KYC_STACK_LOG": str(stack.log_path),
        }
        | api_settings(stack)
        | webhook_settings(stack)
    )


def webhook_settings(stack: LocalStack) -> dict[str, str]:
    """issue 20: where a receiver reads the signing secret (docs/review.md, "Webhook"), when one is set."""
    arn = stack.physical_ids.get("WebhookSigningSecret")
    return {"KYC_WEBHOOK_SECRET_ARN": arn} if arn else {}


def api_settings(stack: LocalStack) -> dict[str, str]:
    """issue 20: the API's stage root and what a sign-in page needs of the reviewer pool (openapi.yaml)."""
    if stack.api is None or stack.pool is None:
        return {}
    out = {
        "KYC_API_URL": stack.api.url,
        "KYC_COGNITO_REGION": stack.pool.region,
        "KYC_COGNITO_USER_POOL_ID": stack.pool.pool_id,
        "KYC_COGNITO_CLIENT_ID": stack.pool.client_id,
        "KYC_COGNITO_ENDPOINT": stack.pool.endpoint,
    }
    return out


def cmd_up(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from kyclocal.stack import LocalStack, LocalStackSettings, StackError
    from kyclocal.state import StateError, state_directory

    out = out or sys.stdout
    from kyclocal.policy_file import PolicyFileError, policy_option

    try:
        policy = policy_option(getattr(args, "policy", None), "up")
    except PolicyFileError:
        return 2
    webhook_url = getattr(args, "webhook_url", None)
    if webhook_url:
        from kyc.domain.webhook import WebhookError, check_url

        try:
            check_url(webhook_url)
        except WebhookError as exc:
            print(f"kycscreen up: --webhook-url: {exc}", file=sys.stderr)
            return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    settings = LocalStackSettings(
        webhook_url=webhook_url or None,
        model=args.model,
        onnx_config=args.onnx_config,
        frame_count=args.frames,
        max_running_executions=args.concurrency,
        state_dir=None if args.no_state else state_directory(args.state_dir),
        port=args.port,
        policy=policy,
        api_port=getattr(args, "api_port", DEFAULT_API_PORT),
    )
    from kyclocal.workbench import WorkbenchServer, cors_env, serve_for_stack

    workbench = None
    if not getattr(args, "no_workbench", False):
        try:  # bound before the stack starts: the API answers CORS for its origin
            workbench = WorkbenchServer(port=getattr(args, "workbench_port", DEFAULT_WORKBENCH_PORT))
        except OSError as exc:
            print(f"kycscreen up: the workbench port: {exc}", file=sys.stderr)
            return 1
        settings.extra_env.update(cors_env(workbench))
    from kyclocal.cognito import CognitoError, parse_user

    try:
        users = [parse_user(spec) for spec in getattr(args, "user", None) or []]
    except CognitoError as exc:
        print(f"kycscreen up: {exc}", file=sys.stderr)
        return 2
    try:
        with LocalStack(settings) as stack:
            for key, value in client_settings(stack).items():
                print(f"{key}={value}", file=out)
            if workbench is not None and stack.api is not None:
                print(f"KYC_WORKBENCH_URL={serve_for_stack(workbench, stack).url}", file=out)
            for name, group, password in users:
                made = create_user(stack, name, group, password)
                print(f"KYC_USER={name}:{group}:{made}", file=out)
            print("ready", file=out, flush=True)
            while not stop.wait(0.5):
                pass
            print("stopping: saving the state" if settings.state_dir else "stopping", file=sys.stderr)
    except (StackError, StateError, CognitoError) as exc:
        print(f"kycscreen up: {exc}", file=sys.stderr)
        return 1
    finally:
        if workbench is not None:
            workbench.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def create_user(stack: LocalStack, name: str, group: str, password: str | None) -> str:
    """A user of the local reviewer pool (``kycscreen up --user``); returns the password."""
    from kyclocal.cognito import CognitoError
    from kyclocal.cognito import create_user as create

    if stack.pool is None:
        raise CognitoError("the template has no reviewer pool (EnableScreeningApi)")
    return create(stack.client("cognito-idp"), stack.pool, name, group, password)
