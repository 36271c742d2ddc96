"""The translated template the local stack creates: the rewrites moto needs, and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kyclocal.template import REPO, _substituted, local_template


def _join(node: dict[str, Any], values: dict[str, str]) -> str:
    """Resolve a Fn::Join of strings and {"Ref"/"Fn::GetAtt"} placeholders with the given values."""
    separator, parts = node["Fn::Join"]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        else:
            out.append(values[json.dumps(part, sort_keys=True)])
    return separator.join(out)


def test_substitution_keeps_context_paths_and_unknown_placeholders() -> None:
    text = '{"A": "${FnArn}", "B.$": "$$.Execution.Id", "C": "${Unknown}", "D": "${FnArn}:x"}'
    arn = {"Fn::GetAtt": ["Fn", "Arn"]}

    joined = _substituted(text, {"FnArn": arn})

    resolved = _join(joined, {json.dumps(arn, sort_keys=True): "arn:aws:lambda:fn"})
    expected = (
        '{"A": "arn:aws:lambda:fn", "B.$": "$$.Execution.Id", "C": "${Unknown}", "D": "arn:aws:lambda:fn:x"}'
    )
    assert resolved == expected


@pytest.mark.parametrize(
    ("machine", "definition"),
    [
        ("ScreeningStateMachine", "screening.asl.json"),
        ("RescreenStateMachine", "rescreen.asl.json"),
    ],  # issue 21
)
def test_local_template_runs_the_deployed_asl_with_every_substitution(machine: str, definition: str) -> None:
    template = local_template()
    machines = {
        lid
        for lid, r in template.body["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    }
    assert machines == {"ScreeningStateMachine", "RescreenStateMachine"}
    props = template.body["Resources"][machine]["Properties"]
    assert "DefinitionS3Location" not in props and "DefinitionSubstitutions" not in props
    parts = props["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "<x>" for p in parts)
    asl = (REPO / "statemachines" / definition).read_text(encoding="utf-8")
    # Every ${Key} of the file was replaced; everything else is the file, byte for byte.
    assert re.sub(r"\$\{[A-Za-z]+\}", "<x>", asl) == text


def test_local_template_code_is_placeholders_and_functions_map_to_their_folders() -> None:
    template = local_template()
    functions = {
        lid: r for lid, r in template.body["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
    }
    assert set(functions) == set(template.functions)
    for lid, folder in template.functions.items():
        assert (Path(REPO) / "functions" / folder / "app.py").is_file(), lid
        assert set(functions[lid]["Properties"]["Code"]) == {"ZipFile"}
    assert "kyc-local-code" not in json.dumps(template.body)  # no pointer to a package that is not there


def test_event_bus_is_referenced_by_name_not_ref() -> None:
    body = json.dumps(local_template().body)

    assert '{"Ref": "DecisionEventBus"}' not in body
    assert '{"Fn::GetAtt": ["DecisionEventBus", "Name"]}' in body


def test_code_signing_is_left_out_locally_and_nothing_else() -> None:
    """moto's CloudFormation creates neither resource (issue 23): dropped with every reference to them."""
    from kyclocal.template import read_template

    body = local_template().body
    dropped = {"LambdaSigningProfile", "LambdaCodeSigningConfig"}
    source = read_template()["Resources"]
    assert {source[lid]["Type"] for lid in dropped} == {
        "AWS::Signer::SigningProfile",
        "AWS::Lambda::CodeSigningConfig",
    }
    assert not dropped & set(body["Resources"])
    text = json.dumps(body)
    assert not any(lid in text for lid in dropped) and "CodeSigningConfigArn" not in text
    # every other source resource is still there (SAM expands functions into more, never fewer, and
    # renames layer versions with a content hash)
    from kyclocal.template import OUT_OF_BAND_TYPES  # created beside moto's CloudFormation, not in it

    skipped = {"AWS::Serverless::LayerVersion", *OUT_OF_BAND_TYPES}
    kept = {lid for lid, r in source.items() if r["Type"] not in skipped} - dropped
    assert kept <= set(body["Resources"])
