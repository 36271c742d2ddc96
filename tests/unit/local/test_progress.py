"""Progress goes to a terminal only: a pipe or a file gets nothing from it."""

from __future__ import annotations

import io

from kyclocal.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_shows_decided_of_total() -> None:
    terminal = _Terminal()
    with Progress(4, terminal) as progress:
        progress.started()
        progress.update(3)

    shown = terminal.getvalue()
    assert "decided" in shown and "3/4" in shown


def test_progress_writes_nothing_when_not_a_terminal() -> None:
    pipe = io.StringIO()
    with Progress(4, pipe) as progress:
        progress.started()
        progress.update(4)

    assert pipe.getvalue() == ""
