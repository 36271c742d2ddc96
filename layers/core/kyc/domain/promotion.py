"""The gate between a trained candidate and the champion (docs/learning-loop.md).

A candidate model is registered for a person's approval only when, measured by the pipeline's own
decisions on the same held-out videos as the champion:

1. its APCER upper bound (95 % Wilson, worst attack type) is no higher than the champion's;
2. its BPCER (genuine videos REJECTed) is no higher than the champion's;
3. its APCER (worst type), BPCER and review rate meet the configured targets.

The review rate matters: a model that separates nothing sends every video to REVIEW, where it can
neither PASS an attack nor REJECT a genuine applicant, and would pass rules 1 to 3 without it.

Without a champion (the first model), only rule 3 applies. The gate never promotes anything: it
decides whether a person is asked. Pure Python.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEPLOYMENT_KEY",
    "GateResult",
    "PromotionError",
    "bound_image_digest",
    "decision_flips",
    "gate",
    "pointer_document",
    "promotion_refusals",
    "rescreen_report",
    "split_pointer",
    "worst_apcer",
]

# The production pointer (issue 21 item 3): ONE parameter document holds the decision policy and,
# under this key, where its model is served. Score reads where, decide reads the policy, so a
# promotion is one write and a rollback one write of the previous version.
DEPLOYMENT_KEY = "deployment"
_DEPLOYMENT_FIELDS = ("endpoint_name", "variant", "artefact_sha256", "model_package_arn")
_SHA256_HEX = frozenset("0123456789abcdef")


class PromotionError(ValueError):
    """A promotion (or a pointer document) that would install something the evaluation never measured."""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons)}


def worst_apcer(rates: Mapping[str, Any]) -> dict[str, Any] | None:
    """The attack type whose APCER upper bound is highest (ISO/IEC 30107-3's headline), or None."""
    by_type = [r | {"attack_type": kind} for kind, r in rates["apcer_by_type"].items() if r["total"]]
    if not by_type:
        return None
    return max(by_type, key=lambda r: (r["ci95"][1], r["value"] or 0.0))


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
    if cand_apcer["value"] > max_apcer:
        reasons.append(
            f"APCER[{cand_apcer['attack_type']}] {cand_apcer['value']:.4f} is above the target {max_apcer:g}"
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
    return GateResult(not reasons, tuple(reasons))


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
    policy = {k: v for k, v in document.items() if k != DEPLOYMENT_KEY}
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
) -> dict[str, Any]:
    """The pointer that installs ``policy`` with the model served at ``endpoint_name``/``variant``.

    Refused unless the policy is bound to exactly these bytes: a promotion installs the model and
    the policy the evaluation measured together, never a pair that was not measured together."""
    sha = (artefact_sha256 or "").lower()
    if len(sha) != 64 or not set(sha) <= _SHA256_HEX:
        raise PromotionError(f"artefact_sha256 {artefact_sha256!r} is not a SHA-256")
    bound = _bound_sha(policy)
    if bound != sha:
        raise PromotionError(f"the policy is bound to {bound!r}, not to the artefact {sha}")
    if not endpoint_name:
        raise PromotionError("no endpoint to point at")
    deployment = dict(zip(_DEPLOYMENT_FIELDS, (endpoint_name, variant, sha, model_package_arn), strict=True))
    return {k: v for k, v in policy.items() if k != DEPLOYMENT_KEY} | {DEPLOYMENT_KEY: deployment}


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


_STRICTNESS = {"PASS": 0, "REVIEW": 1, "REJECT": 2}


def _rank(decision: str) -> int:
    """PASS < REVIEW < REJECT; anything else (INVALID, ERROR) sits with REVIEW: not a PASS."""
    return _STRICTNESS.get(decision, 1)
