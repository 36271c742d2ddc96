"""``kycscreen``: screen files through the local pipeline, see what the model sees, invoke a function.

Every subcommand runs the same code as the deployed stack: the handlers, the state machine
definition, the sampling module. Nothing here needs an AWS account or Docker.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from kyclocal.commands import COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kycscreen", description=__doc__)
    sub = parser.add_subparsers(required=True)
    for command in COMMANDS:
        command.register(sub)
    args = parser.parse_args(argv)
    return int(args.command(args))


if __name__ == "__main__":
    raise SystemExit(main())
