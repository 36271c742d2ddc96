"""Error rates of a screening policy on labelled videos, and thresholds proposed from them.

Used by ``kycscreen evaluate``; never on the decide path. Conventions (docs/decision-policy.md):
higher score = more likely fake; an attack is accepted when PASSed (score < pass threshold); a genuine
video is auto-rejected when score >= reject threshold. A video without a score (INVALID or ERROR) is a
non-response: it is reported separately and left out of the score-based rates. Pure Python.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile


class EvaluationError(ValueError):
    """The labelled data cannot support the requested metric (wrong label, empty class, length mismatch)."""


class Label(StrEnum):
    GENUINE = "genuine"
    ATTACK = "attack"


def parse_label(value: str) -> Label:
    try:
        return Label(value.strip().lower())
    except (AttributeError, ValueError) as exc:
        raise EvaluationError(f"label must be 'genuine' or 'attack', got {value!r}") from exc


@dataclass(frozen=True)
class Rate:
    """errors / total with a 95 % Wilson interval; ``value`` is None when total is 0."""

    errors: int
    total: int
    value: float | None
    low: float
    high: float

    @classmethod
    def of(cls, errors: int, total: int) -> Rate:
        low, high = wilson_interval(errors, total)
        return cls(errors, total, errors / total if total else None, low, high)

    def to_dict(self) -> dict:
        return {
            "errors": self.errors,
            "total": self.total,
            "value": self.value,
            "ci95": [self.low, self.high],
        }


class RocPoint(NamedTuple):
    """Calling 'attack' when score >= threshold: fpr = BPCER, tpr = 1 - APCER."""

    fpr: float
    tpr: float
    threshold: float


class ThresholdProposal(NamedTuple):
    pass_threshold: float
    reject_threshold: float
    feasible: bool


def wilson_interval(errors: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval: honest near 0 and 1, where error rates of a good model live."""
    if total <= 0:
        return (0.0, 1.0)
    if not 0 <= errors <= total:
        raise EvaluationError(f"errors ({errors}) must be within 0..total ({total})")
    p = errors / total
    z2 = z * z
    denom = 1.0 + z2 / total
    centre = (p + z2 / (2 * total)) / denom
    half = (z / denom) * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return (max(0.0, centre - half), min(1.0, centre + half))


def _scored(scores: Sequence[float | None], labels: Sequence[str]) -> tuple[list[float], list[bool]]:
    if len(scores) != len(labels):
        raise EvaluationError(f"{len(scores)} scores but {len(labels)} labels")
    pairs = [
        (float(s), parse_label(lab) is Label.ATTACK)
        for s, lab in zip(scores, labels, strict=True)
        if s is not None
    ]
    for s, _ in pairs:
        if not math.isfinite(s):
            raise EvaluationError(f"score {s!r} is not finite")
    return [s for s, _ in pairs], [a for _, a in pairs]


def roc_curve(scores: Sequence[float | None], labels: Sequence[str]) -> list[RocPoint]:
    """One point per distinct score, highest first, after a (0, 0, inf) start (as scikit-learn's
    ``roc_curve(..., drop_intermediate=False)``). Unscored videos are left out."""
    values, attack = _scored(scores, labels)
    positives = sum(attack)
    negatives = len(attack) - positives
    if not positives or not negatives:
        raise EvaluationError("ROC needs at least one scored genuine and one scored attack video")
    order = sorted(zip(values, attack, strict=True), key=lambda pair: pair[0], reverse=True)
    points = [RocPoint(0.0, 0.0, math.inf)]
    tp = fp = 0
    for i, (s, is_attack) in enumerate(order):
        tp += is_attack
        fp += not is_attack
        if i + 1 == len(order) or order[i + 1][0] != s:
            points.append(RocPoint(fp / negatives, tp / positives, s))
    return points


def roc_auc(scores: Sequence[float | None], labels: Sequence[str]) -> float:
    """Area under the ROC (trapezoids, so tied scores count one half)."""
    points = roc_curve(scores, labels)
    return math.fsum((b.fpr - a.fpr) * (a.tpr + b.tpr) / 2 for a, b in itertools.pairwise(points))


def equal_error_rate(scores: Sequence[float | None], labels: Sequence[str]) -> tuple[float, float]:
    """(EER, threshold): the ROC point where APCER (1 - tpr) is closest to BPCER (fpr).

    Same convention as DeepfakeBench: ``fpr[argmin |fnr - fpr|]`` (first point on ties).
    """
    points = roc_curve(scores, labels)
    best = min(points, key=lambda pt: abs((1.0 - pt.tpr) - pt.fpr))
    return best.fpr, best.threshold


def _attack_groups(
    scores: Sequence[float | None], labels: Sequence[str], attack_types: Sequence[str | None] | None
) -> tuple[list[float], dict[str, list[float]]]:
    """Scored genuine scores, and scored attack scores per attack type ('unspecified' when absent)."""
    if attack_types is not None and len(attack_types) != len(scores):
        raise EvaluationError(f"{len(scores)} scores but {len(attack_types)} attack types")
    types = attack_types if attack_types is not None else [None] * len(scores)
    if len(scores) != len(labels):
        raise EvaluationError(f"{len(scores)} scores but {len(labels)} labels")
    genuine: list[float] = []
    attacks: dict[str, list[float]] = {}
    for s, lab, kind in zip(scores, labels, types, strict=True):
        is_attack = parse_label(lab) is Label.ATTACK
        if s is None:
            continue
        if not math.isfinite(float(s)):
            raise EvaluationError(f"score {s!r} is not finite")
        if is_attack:
            attacks.setdefault(kind or "unspecified", []).append(float(s))
        else:
            genuine.append(float(s))
    return genuine, attacks


def _allowed_attack_errors(n: int, max_apcer: float, on_bound: bool) -> int:
    """How many of n attacks may PASS: measured rate <= max_apcer, or (on_bound) its Wilson upper bound.

    On the bound, a type whose split is too small for even zero errors to meet the target allows 0:
    the strictest threshold, and the proposal is marked infeasible."""
    if not on_bound:
        return math.floor(max_apcer * n + 1e-9)
    allowed = 0
    while allowed + 1 <= n and wilson_interval(allowed + 1, n)[1] <= max_apcer + 1e-12:
        allowed += 1
    return allowed


def _apcer_met(errors: int, n: int, max_apcer: float, on_bound: bool) -> bool:
    if on_bound:
        return wilson_interval(errors, n)[1] <= max_apcer + 1e-12
    return errors <= max_apcer * n + 1e-9


def _max_pass_threshold(attack_scores: list[float], max_apcer: float, on_bound: bool = False) -> float:
    """Largest t with #(s < t) / n <= max_apcer for one attack type (or its upper bound, see above)."""
    ordered = sorted(attack_scores)
    allowed = _allowed_attack_errors(len(ordered), max_apcer, on_bound)
    return ordered[allowed] if allowed < len(ordered) else math.inf


def _min_reject_threshold(genuine_scores: list[float], max_bpcer: float) -> float:
    """Smallest t with #(s >= t) / n <= max_bpcer."""
    ordered = sorted(genuine_scores, reverse=True)
    allowed = math.floor(max_bpcer * len(ordered) + 1e-9)
    return math.nextafter(ordered[allowed], math.inf) if allowed < len(ordered) else -math.inf


def bpcer_at_apcer(
    scores: Sequence[float | None],
    labels: Sequence[str],
    attack_types: Sequence[str | None] | None = None,
    *,
    max_apcer: float,
) -> float:
    """BPCER at the largest threshold whose worst-case APCER is <= max_apcer.

    BPCER20 is ``max_apcer=0.05``, BPCER100 is ``max_apcer=0.01``.
    """
    genuine, attacks = _attack_groups(scores, labels, attack_types)
    if not genuine or not attacks:
        raise EvaluationError("BPCER@APCER needs scored genuine and attack videos")
    t = min(_max_pass_threshold(group, max_apcer) for group in attacks.values())
    return sum(1 for s in genuine if s >= t) / len(genuine)


def propose_thresholds(
    scores: Sequence[float | None],
    labels: Sequence[str],
    attack_types: Sequence[str | None] | None,
    *,
    max_apcer: float,
    max_bpcer: float,
    max_review_rate: float | None = None,
    apcer_on_bound: bool = False,
) -> ThresholdProposal:
    """Two thresholds from error-rate targets (detection.md 5.3), ready for a DecisionPolicy.

    pass: the largest t_P with max over attack types of P(score < t_P | type) <= max_apcer.
    reject: the smallest t_R with P(score >= t_R | genuine) <= max_bpcer.
    t_P <= t_R: scores in [t_P, t_R) go to REVIEW. t_P > t_R: one threshold meets both targets, so
    both are set to the midpoint (no REVIEW band, margin on both sides). ``feasible`` is False when
    the targets are not met on this data within [0, 1] (e.g. genuine videos scored exactly 1.0), or
    when the review rate on scored videos exceeds ``max_review_rate``. Unscored videos are ignored.
    ``apcer_on_bound``: hold each type's 95 % Wilson upper bound of APCER to ``max_apcer``, as the
    retraining gate (``kyc.domain.promotion.gate``) will on the test split.
    """
    for name, value in (("max_apcer", max_apcer), ("max_bpcer", max_bpcer)):
        if not 0.0 <= value <= 1.0:
            raise EvaluationError(f"{name} must be in [0, 1], got {value!r}")
    if max_review_rate is not None and not 0.0 <= max_review_rate <= 1.0:
        raise EvaluationError(f"max_review_rate must be in [0, 1], got {max_review_rate!r}")
    genuine, attacks = _attack_groups(scores, labels, attack_types)
    if not genuine or not attacks:
        raise EvaluationError("proposing thresholds needs scored genuine and attack videos")
    t_pass = min(
        1.0, min(_max_pass_threshold(group, max_apcer, apcer_on_bound) for group in attacks.values())
    )
    t_reject = max(0.0, min(1.0, _min_reject_threshold(genuine, max_bpcer)))
    if t_pass > t_reject:
        t_pass = t_reject = (t_pass + t_reject) / 2
    apcer_ok = all(
        _apcer_met(sum(1 for s in g if s < t_pass), len(g), max_apcer, apcer_on_bound)
        for g in attacks.values()
    )
    bpcer_ok = sum(1 for s in genuine if s >= t_reject) <= max_bpcer * len(genuine) + 1e-9
    scored = genuine + [s for g in attacks.values() for s in g]
    review = sum(1 for s in scored if t_pass <= s < t_reject) / len(scored)
    review_ok = max_review_rate is None or review <= max_review_rate
    return ThresholdProposal(t_pass, t_reject, apcer_ok and bpcer_ok and review_ok)


@dataclass(frozen=True)
class EvaluationReport:
    """Operating-point rates at given thresholds plus threshold-free ranking metrics."""

    pass_threshold: float
    reject_threshold: float
    apcer_by_type: dict[str, Rate]
    apcer_worst: Rate
    bpcer: Rate
    review_rate: Rate
    genuine_review_rate: Rate
    attack_nonresponse: Rate
    genuine_nonresponse: Rate
    auc: float | None
    eer: float | None
    bpcer20: float | None
    bpcer100: float | None
    auc_ci95: tuple[float, float] | None = None
    eer_ci95: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return {
            "pass_threshold": self.pass_threshold,
            "reject_threshold": self.reject_threshold,
            "apcer_by_type": {k: v.to_dict() for k, v in self.apcer_by_type.items()},
            "apcer_worst": self.apcer_worst.to_dict(),
            "bpcer": self.bpcer.to_dict(),
            "review_rate": self.review_rate.to_dict(),
            "genuine_review_rate": self.genuine_review_rate.to_dict(),
            "attack_nonresponse": self.attack_nonresponse.to_dict(),
            "genuine_nonresponse": self.genuine_nonresponse.to_dict(),
            "auc": self.auc,
            "auc_ci95": list(self.auc_ci95) if self.auc_ci95 else None,
            "eer": self.eer,
            "eer_ci95": list(self.eer_ci95) if self.eer_ci95 else None,
            "bpcer20": self.bpcer20,
            "bpcer100": self.bpcer100,
        }


def evaluate(
    scores: Sequence[float | None],
    labels: Sequence[str],
    attack_types: Sequence[str | None] | None = None,
    *,
    pass_threshold: float,
    reject_threshold: float,
    resamples: int = 0,
) -> EvaluationReport:
    """Rates at the given thresholds (PASS if score < pass, REJECT if score >= reject, REVIEW between).

    ``resamples`` > 0 adds stratified bootstrap intervals to AUC and EER (``kycscreen evaluate``: 1000).

    APCER is per attack type (attacks PASSed / scored attacks of that type); the worst type is reported
    as ``apcer_worst``. BPCER counts genuine videos auto-rejected. Unscored videos are non-responses.
    """
    genuine, attacks = _attack_groups(scores, labels, attack_types)
    parsed = [parse_label(lab) for lab in labels]
    n_attack = sum(1 for lab in parsed if lab is Label.ATTACK)
    n_genuine = len(parsed) - n_attack
    apcer_by_type = {
        kind: Rate.of(sum(1 for s in group if s < pass_threshold), len(group))
        for kind, group in sorted(attacks.items())
    }
    worst = max(apcer_by_type.values(), key=lambda r: r.value or 0.0, default=Rate.of(0, 0))
    all_scored = genuine + [s for group in attacks.values() for s in group]

    def in_band(s: float) -> bool:
        return pass_threshold <= s < reject_threshold

    ranked = bool(genuine) and bool(attacks)
    return EvaluationReport(
        pass_threshold=pass_threshold,
        reject_threshold=reject_threshold,
        apcer_by_type=apcer_by_type,
        apcer_worst=worst,
        bpcer=Rate.of(sum(1 for s in genuine if s >= reject_threshold), len(genuine)),
        review_rate=Rate.of(sum(1 for s in all_scored if in_band(s)), len(all_scored)),
        genuine_review_rate=Rate.of(sum(1 for s in genuine if in_band(s)), len(genuine)),
        attack_nonresponse=Rate.of(n_attack - sum(len(g) for g in attacks.values()), n_attack),
        genuine_nonresponse=Rate.of(n_genuine - len(genuine), n_genuine),
        auc=roc_auc(scores, labels) if ranked else None,
        eer=equal_error_rate(scores, labels)[0] if ranked else None,
        auc_ci95=_interval(roc_auc, scores, labels, resamples) if ranked else None,
        eer_ci95=_interval(_eer_value, scores, labels, resamples) if ranked else None,
        bpcer20=bpcer_at_apcer(scores, labels, attack_types, max_apcer=0.05) if ranked else None,
        bpcer100=bpcer_at_apcer(scores, labels, attack_types, max_apcer=0.01) if ranked else None,
    )


def bootstrap_interval(
    statistic: Callable[[Sequence[float], Sequence[str]], float],
    scores: Sequence[float | None],
    labels: Sequence[str],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a score-level statistic (AUC, EER) over scored videos.

    Stratified: genuine and attack videos are resampled separately, with their own counts, so every
    resample has both classes and the class balance of the labelled set. Seeded, so a report is
    reproducible. With a few dozen videos the interval is wide, which is the point of showing it.
    """
    values, attack = _scored(scores, labels)
    genuine = [s for s, a in zip(values, attack, strict=True) if not a]
    attacks = [s for s, a in zip(values, attack, strict=True) if a]
    if not genuine or not attacks:
        raise EvaluationError("a bootstrap interval needs scored genuine and attack videos")
    if resamples < 1 or not 0.0 < level < 1.0:
        raise EvaluationError("resamples must be >= 1 and level in (0, 1)")
    rng = random.Random(seed)  # noqa: S311  # nosec B311 - a reproducible resampling, not a secret
    resample_labels = [Label.GENUINE.value] * len(genuine) + [Label.ATTACK.value] * len(attacks)
    stats = sorted(
        statistic(
            rng.choices(genuine, k=len(genuine)) + rng.choices(attacks, k=len(attacks)), resample_labels
        )
        for _ in range(resamples)
    )
    tail = (1.0 - level) / 2
    return _quantile(stats, tail), _quantile(stats, 1.0 - tail)


def _interval(
    statistic: Callable[[Sequence[float], Sequence[str]], float],
    scores: Sequence[float | None],
    labels: Sequence[str],
    resamples: int,
) -> tuple[float, float] | None:
    return bootstrap_interval(statistic, scores, labels, resamples=resamples) if resamples else None


def _eer_value(scores: Sequence[float | None], labels: Sequence[str]) -> float:
    return equal_error_rate(scores, labels)[0]


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default 'linear' method)."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


OUTCOMES = ("PASS", "REVIEW", "REJECT", "INVALID", "ERROR")


@dataclass(frozen=True)
class DecisionRates:
    """What the pipeline decided, per label class: gates, caps and failures included.

    Every labelled video counts in its class's denominator, whatever it got: an attack refused as
    INVALID was not accepted, and a genuine video sent to REVIEW by a gate costs an analyst's time
    even when its score was low. APCER = attacks PASSed (per type and worst type), BPCER = genuine
    videos REJECTed, review rate = videos sent to REVIEW.
    """

    genuine: dict[str, Rate]
    attack: dict[str, Rate]
    apcer_by_type: dict[str, Rate]
    apcer: Rate
    apcer_worst: Rate
    bpcer: Rate
    review_rate: Rate
    # partial fakes (issue 24): attacks PASSed per share of the clip that is fake ("25%"; whole-clip
    # attacks without a share are "100%"), when the labels name shares
    apcer_by_share: dict[str, Rate] | None = None

    def to_dict(self) -> dict:
        return {
            "genuine": {k: v.to_dict() for k, v in self.genuine.items()},
            "attack": {k: v.to_dict() for k, v in self.attack.items()},
            "apcer_by_type": {k: v.to_dict() for k, v in self.apcer_by_type.items()},
            "apcer_by_share": {k: v.to_dict() for k, v in (self.apcer_by_share or {}).items()},
            "apcer": self.apcer.to_dict(),
            "apcer_worst": self.apcer_worst.to_dict(),
            "bpcer": self.bpcer.to_dict(),
            "review_rate": self.review_rate.to_dict(),
        }


def decision_rates(
    decisions: Sequence[str | None],
    labels: Sequence[str],
    attack_types: Sequence[str | None] | None = None,
    fake_shares: Sequence[float | None] | None = None,
) -> DecisionRates:
    """Rates from the decisions the pipeline recorded (None: no decision came back, counted as ERROR).
    ``fake_shares``: per video, the share of an attack clip that is fake (a splice), None for whole."""
    types = attack_types if attack_types is not None else [None] * len(decisions)
    if not len(decisions) == len(labels) == len(types):
        raise EvaluationError(f"{len(decisions)} decisions, {len(labels)} labels, {len(types)} attack types")
    outcomes = [d if d in OUTCOMES else "ERROR" for d in decisions]
    parsed = [parse_label(lab) for lab in labels]

    def shares(label: Label) -> dict[str, Rate]:
        got = [o for o, lab in zip(outcomes, parsed, strict=True) if lab is label]
        return {o: Rate.of(got.count(o), len(got)) for o in OUTCOMES}

    by_type: dict[str, list[str]] = {}
    for outcome, label, kind in zip(outcomes, parsed, types, strict=True):
        if label is Label.ATTACK:
            by_type.setdefault(kind or "unspecified", []).append(outcome)
    apcer_by_type = {k: Rate.of(v.count("PASS"), len(v)) for k, v in sorted(by_type.items())}
    by_share: dict[float, list[str]] = {}
    if fake_shares is not None:
        if len(fake_shares) != len(decisions):
            raise EvaluationError(f"{len(decisions)} decisions but {len(fake_shares)} fake shares")
        for outcome, label, share in zip(outcomes, parsed, fake_shares, strict=True):
            if label is Label.ATTACK:
                by_share.setdefault(1.0 if share is None else float(share), []).append(outcome)
    genuine, attack = shares(Label.GENUINE), shares(Label.ATTACK)
    return DecisionRates(
        genuine=genuine,
        attack=attack,
        apcer_by_type=apcer_by_type,
        apcer=attack["PASS"],
        apcer_worst=max(apcer_by_type.values(), key=lambda r: r.value or 0.0, default=Rate.of(0, 0)),
        bpcer=genuine["REJECT"],
        review_rate=Rate.of(outcomes.count("REVIEW"), len(outcomes)),
        apcer_by_share={
            f"{share:.0%}": Rate.of(v.count("PASS"), len(v)) for share, v in sorted(by_share.items())
        }
        if fake_shares is not None
        else None,
    )
