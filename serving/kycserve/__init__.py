"""kycserve: the SageMaker-compatible model server (container contract + runtime API locally).

The names below are loaded on first use: importing one light submodule (``kycserve.faults``, as
the drills' command line does) does not pay for numpy and OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Fault": "kycserve.faults",
    "FaultInjector": "kycserve.faults",
    "Model": "kycserve.models",
    "ModelLoadError": "kycserve.models",
    "load_model": "kycserve.models",
    "ModelServer": "kycserve.server",
    "start_server": "kycserve.server",
    "stop": "kycserve.server",
    "stop_server": "kycserve.server",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kycserve' has no attribute {name!r}")
