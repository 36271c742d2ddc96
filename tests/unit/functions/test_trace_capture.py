"""Issue 23 item 5: no handler's result or error reaches X-Ray (outside the customer key).

Handler results carry client references, device names and C2PA signers; Powertools' tracer would
copy each response and exception into the trace's metadata. Every handler under functions/ must
switch both off. The second test shows, with Powertools itself, that the two switches are what
keeps the metadata out (and that the default would put it in), so the first one means what it says.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
HANDLERS = sorted((REPO / "functions").glob("*/app.py"))


def _tracer_decorator(path: Path) -> ast.Call | ast.Attribute | None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    handler = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler")
    for decorator in handler.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == "capture_lambda_handler":
            return decorator
    return None


def test_there_are_handlers_to_check() -> None:
    assert len(HANDLERS) >= 12, HANDLERS


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.parent.name)
def test_every_traced_handler_captures_neither_response_nor_error(path: Path) -> None:
    decorator = _tracer_decorator(path)
    if decorator is None:
        return  # not traced at all: nothing reaches X-Ray
    assert isinstance(decorator, ast.Call), f"{path}: bare @tracer.capture_lambda_handler captures both"
    flags = {k.arg: k.value.value for k in decorator.keywords if isinstance(k.value, ast.Constant)}
    assert flags == {"capture_response": False, "capture_error": False}, path


def test_the_switches_keep_response_and_error_out_of_the_trace_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from contextlib import contextmanager

    from kyc.observability import tracer

    written: list[tuple[str, Any]] = []

    class Subsegment:  # what X-Ray would receive: every put_metadata call
        def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
            written.append((key, value))

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    @contextmanager
    def in_subsegment(name: str | None = None, **kwargs: Any):
        yield Subsegment()

    monkeypatch.setattr(tracer.provider, "in_subsegment", in_subsegment)

    class Context:
        function_name = "f"

    def handler(event: dict, context: Any) -> dict:
        if event.get("fail"):
            raise ValueError("client CRM-jane.doe failed")
        return {"client_reference": "CRM-jane.doe"}

    quiet = tracer.capture_lambda_handler(capture_response=False, capture_error=False)(handler)
    quiet({}, Context())
    with pytest.raises(ValueError):
        quiet({"fail": True}, Context())
    assert written == []

    default = tracer.capture_lambda_handler(handler)
    default({}, Context())
    with pytest.raises(ValueError):
        default({"fail": True}, Context())
    assert "CRM-jane.doe" in repr(written)  # the oracle: without the switches it would be traced
