"""The gate between a trained candidate and the champion (docs/learning-loop.md).

A candidate model is registered for a person's approval only when, measured by the pipeline's own
decisions on the same held-out videos as the champion:

1. its APCER upper bound (95 % Wilson, worst attack type) is no higher than the champion's;
2. its BPCER (genuine videos REJECTed) is no higher than the champion's;
3. the APCER upper bound of EVERY attack type, its BPCER and its review rate meet the targets.

Rule 3 judges the APCER by its upper bound, not the measured rate: three attacks of a type all
stopped measure 0 % and still allow 56 %. With zero errors the bound is z²/(n+z²), so a target t
needs n >= z²(1-t)/t attacks of a type (73 for 5 %); the result says, per type, how many more the
test split would need (``apcer_bounds``). The review rate matters: a model that separates nothing
sends every video to REVIEW, where it can neither PASS an attack nor REJECT a genuine applicant,
and would pass rules 1 to 3 without it.

Without a champion (the first model), only rule 3 applies. The gate never promotes anything: it
decides whether a person is asked. Pure Python.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kyc.domain.drift import BaselineError, DriftBaseline, record_baseline
from kyc.domain.evaluation import Z_95

__all__ = [
    "DEPLOYMENT_KEY",
    "DRIFT_BASELINE_KEY",
    "GateResult",
    "PromotionError",
    "attacks_needed",
    "bound_image_digest",
    "decision_flips",
    "gate",
    "pointer_document",
    "pointer_drift_baseline",
    "promotion_refusals",
    "rescreen_report",
    "split_pointer",
    "worst_apcer",
]

# The production pointer (issue 21 item 3): ONE parameter document holds the decision policy and,
# under this key, where its model is served. Score reads where, decide reads the policy, so a
# promotion is one write and a rollback one write of the previous version.
DEPLOYMENT_KEY = "deployment"
# ... and, under this key, the drift alarm's baseline: the champion's decision mix (kyc.domain.drift),
# so the alarm judges against the model that decides, and a rollback restores the old baseline too.
DRIFT_BASELINE_KEY = "drift_baseline"
_POINTER_KEYS = (DEPLOYMENT_KEY, DRIFT_BASELINE_KEY)
_DEPLOYMENT_FIELDS = ("endpoint_name", "variant", "artefact_sha256", "model_package_arn")
_SHA256_HEX = frozenset("0123456789abcdef")


class PromotionError(ValueError):
    """A promotion (or a pointer document) that would install something the evaluation never measured."""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)
    # per attack type: errors, total, upper bound, whether it meets the target, attacks still needed
    apcer_bounds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "apcer_bounds": {k: dict(v) for k, v in self.apcer_bounds.items()},
        }


def worst_apcer(rates: Mapping[str, Any]) -> dict[str, Any] | None:
    """The attack type whose APCER upper bound is highest (ISO/IEC 30107-3's headline), or None."""
    by_type = [r | {"attack_type": kind} for kind, r in rates["apcer_by_type"].items() if r["total"]]
    if not by_type:
        return None
    return max(by_type, key=lambda r: (r["ci95"][1], r["value"] or 0.0))


def attacks_needed(total: int, target: float, z: float = Z_95) -> int:
    """How many more attacks of a type a zero-error test split needs for its bound to reach ``target``.

    The 95 % Wilson upper bound of 0 errors in n is z²/(n+z²) <= t exactly when n >= z²(1-t)/t.
    With errors the bound is higher, so this is the least the split lacks, never enough by itself."""
    if not 0.0 < target <= 1.0:
        return 0 if target >= 1.0 else -1  # a zero target no bound can meet: -1 = never
    required = math.ceil(z * z * (1.0 - target) / target - 1e-9)
    return max(0, required - total)


def _apcer_bounds(rates: Mapping[str, Any], target: float) -> dict[str, dict[str, Any]]:
    return {
        kind: {
            "errors": r["errors"],
            "total": r["total"],
            "upper": r["ci95"][1],
            "meets_target": r["ci95"][1] <= target + 1e-12,
            "attacks_needed_at_zero_errors": attacks_needed(r["total"], target),
        }
        for kind, r in sorted(rates["apcer_by_type"].items())
        if r["total"]
    }


def _what_the_split_lacks(kind: str, missing: int) -> str:
    if missing < 0:
        return "no number of attacks lets a bound reach a zero target"
    if missing == 0:
        return "the split is large enough for a zero-error bound; the errors are too many"
    return f"the test split needs {missing} more {kind} attack(s) for the bound to be able to meet it"


def gate(
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    *,
    max_apcer: float,
    max_bpcer: float,
    max_review_rate: float,
) -> GateResult:
    """Apply the three rules to two ``DecisionRates.to_dict()`` reports of the same test split."""
    reasons: list[str] = []
    cand_apcer = worst_apcer(candidate)
    cand_bpcer = candidate["bpcer"]
    if cand_apcer is None or cand_bpcer["total"] == 0:
        return GateResult(False, ("the test split needs both attacks and genuine videos",))
    bounds = _apcer_bounds(candidate, max_apcer)
    for kind, bound in bounds.items():
        if bound["meets_target"]:
            continue
        lacking = _what_the_split_lacks(kind, bound["attacks_needed_at_zero_errors"])
        reasons.append(
            f"APCER[{kind}] upper bound {bound['upper']:.4f} ({bound['errors']}/{bound['total']}) is above "
            f"the target {max_apcer:g}: {lacking}"
        )
    if cand_bpcer["value"] > max_bpcer:
        reasons.append(f"BPCER {cand_bpcer['value']:.4f} is above the target {max_bpcer:g}")
    review = candidate["review_rate"]
    if review["total"] and review["value"] > max_review_rate:
        reasons.append(f"review rate {review['value']:.4f} is above the target {max_review_rate:g}")
    if champion is not None:
        champ_apcer = worst_apcer(champion)
        if champ_apcer is not None and cand_apcer["ci95"][1] > champ_apcer["ci95"][1] + 1e-12:
            reasons.append(
                f"APCER upper bound {cand_apcer['ci95'][1]:.4f} is worse than the champion's "
                f"{champ_apcer['ci95'][1]:.4f}"
            )
        champ_bpcer = champion["bpcer"]
        if champ_bpcer["total"] and cand_bpcer["value"] > champ_bpcer["value"] + 1e-12:
            reasons.append(
                f"BPCER {cand_bpcer['value']:.4f} is worse than the champion's {champ_bpcer['value']:.4f}"
            )
    return GateResult(not reasons, tuple(reasons), bounds)


def decision_flips(champion: Sequence[str | None], candidate: Sequence[str | None]) -> dict[str, int]:
    """How many videos each (champion -> candidate) decision change covers, e.g. ``PASS->REJECT``."""
    if len(champion) != len(candidate):
        raise ValueError(f"{len(champion)} champion decisions, {len(candidate)} candidate decisions")
    flips = Counter(f"{a}->{b}" for a, b in zip(champion, candidate, strict=True) if a != b)
    return dict(sorted(flips.items()))


def split_pointer(document: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the policy document, the deployment block or None) of a production pointer document."""
    if not isinstance(document, Mapping):
        raise PromotionError(f"the pointer must be a JSON object, got {type(document).__name__}")
    policy = {k: v for k, v in document.items() if k not in _POINTER_KEYS}
    deployment = document.get(DEPLOYMENT_KEY)
    if deployment is None:
        return policy, None
    if not isinstance(deployment, Mapping) or not isinstance(deployment.get("endpoint_name"), str):
        raise PromotionError("the pointer's deployment block needs an endpoint_name")
    return policy, dict(deployment)


def _bound_sha(policy: Mapping[str, Any]) -> str | None:
    calibration = policy.get("calibration") or {}
    model = calibration.get("model") if isinstance(calibration, Mapping) else None
    return model.get("artefact_sha256") if isinstance(model, Mapping) else None


def bound_image_digest(policy: Mapping[str, Any]) -> str | None:
    """The serving image digest the policy's calibration names (issue 24), or None: a promotion and
    the shadow deployment then require the deployment witness to resolve the endpoint to it."""
    calibration = policy.get("calibration") or {}
    model = calibration.get("model") if isinstance(calibration, Mapping) else None
    digest = model.get("image_digest") if isinstance(model, Mapping) else None
    return str(digest) if digest else None


def pointer_document(
    policy: Mapping[str, Any],
    *,
    endpoint_name: str,
    variant: str,
    artefact_sha256: str,
    model_package_arn: str,
    drift_baseline: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The pointer that installs ``policy`` with the model served at ``endpoint_name``/``variant``.

    Refused unless the policy is bound to exactly these bytes: a promotion installs the model and
    the policy the evaluation measured together, never a pair that was not measured together.
    ``drift_baseline`` (the candidate's mix on the re-screened backlog) rides in the same write."""
    sha = (artefact_sha256 or "").lower()
    if len(sha) != 64 or not set(sha) <= _SHA256_HEX:
        raise PromotionError(f"artefact_sha256 {artefact_sha256!r} is not a SHA-256")
    bound = _bound_sha(policy)
    if bound != sha:
        raise PromotionError(f"the policy is bound to {bound!r}, not to the artefact {sha}")
    if not endpoint_name:
        raise PromotionError("no endpoint to point at")
    deployment = dict(zip(_DEPLOYMENT_FIELDS, (endpoint_name, variant, sha, model_package_arn), strict=True))
    document = {k: v for k, v in policy.items() if k not in _POINTER_KEYS} | {DEPLOYMENT_KEY: deployment}
    if drift_baseline is not None:
        try:
            document[DRIFT_BASELINE_KEY] = DriftBaseline.from_document(drift_baseline).to_document()
        except BaselineError as exc:
            raise PromotionError(f"the drift baseline: {exc}") from exc
    return document


def pointer_drift_baseline(
    document: Mapping[str, Any] | None, fallback: DriftBaseline | None = None
) -> DriftBaseline | None:
    """The mix the drift alarm's inputs are measured against: the one the production pointer carries
    (installed with its model by a promotion, restored by a rollback), else ``fallback`` (the
    template's ``DriftBaseline*`` parameters: a pointer written before any promotion has none)."""
    block = document.get(DRIFT_BASELINE_KEY) if isinstance(document, Mapping) else None
    if block is None:
        return fallback
    try:
        return DriftBaseline.from_document(block)
    except BaselineError as exc:
        raise PromotionError(f"the pointer's drift baseline: {exc}") from exc


def promotion_refusals(package: Mapping[str, Any]) -> list[str]:
    """Why a registered package may not be promoted (empty: it may). Every step is required.

    ``package``: the registry's view (``kyc.aws.model_registry.RegisteredPackage.to_dict()``):
    approval status, the gate's verdict, the model and policy hashes, the shadow deployment and the
    backlog re-screen recorded on it."""
    reasons = []
    if package.get("approval_status") != "Approved":
        reasons.append(f"the package is {package.get('approval_status')!r}, not Approved by a person")
    if str(package.get("gate_passed")).lower() != "true":
        reasons.append("the package did not pass the gate")
    model_sha = package.get("model_sha256")
    if not model_sha or package.get("policy_bound_to_sha256") != model_sha:
        reasons.append("the package's policy is not bound to its model's SHA-256")
    if not package.get("shadow_endpoint"):
        reasons.append("the candidate was never deployed in shadow")
    rescreen = package.get("rescreen") or {}
    if not rescreen.get("report_uri"):
        reasons.append("the backlog was never re-screened with the candidate")
    elif int(rescreen.get("failed", 1)) != 0:
        reasons.append(f"the backlog re-screen had {rescreen.get('failed')} failed submissions")
    return reasons


def rescreen_report(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the candidate would have changed on the backlog; the recorded decisions stay as they are.

    ``items``: one per retained submission, ``submission_id``, ``recorded`` (the decision on record),
    ``candidate`` (what the candidate and its policy decide on the same frames; None when the item
    failed) and ``reasons``. Every PASS that would now be REJECT gets a review-queue entry: a person
    looks at an applicant the champion let through and the candidate would stop."""
    failed = [i for i in items if i.get("candidate") is None]
    compared = [i for i in items if i.get("candidate") is not None]
    changes = Counter(
        f"{i['recorded']}->{i['candidate']}" for i in compared if i["recorded"] != i["candidate"]
    )
    review = [
        {
            "submission_id": i["submission_id"],
            "recorded": i["recorded"],
            "candidate": i["candidate"],
            "candidate_reasons": list(i.get("reasons") or ()),
            "why": "PASS on record, REJECT by the candidate: a person decides whether to act",
        }
        for i in compared
        if i["recorded"] == "PASS" and i["candidate"] == "REJECT"
    ]
    return {
        "drift_baseline": _backlog_baseline(compared),
        "submissions": len(items),
        "compared": len(compared),
        "failed": len(failed),
        "failed_submissions": sorted(i["submission_id"] for i in failed),
        "unchanged": len(compared) - sum(changes.values()),
        "changed": sum(changes.values()),
        "changes": dict(sorted(changes.items())),
        "stricter": sum(v for k, v in changes.items() if _rank(k.split("->")[1]) > _rank(k.split("->")[0])),
        "laxer": sum(v for k, v in changes.items() if _rank(k.split("->")[1]) < _rank(k.split("->")[0])),
        "review_queue": review,
    }


def _backlog_baseline(compared: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The candidate's decision mix on the team's own recent traffic: the drift baseline it is
    promoted with (None when nothing was decided and scored: the template's parameters then apply)."""
    try:
        return record_baseline((i["candidate"], i.get("score")) for i in compared).to_document()
    except ValueError:
        return None


_STRICTNESS = {"PASS": 0, "REVIEW": 1, "REJECT": 2}


def _rank(decision: str) -> int:
    """PASS < REVIEW < REJECT; anything else (INVALID, ERROR) sits with REVIEW: not a PASS."""
    return _STRICTNESS.get(decision, 1)
