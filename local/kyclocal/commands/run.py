"""`kycscreen run`: screen files through the full local pipeline, one decision per file."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from kyclocal.stack import LocalStack

STATE_HELP = """\
state: the local stack is in memory while a command runs. Unless --no-state is given, `run` saves
what an audit needs afterwards (uploaded videos, frames, decisions, function logs) to the state
directory when it ends and restores it when the next command starts, so `kycscreen lineage` and
`kycscreen erase` work on earlier decisions. The directory is --state-dir, else $KYCSCREEN_STATE_DIR,
else ./.local-stack (files 0600: it holds personal data); the emulator's own log is beside it
(.local-stack.log). `kycscreen reset` deletes the state; --no-state neither reads nor writes it.
A run stopped with Ctrl-C saves what it has, prints the rows decided so far and one line naming
each upload still without a decision, and exits 130; a killed run saves nothing of itself. Either way the
next run works as usual: an upload saved without its decision gets one (ERROR, EXECUTION_FAILED)
when the stack starts. `kycscreen up` serves the same stack to other programs (stop it with Ctrl-C)."""

POLL_MIN_S, POLL_MAX_S = 0.3, 1.2  # how often a run looks for new decisions: at once after a change

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


INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command stopped with Ctrl-C
MAX_NAMED_PENDING = 10  # the interruption line names this many pending uploads, then counts the rest


class RunInterrupted(Exception):
    """Ctrl-C while files were being screened: what was decided, and what was uploaded but not."""

    def __init__(self, decided: list[dict[str, Any]], pending: list[tuple[Path, str]]) -> None:
        super().__init__(f"{len(pending)} upload(s) without a decision")
        self.decided = decided
        self.pending = pending  # (file, submission id) of each upload still waiting or being screened


def interruption_line(stop: RunInterrupted, *, state_kept: bool) -> str:
    """One line for the terminal: which uploads have no decision and what becomes of them."""
    total = len(stop.decided) + len(stop.pending)
    named = ", ".join(f"{path.name} ({sid})" for path, sid in stop.pending[:MAX_NAMED_PENDING])
    more = len(stop.pending) - MAX_NAMED_PENDING
    if more > 0:
        named += f" and {more} more"
    line = f"interrupted: {len(stop.decided)} of {total} file(s) decided"
    if not stop.pending:
        return line + "."
    line += f"; without a decision: {named}."
    if state_kept:
        return line + (
            " Their uploads are saved: each keeps the decision it reached while the stack stopped, or"
            " the next `kycscreen run` or `up` on this state records it ERROR EXECUTION_FAILED; run the"
            " files again to screen them."
        )
    return line + " Nothing is kept (--no-state): run the files again to screen them."


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="screen files through the full local pipeline",
        description="Screen files through the full local pipeline: one decision per file.",
        epilog=STATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("files", nargs="+", type=Path)
    run.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    run.add_argument("--model", default="reference", choices=("reference", "onnx"))
    run.add_argument("--onnx-config", type=Path)
    run.add_argument("--frames", type=int, default=32)
    run.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds a file may take from the start of its screening (waiting for admission not counted)",
    )
    run.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="screenings run at once (default: one per CPU); more only slows every file down",
    )
    run.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="decision policy document (kycscreen evaluate --write-policy), served as the SSM override",
    )
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
    from kyclocal.progress import Progress
    from kyclocal.stack import LocalStack, LocalStackSettings
    from kyclocal.state import state_directory

    out = out or sys.stdout
    from kyclocal.policy_file import PolicyFileError, policy_option

    try:
        policy = policy_option(getattr(args, "policy", None), "run")
    except PolicyFileError:
        return 2
    unreadable = unreadable_files(args.files)
    if unreadable:  # refused before the stack starts: nothing is uploaded, nothing is half-done
        for path, why in unreadable:
            print(f"kycscreen run: {path}: {why}", file=sys.stderr)
        print("nothing was screened: correct or leave out the files above.", file=sys.stderr, flush=True)
        return 2
    state_dir = (
        None if getattr(args, "no_state", False) else state_directory(getattr(args, "state_dir", None))
    )
    settings = LocalStackSettings(
        model=args.model,
        onnx_config=args.onnx_config,
        frame_count=args.frames,
        state_dir=state_dir,
        max_running_executions=getattr(args, "concurrency", None),
        policy=policy,
    )
    sheets: Path | None = getattr(args, "contact_sheet", None)

    emitted: set[int] = set()

    def emit(row: dict[str, Any]) -> None:
        emitted.add(id(row))
        if args.json:
            print(json.dumps(row), file=out, flush=True)

    try:
        with Progress(len(args.files)) as progress, LocalStack(settings) as stack:
            progress.started()
            rows = screen_files(
                stack,
                args.files,
                timeout=args.timeout,
                contact_sheet_dir=sheets,
                on_row=emit,
                on_decided=progress.update,
            )
    except RunInterrupted as stop:  # the stack has stopped (and saved its state) on the way out
        if args.json:  # rows decided out of input order were held back: they are final too
            for row in stop.decided:
                if id(row) not in emitted:
                    emit(row)
        elif stop.decided:
            _print_table(stop.decided, out, model_note=args.model == "reference")
        print(interruption_line(stop, state_kept=state_dir is not None), file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    except KeyboardInterrupt:  # before any upload, or a second Ctrl-C while the stack was stopping
        print(
            "interrupted while the local stack was starting or stopping: no row to report.",
            file=sys.stderr,
            flush=True,
        )
        return INTERRUPTED_EXIT
    if not args.json:
        _print_table(rows, out, model_note=args.model == "reference")
    return 0


def unreadable_files(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """The paths ``run`` cannot screen, each with why: a mistyped path is the caller's error, told
    in a second, not an ERROR decision after the whole local stack has started. (A file that goes
    away after this check still becomes an ERROR ``SOURCE_MISSING`` row.)"""
    problems = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                handle.read(1)
        except IsADirectoryError:
            problems.append((path, "a directory, not a file"))
        except OSError as exc:
            problems.append((path, exc.strerror or str(exc)))
    return problems


def screen_files(
    stack: LocalStack,
    paths: Sequence[Path],
    *,
    timeout: float = 300.0,
    contact_sheet_dir: Path | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_decided: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Upload every file, then collect each decision; one row per file, in order (RUN_FIELDS).

    Uploads go in first, as a burst would in AWS; the stack admits them at its own pace. A file's
    deadline (``timeout``) counts from the start of its screening, so a file waiting its turn is not
    failed for the queue ahead of it; while nothing at all progresses for ``timeout`` seconds, the
    files still waiting are reported ERROR. An unreadable file becomes an ERROR row and the others go on.
    ``on_row`` gets the rows in input order as soon as they are final; ``on_decided`` the count so far.
    """
    uploads: list[tuple[Path, dict[str, Any] | None, str | None, float]] = []
    rows: list[dict[str, Any] | None] = []
    try:
        return _screen(stack, paths, uploads, rows, timeout, contact_sheet_dir, on_row, on_decided)
    except KeyboardInterrupt:
        pending = [
            (path, ident["submission_id"])
            for index, (path, ident, _, _) in enumerate(uploads)
            if ident is not None and (index >= len(rows) or rows[index] is None)
        ]
        raise RunInterrupted([row for row in rows if row is not None], pending) from None


def _screen(
    stack: LocalStack,
    paths: Sequence[Path],
    uploads: list[tuple[Path, dict[str, Any] | None, str | None, float]],
    rows: list[dict[str, Any] | None],
    timeout: float,
    contact_sheet_dir: Path | None,
    on_row: Callable[[dict[str, Any]], None] | None,
    on_decided: Callable[[int], None] | None,
) -> list[dict[str, Any]]:
    """screen_files' work; ``uploads`` and ``rows`` are the caller's, so an interruption can tell
    what was uploaded and what was decided."""
    prefix = stack.settings.upload_prefix
    for index, path in enumerate(paths):
        started = time.monotonic()
        try:
            ident = stack.upload(path, key=f"{prefix}{index:04d}/{path.name}")
            uploads.append((path, ident, None, started))
        except OSError as exc:  # unreadable file: reported, and the others go on
            uploads.append((path, None, f"cannot read file: {exc.strerror or exc}", started))
    rows.extend([None] * len(uploads))
    for index, (path, ident, problem, started) in enumerate(uploads):
        if ident is None:
            rows[index] = _row(path, None, started, error=problem, reason="SOURCE_MISSING")
    emitted = 0
    last_progress = time.monotonic()
    seen: dict[str, str] = {}
    delay = POLL_MIN_S
    while True:
        pending = [i for i, row in enumerate(rows) if row is None]
        executions = _executions(stack)
        now_wall, now = time.time(), time.monotonic()
        for index in pending:
            path, ident, _, started = uploads[index]
            assert ident is not None
            sid = ident["submission_id"]
            status, start_date = executions.get(sid, ("NONE", None))
            if seen.get(sid) != status:
                seen[sid], last_progress = status, now
            if status not in ("NONE", "RUNNING"):
                item = stack.decision(sid)
                if item is not None:
                    rows[index] = _row(path, ident, started, item=item)
                    continue
            if status == "RUNNING" and start_date is not None and now_wall - start_date > timeout:
                rows[index] = _row(
                    path, ident, started, error=f"no decision within {timeout:g} s of its screening starting"
                )
            elif status == "NONE" and now - last_progress > timeout:
                rows[index] = _row(
                    path, ident, started, error=f"not admitted: the stack made no progress for {timeout:g} s"
                )
        while emitted < len(rows) and rows[emitted] is not None:
            row = rows[emitted]
            assert row is not None
            if contact_sheet_dir is not None and row["decision"] == "REVIEW":
                row["contact_sheet"] = str(
                    write_contact_sheet(stack, row["submission_id"], contact_sheet_dir)
                )
            if on_row is not None:
                on_row(row)
            emitted += 1
        if on_decided is not None:
            on_decided(sum(1 for row in rows if row is not None))
        if emitted == len(rows):
            return [row for row in rows if row is not None]
        # back off while nothing changes: each poll lists every execution in moto (~12 ms of CPU at
        # 50), CPU the screenings need on a small machine (issue 25)
        delay = POLL_MIN_S if last_progress == now else min(POLL_MAX_S, delay * 2)
        time.sleep(delay)


def _executions(stack: LocalStack) -> dict[str, tuple[str, float]]:
    """Every execution of the screening state machine: name (the submission id) -> (status, start)."""
    sfn = stack.client("stepfunctions")
    found: dict[str, tuple[str, float]] = {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=stack.state_machine_arn):
        for execution in page["executions"]:
            found[execution["name"]] = (execution["status"], execution["startDate"].timestamp())
    return found


def write_contact_sheet(stack: LocalStack, sid: str, directory: Path) -> Path:
    """The sheet NotifyReview stores, drawn from the same work-bucket frames and audit-bucket scores."""
    from kyc.aws.errors import SourceMissingError
    from kyc.aws.s3_object_store import S3ObjectStore
    from kyc.domain.lineage import lineage_key
    from kyc.domain.provenance import sheet_lines
    from kyc.media.contact_sheet import contact_frames, render_contact_sheet

    store = S3ObjectStore(s3_client=stack.client("s3"))
    work, audit = stack.resources.work_bucket, stack.resources.audit_bucket
    manifest = store.get_json(work, f"frames/{sid}/manifest.json")
    try:
        scores = store.get_json(audit, f"decisions/{sid}/scores.json")
    except SourceMissingError:
        scores = None
    try:  # the provenance line, as NotifyReview draws it (docs/provenance.md)
        provenance = (store.get_json(audit, lineage_key(sid)).get("decision") or {}).get("provenance")
    except SourceMissingError:
        provenance = None
    frames = contact_frames(manifest, scores, lambda key: store.get_bytes(work, key))
    sheet = render_contact_sheet(frames, header=sheet_lines(provenance))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{sid}.png"
    path.write_bytes(sheet)
    return path


def _row(
    path: Path,
    ident: dict[str, Any] | None,
    started: float,
    *,
    item: dict[str, Any] | None = None,
    error: str | None = None,
    reason: str = "PIPELINE_ERROR",
) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(RUN_FIELDS)
    row |= {"file": str(path), "reasons": [], "frames_scored": 0}
    if ident is not None:
        row["submission_id"] = ident["submission_id"]
    if item is None:
        row |= {"decision": "ERROR", "reasons": [reason], "error": error}
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
