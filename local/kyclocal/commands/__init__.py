"""One module per `kycscreen` subcommand; each exposes ``register(subparsers)``."""

from kyclocal.commands import drill, erase, evaluate, extract, invoke, lineage, reset, run

COMMANDS = (run, extract, invoke, evaluate, lineage, erase, drill, reset)
