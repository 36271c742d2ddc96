"""Per-frame p_fake -> one video score.

Pure Python on purpose: the decide function's layer has no numpy. Every aggregator returns a
value inside [min(p), max(p)], so a score can never be more (or less) suspicious than the frames
it came from. Inputs must already be cleaned by the policy; a NaN or out-of-range value here is
a programming error and raises rather than being silently used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType


class PolicyError(Exception):
    """The decision policy (thresholds, aggregator name or its parameters) is not usable."""


class AggregationError(ValueError):
    """The scores handed to an aggregator are not valid probabilities (empty, NaN, out of [0, 1])."""


# The DFDC winner's fake gate is "more than sz // 2.5 crops": 40 % of them, floored.
_WINNER_FAKE_FRACTION = 0.4


def _checked(p: Sequence[float]) -> list[float]:
    values = [float(x) for x in p]
    if not values:
        raise AggregationError("no scores to aggregate")
    for x in values:
        if not (0.0 <= x <= 1.0):  # also false for NaN
            raise AggregationError(f"score {x!r} is not a probability in [0, 1]")
    return values


def _clamp(value: float, values: list[float]) -> float:
    """Keep a result inside the inputs' range despite clipping and float rounding."""
    return min(max(value, min(values)), max(values))


def _mean(values: list[float]) -> float:
    return _clamp(math.fsum(values) / len(values), values)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def mean(p: Sequence[float]) -> float:
    """Plain mean of p_fake: the baseline every DFDC solution compares against."""
    return _mean(_checked(p))


def mean_logit(p: Sequence[float], eps: float = 1e-6) -> float:
    """Sigmoid of the mean logit (ICPR 2020): confident frames weigh more than in a plain mean.

    p is clipped to [eps, 1 - eps] so a single 0 or 1 cannot decide the video on its own.
    """
    values = _checked(p)
    if not (0.0 < eps < 0.5):
        raise AggregationError(f"eps must be in (0, 0.5), got {eps!r}")
    logits = []
    for x in values:
        c = min(max(x, eps), 1.0 - eps)
        logits.append(math.log(c) - math.log1p(-c))
    return _clamp(_sigmoid(math.fsum(logits) / len(logits)), values)


def confident_mean(
    p: Sequence[float],
    *,
    threshold: float = 0.8,
    min_fake_count: int = 11,
    min_fake_fraction: float | None = None,
    real_threshold: float = 0.2,
    real_fraction: float = 0.9,
) -> float:
    """The DFDC winner's ``confident_strategy`` with its counts exposed.

    Let k be the number of frames with p > threshold and n the number of frames.
    - Fake branch: if k > min_fake_count and k > floor(min_fake_fraction * n), return the mean of
      those k frames (one confidently faked stretch is enough to call the video fake).
    - Real branch: elif more than real_fraction * n frames have p < real_threshold, return their mean
      (a few glitchy frames on a genuine video are ignored).
    - Otherwise the plain mean.
    Defaults reproduce the original exactly (min_fake_fraction None means its ``n // 2.5``). The
    absolute 11 assumes about 32 frames: with fewer frames set ``min_fake_count=0`` and rely on
    ``min_fake_fraction`` so the rule scales with n.
    """
    values = _checked(p)
    n = len(values)
    fake = [x for x in values if x > threshold]
    fake_floor = n // 2.5 if min_fake_fraction is None else math.floor(min_fake_fraction * n)
    if len(fake) > min_fake_count and len(fake) > fake_floor:
        return _mean(fake)
    real = [x for x in values if x < real_threshold]
    if real and len(real) > real_fraction * n:
        return _mean(real)
    return _mean(values)


def top_k_mean(p: Sequence[float], *, k: int = 8) -> float:
    """Mean of the k most suspicious frames (k clipped to n): a short faked stretch is not diluted."""
    values = _checked(p)
    if k < 1:
        raise AggregationError(f"k must be >= 1, got {k!r}")
    top = sorted(values, reverse=True)[: min(k, len(values))]
    return _mean(top)


AGGREGATORS: Mapping[str, Callable[..., float]] = MappingProxyType(
    {
        "mean": mean,
        "mean_logit": mean_logit,
        "confident_mean": confident_mean,
        "top_k_mean": top_k_mean,
    }
)

# Parameter kinds per aggregator, so a policy document is checked before any video is scored.
_PARAMS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "mean": {},
        "mean_logit": {"eps": "eps"},
        "confident_mean": {
            "threshold": "probability",
            "min_fake_count": "count",
            "min_fake_fraction": "optional_probability",
            "real_threshold": "probability",
            "real_fraction": "probability",
        },
        "top_k_mean": {"k": "positive_count"},
    }
)


def _number(name: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(f"aggregator {name!r}: parameter {key!r} must be a finite number, got {value!r}")
    return float(value)


def _coerce(name: str, key: str, kind: str, value: object) -> object:
    if kind == "optional_probability" and value is None:
        return None
    number = _number(name, key, value)
    if kind in ("probability", "optional_probability"):
        if not 0.0 <= number <= 1.0:
            raise PolicyError(f"aggregator {name!r}: {key!r} must be in [0, 1], got {value!r}")
        return number
    if kind == "eps":
        if not 0.0 < number < 0.5:
            raise PolicyError(f"aggregator {name!r}: {key!r} must be in (0, 0.5), got {value!r}")
        return number
    lowest = 1 if kind == "positive_count" else 0
    if number != int(number) or number < lowest:
        raise PolicyError(f"aggregator {name!r}: {key!r} must be an integer >= {lowest}, got {value!r}")
    return int(number)


def validate_params(name: str, params: Mapping[str, object] | None = None) -> dict[str, object]:
    """Check an aggregator name and its parameters; return them as keyword arguments."""
    if name not in AGGREGATORS:
        known = ", ".join(sorted(AGGREGATORS))
        raise PolicyError(f"unknown aggregator {name!r}; known: {known}")
    spec = _PARAMS[name]
    kwargs: dict[str, object] = {}
    for key, value in (params or {}).items():
        if key not in spec:
            allowed = ", ".join(sorted(spec)) or "none"
            raise PolicyError(f"aggregator {name!r} has no parameter {key!r} (allowed: {allowed})")
        kwargs[key] = _coerce(name, key, spec[key], value)
    return kwargs


def aggregate(name: str, p: Sequence[float], params: Mapping[str, float] | None = None) -> float:
    """Run the named aggregator; an unknown name or bad parameter raises PolicyError."""
    kwargs = validate_params(name, params)
    return AGGREGATORS[name](p, **kwargs)
