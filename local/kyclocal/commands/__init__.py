"""One module per `kycscreen` subcommand; each exposes ``register(subparsers)``."""

from kyclocal.commands import drill, erase, extract, invoke, lineage, reset, run

COMMANDS = (run, extract, invoke, lineage, erase, drill, reset)
