"""Publish the reviewer workbench to a deployed stack: web/ and config.json into its workbench bucket.

    .venv/bin/python scripts/publish_workbench.py --stack kycscreen [--region eu-west-1]

Reads the stack's outputs (WorkbenchBucketName, WorkbenchDistributionId, WorkbenchUrl, the API and
Cognito outputs of the review API), writes config.json from them (public values only: the API URL, the
user pool client id, the Cognito endpoint), uploads the files and invalidates CloudFront's cache.
Run it after every `sam deploy` that changes web/ or the API's endpoints (docs/review.md).
"""

from __future__ import annotations

import argparse
import sys
import time

import boto3

from kyclocal.workbench import publish, workbench_config

REQUIRED_OUTPUTS = (
    "WorkbenchBucketName",
    "WorkbenchDistributionId",
    "ScreeningApiUrl",
    "ReviewerUserPoolId",
    "ReviewerUserPoolClientId",
    "ReviewBucketName",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    session = boto3.Session(region_name=args.region)
    region = session.region_name
    stack = session.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    if missing:
        print(
            f"publish_workbench: the stack has no output {', '.join(missing)} (EnableWorkbench?)",
            file=sys.stderr,
        )
        return 2
    review_bucket = outputs["ReviewBucketName"]
    config = workbench_config(
        api_url=outputs["ScreeningApiUrl"],
        cognito_endpoint=outputs.get("CognitoEndpoint") or f"https://cognito-idp.{region}.amazonaws.com/",
        client_id=outputs["ReviewerUserPoolClientId"],
        user_pool_id=outputs["ReviewerUserPoolId"],
        region=region,
        image_origins=[
            f"https://{review_bucket}.s3.{region}.amazonaws.com",
            f"https://{review_bucket}.s3.amazonaws.com",
        ],
    )
    keys = publish(session.client("s3"), outputs["WorkbenchBucketName"], config)
    session.client("cloudfront").create_invalidation(
        DistributionId=outputs["WorkbenchDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time_ns())},
    )
    print(f"published {len(keys)} files; workbench at {outputs.get('WorkbenchUrl', '?')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
