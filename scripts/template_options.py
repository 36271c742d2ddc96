"""Write template.yaml with the optional features switched on, so linters see their resources too.

    .venv/bin/python scripts/template_options.py --all-on --out build/template-all-options.json

The optional features (AWS Config rules, Incident Manager, the upload edge) sit behind conditions that
are false with the default parameters. cfn-lint and Checkov take a template, not parameter values, so
``make iac`` also checks this copy in which their parameters default to "on". JSON is written because
both tools read it and it needs no YAML tag handling.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO = Path(__file__).resolve().parents[1]
# Parameter defaults that turn every optional feature on (a contact ARN so the engagement path is built).
ALL_ON: dict[str, str] = {
    "EnableConfigRules": "true",
    "EnableIncidentManager": "true",
    "CreateIncidentReplicationSet": "true",
    "EnableUploadApi": "true",
    "EnableScreeningApi": "true",
    "WebhookUrl": "https://hooks.example.com/kyc",  # issue 20: the optional webhook
    "IncidentContactArns": "arn:aws:ssm-contacts:eu-west-1:111122223333:contact/oncall",
    "BreakGlassRoleArn": "arn:aws:iam::111122223333:role/kyc-break-glass",
    "UploaderRoleArn": "arn:aws:iam::111122223333:role/onboarding-uploader",
    "KeyAdminRoleArn": "arn:aws:iam::111122223333:role/kyc-key-admin",
    # issue 21: the retraining pipeline and a bring-your-own training image
    "RetrainProcessingImageUri": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/kyc/retrain:1.0.0",
    "RetrainTrainingImageUri": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/trainer@sha256:" + "0" * 64,
}


def with_defaults(template_path: Path, defaults: dict[str, str]) -> dict[str, Any]:
    tpl, matches = decode(str(template_path))
    if matches:
        raise SystemExit(f"{template_path} does not parse: {matches}")
    out = json.loads(json.dumps(tpl, default=str))
    for name, value in defaults.items():
        out["Parameters"][name]["Default"] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--template", type=Path, default=REPO / "template.yaml")
    parser.add_argument("--all-on", action="store_true", help="switch every optional feature on")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    tpl = with_defaults(args.template, ALL_ON if args.all_on else {})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(tpl, indent=1), encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
