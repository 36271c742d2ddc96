"""`kycscreen run`: screen files through the full local pipeline, one decision per file."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from kyclocal.stack import LocalStack, LocalStackSettings
from kyclocal.state import state_directory

RUN_FIELDS = (
    "file",
    "submission_id",
    "decision",
    "reasons",
    "score",
    "frames_scored",
    "input_sha256",
    "model",
    "policy_version",
    "elapsed_s",
)


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="screen files through the full local pipeline")
    run.add_argument("files", nargs="+", type=Path)
    run.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    run.add_argument("--model", default="reference", choices=("reference", "onnx"))
    run.add_argument("--onnx-config", type=Path)
    run.add_argument("--frames", type=int, default=32)
    run.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each decision")
    run.add_argument(
        "--contact-sheet",
        type=Path,
        metavar="DIR",
        help="write <submission id>.png, the reviewers' contact sheet, here for each REVIEW decision",
    )
    run.add_argument(
        "--state-dir",
        type=Path,
        help="where the local stack keeps data between commands (.local-stack or KYCSCREEN_STATE_DIR)",
    )
    run.add_argument(
        "--no-state", action="store_true", help="keep nothing after the run (no lineage or erase later)"
    )
    run.set_defaults(command=cmd_run)


def cmd_run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    state_dir = (
        None if getattr(args, "no_state", False) else state_directory(getattr(args, "state_dir", None))
    )
    settings = LocalStackSettings(
        model=args.model, onnx_config=args.onnx_config, frame_count=args.frames, state_dir=state_dir
    )
    sheets: Path | None = getattr(args, "contact_sheet", None)

    def emit(row: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps(row), file=out, flush=True)

    with LocalStack(settings) as stack:
        rows = screen_files(stack, args.files, timeout=args.timeout, contact_sheet_dir=sheets, on_row=emit)
    if not args.json:
        _print_table(rows, out, model_note=args.model == "reference")
    return 0


def screen_files(
    stack: LocalStack,
    paths: Sequence[Path],
    *,
    timeout: float = 300.0,
    contact_sheet_dir: Path | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Upload every file, then wait for each decision; one row per file, in order (RUN_FIELDS).

    Uploads go in first so the stack screens them concurrently, as a burst would in AWS. An
    unreadable file becomes an ERROR row and the others go on.
    """
    prefix = stack.settings.upload_prefix
    submitted: list[tuple[Path, dict[str, Any] | None, str | None, float]] = []
    for index, path in enumerate(paths):
        started = time.monotonic()
        try:
            ident = stack.upload(path, key=f"{prefix}{index:04d}/{path.name}")
            submitted.append((path, ident, None, started))
        except OSError as exc:  # unreadable file: reported, and the others go on
            submitted.append((path, None, f"cannot read file: {exc.strerror or exc}", started))
    rows: list[dict[str, Any]] = []
    for path, ident, problem, started in submitted:
        row = _row(stack, path, ident, problem, started, timeout)
        if contact_sheet_dir is not None and row["decision"] == "REVIEW":
            row["contact_sheet"] = str(write_contact_sheet(stack, row["submission_id"], contact_sheet_dir))
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def write_contact_sheet(stack: LocalStack, sid: str, directory: Path) -> Path:
    """The sheet NotifyReview stores, drawn from the same work-bucket frames and audit-bucket scores."""
    from kyc.aws.errors import SourceMissingError
    from kyc.aws.s3_object_store import S3ObjectStore
    from kyc.media.contact_sheet import contact_frames, render_contact_sheet

    store = S3ObjectStore(s3_client=stack.client("s3"))
    work, audit = stack.resources.work_bucket, stack.resources.audit_bucket
    manifest = store.get_json(work, f"frames/{sid}/manifest.json")
    try:
        scores = store.get_json(audit, f"decisions/{sid}/scores.json")
    except SourceMissingError:
        scores = None
    sheet = render_contact_sheet(contact_frames(manifest, scores, lambda key: store.get_bytes(work, key)))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{sid}.png"
    path.write_bytes(sheet)
    return path


def _row(
    stack: LocalStack,
    path: Path,
    ident: dict[str, Any] | None,
    problem: str | None,
    started: float,
    timeout: float,
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(RUN_FIELDS)
    row |= {"file": str(path), "reasons": [], "frames_scored": 0}
    if ident is None:
        row |= {"decision": "ERROR", "reasons": ["SOURCE_MISSING"], "error": problem}
    else:
        row["submission_id"] = ident["submission_id"]
        item = stack.wait_for_decision(
            ident["submission_id"], timeout_s=max(1.0, timeout - (time.monotonic() - started))
        )
        if item is None:
            row |= {
                "decision": "ERROR",
                "reasons": ["PIPELINE_ERROR"],
                "error": "no decision before the deadline",
            }
        else:
            row |= {
                "decision": item["decision"],
                "reasons": item.get("reasons", []),
                "score": item.get("score"),
                "frames_scored": item.get("frames_scored", 0),
                "input_sha256": (item.get("source") or {}).get("sha256"),
                "model": (item.get("model") or {}).get("name"),
                "policy_version": (item.get("policy") or {}).get("version"),
            }
    row["elapsed_s"] = round(time.monotonic() - started, 3)
    return row


def _print_table(rows: list[dict[str, Any]], out: TextIO, *, model_note: bool) -> None:
    headers = ("file", "decision", "reasons", "score", "frames", "seconds")
    lines = [
        (
            Path(r["file"]).name,
            r["decision"],
            ",".join(r["reasons"]) or "-",
            "-" if r["score"] is None else f"{r['score']:.3f}",
            str(r["frames_scored"]),
            f"{r['elapsed_s']:.1f}",
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)), file=out)
    if model_note:
        print(
            "\nmodel: reference-spectrum - a training-free reference scorer for local runs, "
            "NOT A PRODUCTION DEEPFAKE DETECTOR.",
            file=out,
        )
