"""When would a CloudWatch alarm of template.yaml fire on these data points? A small, honest evaluator.

The alarm definitions are read from the template (one source of truth: metric names, dimensions,
metric-math expression, period, threshold, evaluation periods, volume guard), with the parameter
defaults or given overrides. Data points come from what the handlers emitted (EMF records in the
function logs) or what AWS would publish (Step Functions execution counts).

Evaluation model, written down so a reader can check the figures: CloudWatch evaluates an alarm
every minute over the ``EvaluationPeriods`` most recent periods, each ``Period`` long, ending at the
evaluation minute; the alarm fires when at least ``DatapointsToAlarm`` of them breach. Missing data
follows ``TreatMissingData`` (``breaching`` counts, anything else does not). CloudWatch's ingestion
delay (typically under a minute) is not included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
OPERATORS = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class Datapoint:
    """One value as CloudWatch stores it: metric identity, exact dimension set, time (epoch s)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp: float
    value: float


@dataclass(frozen=True)
class MetricStat:
    id: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    stats: tuple[MetricStat, ...]
    expressions: tuple[tuple[str, str], ...]  # (id, expression), in template order
    returned: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str

    @property
    def namespaces(self) -> set[str]:
        return {s.namespace for s in self.stats}


# --------------------------------------------------------------------------------------- template
def load_alarms(
    template_path: Path,
    overrides: Mapping[str, str] | None = None,
    resources: Mapping[str, str] | None = None,
) -> dict[str, AlarmSpec]:
    """Every ``AWS::CloudWatch::Alarm`` of the template, resolved with parameter defaults + overrides.

    ``resources`` maps logical ids (e.g. ``ScreeningStateMachine``) to the names or ARNs the metrics
    carry where the stack runs; unmapped references stay symbolic and simply match no data.
    """
    from cfnlint.decode import decode  # the template's own parser (handles the short-form tags)

    tpl, matches = decode(str(template_path))
    if matches:
        raise ValueError(f"template does not parse: {matches}")
    params = {k: str(v.get("Default", "")) for k, v in tpl["Parameters"].items()} | dict(overrides or {})
    refs = dict(resources or {})
    return {
        lid: _alarm(lid, _resolve(res["Properties"], params, refs))
        for lid, res in tpl["Resources"].items()
        if res["Type"] == "AWS::CloudWatch::Alarm"
    }


def _resolve(value: Any, params: Mapping[str, str], refs: Mapping[str, str]) -> Any:
    if isinstance(value, list):
        return [_resolve(v, params, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return params.get(arg, refs.get(arg, f"<{arg}>"))
        if fn == "Fn::GetAtt":
            name = ".".join(arg) if isinstance(arg, list) else arg
            return refs.get(name, f"<{name}>")
        if fn == "Fn::Sub" and isinstance(arg, str):
            return _substitute(arg, {}, params, refs)
        if fn == "Fn::Sub" and isinstance(arg, list):  # [text, {name: value}]: local names first
            text, local = arg
            return _substitute(text, _resolve(local, params, refs), params, refs)
        if fn == "Fn::Select":
            index, items = _resolve(arg, params, refs)
            return items[int(index)]
        if fn == "Fn::Split":
            delimiter, text = _resolve(arg, params, refs)
            return str(text).split(delimiter)
    return {k: _resolve(v, params, refs) for k, v in value.items()}


def _substitute(
    text: str, local: Mapping[str, Any], params: Mapping[str, str], refs: Mapping[str, str]
) -> str:
    def value(match: re.Match[str]) -> str:
        name = match[1]
        return str(local.get(name, params.get(name, refs.get(name, f"<{name}>"))))

    return re.sub(r"\$\{([^}]+)\}", value, text)


def _dims(items: Sequence[Mapping[str, str]] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d["Name"], str(d["Value"])) for d in items or ()))


def _alarm(name: str, props: Mapping[str, Any]) -> AlarmSpec:
    n = int(props["EvaluationPeriods"])
    common = {
        "name": name,
        "evaluation_periods": n,
        "datapoints_to_alarm": int(props.get("DatapointsToAlarm", n)),
        "threshold": float(props["Threshold"]),
        "comparison": props["ComparisonOperator"],
        "treat_missing": props.get("TreatMissingData", "missing"),
    }
    if "Metrics" not in props:
        stat = MetricStat(
            "m",
            props["Namespace"],
            props["MetricName"],
            _dims(props.get("Dimensions")),
            props.get("Statistic") or props["ExtendedStatistic"],
            int(props["Period"]),
        )
        return AlarmSpec(stats=(stat,), expressions=(), returned="m", period=stat.period, **common)
    stats, expressions, returned = [], [], ""
    for query in props["Metrics"]:
        if query.get("ReturnData", True):
            returned = query["Id"]
        if "Expression" in query:
            expressions.append((query["Id"], query["Expression"]))
            continue
        ms = query["MetricStat"]
        metric = ms["Metric"]
        stats.append(
            MetricStat(
                query["Id"],
                metric["Namespace"],
                metric["MetricName"],
                _dims(metric.get("Dimensions")),
                ms["Stat"],
                int(ms["Period"]),
            )
        )
    return AlarmSpec(
        stats=tuple(stats),
        expressions=tuple(expressions),
        returned=returned,
        period=max(s.period for s in stats),
        **common,
    )


def parameter_default(template_path: Path, name: str) -> str:
    """A parameter's default as the template declares it (drills size themselves to the alarms)."""
    from cfnlint.decode import decode

    tpl, _ = decode(str(template_path))
    return str(tpl["Parameters"][name]["Default"])


# --------------------------------------------------------------------------------------- metric math
class UnknownIdError(ValueError):
    """An expression names an id that has no value (yet): expressions may refer to later ones."""


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|&&|\|\||[-+*/(),<>]))")
_BINARY = [("OR", "||"), ("AND", "&&"), ("==", "!=", ">=", "<=", ">", "<"), ("+", "-"), ("*", "/")]


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"cannot read metric math at {text[pos:]!r}")
        out.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return out


def evaluate_expression(text: str, values: Mapping[str, float | None]) -> float | None:
    """The metric-math subset the template uses, on one period's values (None = no data).

    Arithmetic with a missing value is missing, as is a division by zero; ``FILL(x, v)`` fills;
    ``IF(c, a, b)`` and the comparisons and ``AND``/``OR`` work on 1/0 as CloudWatch's do.
    """
    tokens = _tokens(text)
    value, rest = _parse(tokens, 0, values)
    if rest != len(tokens):
        raise ValueError(f"unexpected {tokens[rest]!r} in {text!r}")
    return value


def _parse(
    tokens: list[str], pos: int, values: Mapping[str, float | None], level: int = 0
) -> tuple[Any, int]:
    if level == len(_BINARY):
        return _atom(tokens, pos, values)
    left, pos = _parse(tokens, pos, values, level + 1)
    while pos < len(tokens) and tokens[pos] in _BINARY[level]:
        op = tokens[pos]
        right, pos = _parse(tokens, pos + 1, values, level + 1)
        left = _apply(op, left, right)
    return left, pos


def _atom(lexemes: list[str], pos: int, values: Mapping[str, float | None]) -> tuple[Any, int]:
    lexeme = lexemes[pos]
    if lexeme == "(":
        value, pos = _parse(lexemes, pos + 1, values)
        return value, _expect(lexemes, pos, ")")
    if lexeme == "-":
        value, pos = _atom(lexemes, pos + 1, values)
        return (None if value is None else -value), pos
    if re.fullmatch(r"\d+(?:\.\d+)?", lexeme):
        return float(lexeme), pos + 1
    if pos + 1 < len(lexemes) and lexemes[pos + 1] == "(":
        args, pos = [], pos + 2
        while True:
            arg, pos = _parse(lexemes, pos, values)
            args.append(arg)
            if lexemes[pos] == ")":
                return _call(lexeme.upper(), args), pos + 1
            pos = _expect(lexemes, pos, ",")
    if lexeme not in values:
        raise UnknownIdError(lexeme)
    return values[lexeme], pos + 1


def _expect(tokens: list[str], pos: int, lexeme: str) -> int:
    if pos >= len(tokens) or tokens[pos] != lexeme:
        raise ValueError(f"expected {lexeme!r}")
    return pos + 1


def _call(fn: str, args: list[Any]) -> float | None:
    if fn == "FILL" and len(args) == 2:
        return args[1] if args[0] is None else args[0]
    if fn == "ABS" and len(args) == 1:
        return None if args[0] is None else abs(args[0])
    if fn == "IF" and len(args) == 3:
        if args[0] is None:
            return None
        return args[1] if args[0] != 0 else args[2]
    raise ValueError(f"unsupported metric math function {fn}({len(args)} arguments)")


def _apply(op: str, a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if op == "/":
        return None if b == 0 else a / b
    results = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "==": lambda: float(a == b),
        "!=": lambda: float(a != b),
        ">=": lambda: float(a >= b),
        "<=": lambda: float(a <= b),
        ">": lambda: float(a > b),
        "<": lambda: float(a < b),
        "AND": lambda: float(bool(a) and bool(b)),
        "&&": lambda: float(bool(a) and bool(b)),
        "OR": lambda: float(bool(a) or bool(b)),
        "||": lambda: float(bool(a) or bool(b)),
    }
    return results[op]()


# --------------------------------------------------------------------------------------- evaluation
def _statistic(stat: str, values: list[float]) -> float | None:
    if not values:
        return None
    if stat == "Sum":
        return sum(values)
    if stat == "Maximum":
        return max(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "SampleCount":
        return float(len(values))
    if stat.startswith("p"):  # nearest-rank percentile
        ranked = sorted(values)
        return ranked[max(0, math.ceil(float(stat[1:]) / 100 * len(ranked)) - 1)]
    raise ValueError(f"unsupported statistic {stat}")


def period_value(alarm: AlarmSpec, points: Sequence[Datapoint], start: float, end: float) -> float | None:
    """The alarm's returned value for one period [start, end)."""
    values: dict[str, float | None] = {}
    for stat in alarm.stats:
        matching = [
            p.value
            for p in points
            if p.namespace == stat.namespace
            and p.name == stat.name
            and p.dimensions == stat.dimensions
            and start <= p.timestamp < end
        ]
        values[stat.id] = _statistic(stat.stat, matching)
    pending = list(alarm.expressions)
    while pending:  # in dependency order, whatever the template order
        progress = False
        for ident, expression in list(pending):
            try:
                values[ident] = evaluate_expression(expression, values)
            except UnknownIdError:
                continue
            pending.remove((ident, expression))
            progress = True
        if not progress:
            raise ValueError(f"{alarm.name}: expressions refer to unknown ids: {pending}")
    return values[alarm.returned]


def breaches_at(alarm: AlarmSpec, points: Sequence[Datapoint], at: float) -> bool:
    """Is the alarm in ALARM when evaluated at time ``at``?"""
    breaching = 0
    for k in range(alarm.evaluation_periods):
        end = at - k * alarm.period
        value = period_value(alarm, points, end - alarm.period, end)
        if value is None:
            breaching += alarm.treat_missing == "breaching"
        else:
            breaching += OPERATORS[alarm.comparison](value, alarm.threshold)
    return breaching >= alarm.datapoints_to_alarm


def first_alarm(
    alarm: AlarmSpec, points: Sequence[Datapoint], since: float, horizon_s: float = 4 * 3600
) -> float | None:
    """Seconds from ``since`` to the first evaluation minute at which the alarm is in ALARM, or None.

    Evaluation minutes are whole minutes of the clock, from the first one after ``since`` up to
    ``horizon_s`` later (long enough for the multi-hour no-decision alarm).
    """
    at = math.floor(since / 60) * 60 + 60
    while at <= since + horizon_s:
        if breaches_at(alarm, points, at):
            return at - since
        at += 60
    return None


# --------------------------------------------------------------------------------------- sources
def datapoints_from_emf(records: Iterable[Mapping[str, Any]]) -> list[Datapoint]:
    """CloudWatch's reading of Embedded Metric Format log records (one point per value)."""
    points = []
    for record in records:
        meta = record.get("_aws") or {}
        timestamp = float(meta.get("Timestamp", 0)) / 1000.0
        for directive in meta.get("CloudWatchMetrics", []):
            for dimension_set in directive.get("Dimensions", []):
                dims = tuple(sorted((d, str(record[d])) for d in dimension_set if d in record))
                for metric in directive.get("Metrics", []):
                    raw = record.get(metric["Name"])
                    for value in raw if isinstance(raw, list) else [raw]:
                        if value is not None:
                            point = Datapoint(
                                directive["Namespace"], metric["Name"], dims, timestamp, float(value)
                            )
                            points.append(point)
    return points
