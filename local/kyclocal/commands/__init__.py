"""One module per `kycscreen` subcommand; each exposes ``register(subparsers)``."""

from kyclocal.commands import erase, extract, invoke, lineage, reset, run

COMMANDS = (run, extract, invoke, lineage, erase, reset)
