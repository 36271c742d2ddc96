"""One module per `kycscreen` subcommand; each exposes ``register(subparsers)``."""

from kyclocal.commands import (
    digest,
    drill,
    erase,
    evaluate,
    extract,
    invoke,
    lineage,
    promotion,
    reset,
    retrain,
    run,
    up,
    verify_digests,
)

COMMANDS = (
    run,
    up,
    extract,
    invoke,
    evaluate,
    lineage,
    erase,
    digest,
    verify_digests,
    drill,
    retrain,
    promotion,
    reset,
)
