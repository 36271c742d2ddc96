"""When a rejected candidate's endpoint may be deleted (issue 21, the cost side of promotion).

A candidate keeps its own endpoint (``<EndpointName>-v<package version>``) through promotion and
rollback, so that one step back never needs an endpoint rebuilt. A person's rejection
(``ModelApprovalStatus`` Rejected) says the candidate goes no further: its endpoint stops billing,
unless deleting it would break what the stack decides with. The rules here are pure; the calls that
gather their inputs and act on them are ``kyc.aws.candidate_retirement``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# outcomes (the handler's "status" and the package's RetireOutcome)
RETIRED = "RETIRED"  # DeleteEndpoint called now
ALREADY_GONE = "ALREADY_GONE"  # the endpoint was gone (or being deleted) before this rejection acted
NOTHING_TO_RETIRE = "NOTHING_TO_RETIRE"  # the stack never deployed this package
REFUSED = "REFUSED"  # the endpoint stays (the reason says why)


def names(deployment: Mapping[str, Any] | None, *, arn: str, endpoint: str) -> bool:
    """Whether a pointer's deployment block names this package or its endpoint."""
    if not deployment:
        return False
    return deployment.get("model_package_arn") == arn or deployment.get("endpoint_name") == endpoint


def ownership_refusal(metadata: Mapping[str, str], *, endpoint: str) -> str | None:
    """None when the package's own record says this stack's shadow step created ``endpoint``.

    An endpoint of the candidate's name that existed before the approval was adopted, not created, and
    is not this stack's to delete (the rule the refused shadow deployment follows too)."""
    recorded = metadata.get("ShadowEndpoint")
    if recorded != endpoint:
        return f"the package records no shadow endpoint {endpoint} of this stack (it records {recorded!r})"
    if metadata.get("ShadowEndpointCreated") != "true":
        return (
            f"{endpoint} existed before this stack's shadow deployment adopted it: not this stack's to delete"
        )
    return None


def serving_refusal(production: Mapping[str, Any] | None, *, arn: str, endpoint: str) -> str | None:
    """None unless the production pointer names this package or endpoint: the serving champion is
    never deleted, whatever the registry says (roll back or promote another model first)."""
    if names(production, arn=arn, endpoint=endpoint):
        return (
            f"{endpoint} serves production (the production pointer names it): roll back or promote "
            "another model before rejecting it"
        )
    return None
