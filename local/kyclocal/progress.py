"""Progress of a run on stderr, for a person at a terminal: files decided of total, elapsed, estimate.

Nothing is written when stderr is not a terminal (a pipe, a log file, CI), so machine-read output
stays exactly what the command prints on stdout.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


class Progress:
    """A tqdm bar (elapsed and remaining time included) while the files are being decided."""

    def __init__(self, total: int, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total, desc="starting the local stack", unit="file", file=self.stream, leave=True
            )
        return self

    def started(self) -> None:
        if self._bar is not None:
            self._bar.set_description("decided")
            self._bar.reset(total=self.total)

    def update(self, decided: int) -> None:
        if self._bar is not None and decided != self._bar.n:
            self._bar.update(decided - self._bar.n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
