"""`kycscreen reset`: delete the saved local state (uploaded videos, frames, decisions, logs).

The state holds personal data; this is how it goes. Only a directory this tool wrote is deleted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from kyclocal.state import StateError, state_directory, wipe_state


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("reset", help="delete the saved local state (videos, frames, decisions, logs)")
    cmd.add_argument("--state-dir", type=Path, help="default: $KYCSCREEN_STATE_DIR or .local-stack")
    cmd.set_defaults(command=cmd_reset)


def cmd_reset(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    directory = state_directory(args.state_dir)
    try:
        removed = wipe_state(directory)
    except StateError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"deleted {directory}" if removed else f"nothing to delete at {directory}", file=out)
    return 0
