"""kycserve: the SageMaker-compatible model server (container contract + runtime API locally)."""

from __future__ import annotations

from kycserve.faults import Fault, FaultInjector
from kycserve.models import Model, ModelLoadError, load_model
from kycserve.server import ModelServer, start_server, stop, stop_server

__all__ = [
    "Fault",
    "FaultInjector",
    "Model",
    "ModelLoadError",
    "ModelServer",
    "load_model",
    "start_server",
    "stop",
    "stop_server",
]
