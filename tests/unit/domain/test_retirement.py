"""Issue 21 retire: when a rejected candidate's endpoint may be deleted (the pure rules)."""

from __future__ import annotations

import pytest

from kyc.domain.retirement import names, ownership_refusal, serving_refusal

ARN = "arn:aws:sagemaker:eu-west-1:1:model-package/s-kyc-models/3"
ENDPOINT = "kyc-v3"


@pytest.mark.parametrize(
    ("deployment", "named"),
    [
        (None, False),  # no deployment block: the template's champion serves
        ({"endpoint_name": "kyc", "model_package_arn": None}, False),
        ({"endpoint_name": ENDPOINT, "model_package_arn": "other"}, True),  # by endpoint
        ({"endpoint_name": "kyc-v9", "model_package_arn": ARN}, True),  # by package
    ],
)
def test_production_names_the_package_by_either_its_arn_or_its_endpoint(deployment, named) -> None:
    assert names(deployment, arn=ARN, endpoint=ENDPOINT) is named
    assert (serving_refusal(deployment, arn=ARN, endpoint=ENDPOINT) is not None) is named


@pytest.mark.parametrize(
    ("metadata", "owned"),
    [
        ({"ShadowEndpoint": ENDPOINT, "ShadowEndpointCreated": "true"}, True),
        ({"ShadowEndpoint": ENDPOINT, "ShadowEndpointCreated": "false"}, False),  # adopted
        ({"ShadowEndpoint": ENDPOINT}, False),  # shadowed before the rule: unknown, left alone
        ({"ShadowEndpoint": "kyc-v4", "ShadowEndpointCreated": "true"}, False),  # another name
        ({}, False),
    ],
)
def test_only_an_endpoint_the_stacks_shadow_step_created_is_its_to_delete(metadata, owned) -> None:
    assert (ownership_refusal(metadata, endpoint=ENDPOINT) is None) is owned
