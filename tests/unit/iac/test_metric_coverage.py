"""Issue 23 item 7: every metric the code emits is alarmed, on the dashboard, or removed.

The emitted names are found in the source itself (an ``ast`` walk of functions/ and layers/: calls of
``kyc.observability.count``, Powertools ``add_metric`` / ``single_metric``, boto3 ``put_metric_data``)
and in the template's metric filters; each must be named by an alarm (``MetricName`` or a metric-math
``MetricStat``) or by the dashboard's body. A name the walk cannot read (built at run time) fails too:
it could be anything, so it is covered by nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.iac.test_template import _resources

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("functions", "layers")
NAMED_BY = {"count": 0, "single_metric": None, "add_metric": None}  # callee -> positional index of the name


class DynamicMetricName(ValueError):
    """A metric whose name is not a literal in the source."""


def emitted_in(source: str, where: str = "<source>") -> set[str]:
    """Metric names emitted by one module's source (literals, or each branch of a conditional)."""
    tree = ast.parse(source)
    imports_count = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "kyc.observability"
        and any(alias.name == "count" for alias in node.names)
        for node in ast.walk(tree)
    ) or where.endswith("kyc/observability.py")
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if callee == "count" and isinstance(node.func, ast.Name) and imports_count:
            names |= _literal(_argument(node, "name", 0), where, node)
        elif callee in ("single_metric", "add_metric"):
            names |= _literal(_argument(node, "name", None), where, node)
        elif callee == "put_metric_data":
            for data in _argument(node, "MetricData", None).elts:  # type: ignore[union-attr]
                for key, value in zip(data.keys, data.values, strict=True):  # type: ignore[attr-defined]
                    if isinstance(key, ast.Constant) and key.value == "MetricName":
                        names |= _literal(value, where, node)
    return names


def _argument(call: ast.Call, keyword: str, position: int | None) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if position is not None and len(call.args) > position:
        return call.args[position]
    return None


def _literal(node: ast.expr | None, where: str, call: ast.Call) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _literal(node.body, where, call) | _literal(node.orelse, where, call)
    if isinstance(node, ast.Name) and where.endswith("kyc/observability.py"):
        return set()  # count()'s own forwarding of its parameter to single_metric
    raise DynamicMetricName(f"{where}:{call.lineno}: a metric name that is not a literal")


def emitted_by_the_code() -> dict[str, str]:
    """Every emitted metric name -> the first file that emits it."""
    found: dict[str, str] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "/tests/" in str(path) or ".aws-sam" in path.parts:
                continue
            for name in emitted_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))):
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def metric_filter_names(template: dict[str, Any]) -> set[str]:
    return {
        t["MetricName"]
        for res in _resources(template, "AWS::Logs::MetricFilter").values()
        for t in res["Properties"]["MetricTransformations"]
    }


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def alarmed(template: dict[str, Any]) -> set[str]:
    names = set()
    for alarm in _resources(template, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if isinstance(props.get("MetricName"), str):
            names.add(props["MetricName"])
        for query in props.get("Metrics", []):
            metric = (query.get("MetricStat") or {}).get("Metric") or {}
            if isinstance(metric.get("MetricName"), str):
                names.add(metric["MetricName"])
    return names


def on_dashboard(template: dict[str, Any]) -> str:
    """The dashboard bodies as one text (every literal and Fn::Sub string they are joined from)."""
    return "\n".join(
        text
        for res in _resources(template, "AWS::CloudWatch::Dashboard").values()
        for text in _strings(res["Properties"]["DashboardBody"])
    )


def _shown(name: str, dashboard: str) -> bool:
    """Named in a widget's metrics: ``"Name"`` in a metric array or ``MetricName=\\"Name\\"`` in a
    SEARCH expression (the dashboard JSON escapes its quotes)."""
    return f'"{name}"' in dashboard or f'MetricName=\\"{name}\\"' in dashboard


# --------------------------------------------------------------------------- the scanner itself
def test_the_scanner_reads_every_way_the_code_emits_a_metric() -> None:
    source = """
from kyc.observability import count
count("Plain")
count("Valued", value=3)
count(name="Keyword")
count("A" if ok else "B", outcome="x")
with single_metric(name="Single", unit="Count", value=1) as m:
    pass
metrics.add_metric(name="Added", unit="Count", value=1)
cloudwatch.put_metric_data(Namespace="N", MetricData=[{"MetricName": "Put", "Value": 1}])
outcomes.count("PASS")  # a list's count: not a metric
"""
    assert emitted_in(source) == {"Plain", "Valued", "Keyword", "A", "B", "Single", "Added", "Put"}
    with pytest.raises(DynamicMetricName):
        emitted_in("from kyc.observability import count\ncount(f'Stage{n}')\n")


def test_the_dashboard_reader_sees_a_metric_and_not_its_prefix(template) -> None:
    text = on_dashboard(template)
    assert _shown("DigestsWritten", text) and not _shown("Digests", text)
    assert _shown("UploadsRefused", text)  # only in a SEARCH expression
    assert not _shown("Uploads", text)


# --------------------------------------------------------------------------- the rule
def test_every_emitted_metric_is_alarmed_or_on_the_dashboard(template) -> None:
    emitted = emitted_by_the_code() | {
        n: "template.yaml (metric filter)" for n in metric_filter_names(template)
    }
    covered_by_alarm, dashboard = alarmed(template), on_dashboard(template)
    orphans = {
        name: where
        for name, where in sorted(emitted.items())
        if name not in covered_by_alarm and not _shown(name, dashboard)
    }
    assert orphans == {}, f"emitted, but neither alarmed nor on the dashboard: {orphans}"
