"""One module per `kycscreen` subcommand; each exposes ``register(subparsers)``."""

from kyclocal.commands import drill, erase, evaluate, extract, invoke, lineage, reset, run, up

COMMANDS = (run, up, extract, invoke, evaluate, lineage, erase, drill, reset)
