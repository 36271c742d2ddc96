"""template.yaml as moto's CloudFormation can create it: the one source of the local stack's resources.

The template goes through ``aws-sam-translator`` (the transform ``sam deploy`` runs), then through
the few rewrites moto needs and that change nothing a handler sees:

- code and layer packages become placeholder zips (the router runs ``functions/<folder>/app.py``);
- the state machine's definition file (``DefinitionS3Location``, or ``DefinitionUri`` of a Serverless
  state machine) is inlined with its ``DefinitionSubstitutions`` (moto ignores
  ``DefinitionSubstitutions`` and cannot fetch from S3), so the deployed ASL file stays the one source;
- a statement of an ``AWS::IAM::Policy`` under ``Fn::If`` becomes a Policy resource under that
  condition (moto reads the ``AWS::NoValue`` of a false ``Fn::If`` in a Policy's document as a
  syntax error);
- ``Ref`` to an ``AWS::Events::EventBus`` becomes ``Fn::GetAtt Name`` (moto's Ref returns an object;
  both are the bus name in CloudFormation);
- Lambda code signing (issue 23) is left out: moto's CloudFormation creates neither
  ``AWS::Signer::SigningProfile`` nor ``AWS::Lambda::CodeSigningConfig``, and the local code is
  placeholders the router never runs, so the functions lose their ``CodeSigningConfigArn`` too.

Kept as written, though moto does not emulate them: the state machine's ``EncryptionConfiguration``
(moto's CloudFormation accepts and ignores it; the local execution history is plaintext in moto's
memory), and the key policy (moto's KMS does not enforce it).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import logging
import os
import re
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from kyclocal.secrets import SECRET_TYPE, local_secret_arn

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
REGION = "us-east-1"
_PLACEHOLDER_BUCKET = "kyc-local-code"  # never created: the rewritten template carries no S3 pointer


@dataclass(frozen=True)
class LocalTemplate:
    """The translated template, ready for CreateStack, and what the local stack needs to know of it."""

    body: dict[str, Any]
    functions: dict[str, str]  # logical id -> folder under functions/
    parameters: dict[str, dict[str, Any]]  # the template's Parameters section
    # resources moto's CloudFormation cannot create, taken out of the body and created by the local
    # stack itself from these same properties (kyclocal.cognito): logical id -> resource
    out_of_band: dict[str, Any] = field(default_factory=dict)


def read_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml with its short tags as intrinsic functions (what the SAM translator expects)."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text(encoding="utf-8"))


@cache
def _translated(path: Path, mtime_ns: int) -> LocalTemplate:
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # The translator logs notes about its own feature flags at WARNING: not news for anyone here.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    source = read_template(path)
    definitions: dict[str, str] = {}
    functions: dict[str, str] = {}
    for logical_id, resource in source.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            functions[logical_id] = Path(props["CodeUri"]).name
        definition_file = _definition_file(resource)
        if definition_file is not None:
            definitions[logical_id] = (path.parent / definition_file).read_text(encoding="utf-8")
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(props.get(key), str):  # the translator wants S3 URIs; the rewrite below drops them
                props[key] = f"s3://{_PLACEHOLDER_BUCKET}/{props[key]}"
    # The local stack's region; the session only names it (the translator makes no AWS call here).
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=REGION))
    body = translator.translate(source, parameter_values={}, get_managed_policy_map=dict)
    _conditional_statements_as_policies(body)
    out_of_band = _take_out_of_band(body)
    buses = {lid for lid, r in body["Resources"].items() if r.get("Type") == "AWS::Events::EventBus"}
    body = _bus_refs_by_name(body, buses)
    for logical_id in [lid for lid, r in body["Resources"].items() if r.get("Type") in _NOT_CREATED_BY_MOTO]:
        del body["Resources"][logical_id]
    for logical_id, resource in body["Resources"].items():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Lambda::Function":
            props.pop("CodeSigningConfigArn", None)
            props["Code"] = {
                "ZipFile": f"# routed to functions/{functions.get(logical_id, '?')}/app.py locally"
            }
        elif kind == "AWS::Lambda::LayerVersion":
            props["Content"] = {"ZipFile": _EMPTY_ZIP}
        elif kind == "AWS::StepFunctions::StateMachine" and logical_id in definitions:
            props.pop("DefinitionS3Location", None)
            substitutions = props.pop("DefinitionSubstitutions", {})
            props["DefinitionString"] = _substituted(definitions[logical_id], substitutions)
    return LocalTemplate(
        body=body, functions=functions, parameters=dict(source.get("Parameters", {})), out_of_band=out_of_band
    )


# moto's CloudFormation has no model for the Cognito types (moto's cognito-idp API does): created out of
# band. A REST API's deployment and stage fail in moto (it ignores the OpenAPI body, so the API has no
# methods to deploy); kyclocal.api_gateway serves the template's routes instead.
OUT_OF_BAND_TYPES = (
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    "AWS::SecretsManager::Secret",  # issue 20: the webhook's signing key (kyclocal.secrets)
)


def _take_out_of_band(body: dict[str, Any]) -> dict[str, Any]:
    """Remove the resources moto cannot create; references to them become placeholders (moto would
    refuse a reference to an undefined resource), and outputs naming them are dropped: the local stack
    reports the ids of what it created itself (``kyclocal.cognito``)."""
    taken = {lid: r for lid, r in body["Resources"].items() if r.get("Type") in OUT_OF_BAND_TYPES}
    for lid in taken:
        del body["Resources"][lid]

    def refers(node: Any) -> bool:
        if isinstance(node, dict):
            getatt = node.get("Fn::GetAtt")
            if node.get("Ref") in taken or (isinstance(getatt, list) and getatt and getatt[0] in taken):
                return True
            return any(refers(value) for value in node.values())
        return isinstance(node, list) and any(refers(value) for value in node)

    def placeholder(node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1 and node.get("Ref") in taken:
                if taken[node["Ref"]].get("Type") == SECRET_TYPE:  # a secret's Ref is its ARN
                    return local_secret_arn(node["Ref"], REGION, "123456789012")
                return f"local-out-of-band-{node['Ref']}"
            getatt = node.get("Fn::GetAtt") if len(node) == 1 else None
            if isinstance(getatt, list) and getatt and getatt[0] in taken:
                return f"arn:aws:cognito-idp:{REGION}:123456789012:userpool/local-out-of-band-{getatt[0]}"
            sub = node.get("Fn::Sub") if len(node) == 1 else None
            if isinstance(sub, str) and any("${" + lid in sub for lid in taken):
                for lid in taken:
                    sub = re.sub(r"\$\{" + lid + r"(\.[A-Za-z]+)?\}", f"local-out-of-band-{lid}", sub)
                return {"Fn::Sub": sub}
            return {key: placeholder(value) for key, value in node.items()}
        if isinstance(node, list):
            return [placeholder(value) for value in node]
        return node

    body["Outputs"] = {k: v for k, v in body.get("Outputs", {}).items() if not refers(v)}
    body["Resources"] = placeholder(body["Resources"])
    return taken


# Resource types moto's CloudFormation cannot create, whose absence changes nothing a handler sees.
_NOT_CREATED_BY_MOTO = frozenset({"AWS::Signer::SigningProfile", "AWS::Lambda::CodeSigningConfig"})

# Where each state machine type names its local ASL file (sam build / sam package upload either).
_DEFINITION_FILE_PROPERTY = {
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::StepFunctions::StateMachine": "DefinitionS3Location",
}


def _definition_file(resource: dict[str, Any]) -> str | None:
    """The local ASL path of a state machine resource, or None (inline or S3 definition, other type)."""
    prop = _DEFINITION_FILE_PROPERTY.get(resource.get("Type", ""))
    value = resource.get("Properties", {}).get(prop) if prop else None
    return value if isinstance(value, str) else None


def state_machine_definition(path: Path = TEMPLATE) -> tuple[Path, dict[str, Any]]:
    """The ASL file and DefinitionSubstitutions the template deploys (the local run uses the same)."""
    for resource in read_template(path).get("Resources", {}).values():
        definition_file = _definition_file(resource)
        if definition_file is not None:
            props = resource["Properties"]
            return path.parent / definition_file, dict(props.get("DefinitionSubstitutions", {}))
    raise LookupError(f"{path.name} declares no state machine with a local definition file")


def local_template(path: Path = TEMPLATE) -> LocalTemplate:
    """The translation takes about 0.6 s: it is kept per process, and on disk under build/ by the
    hash of everything it reads (template, state machine files, translator version, this module)."""
    translated = _cached(path.resolve())
    return LocalTemplate(
        copy.deepcopy(translated.body),
        dict(translated.functions),
        translated.parameters,
        copy.deepcopy(translated.out_of_band),
    )


def _cached(path: Path) -> LocalTemplate:
    from importlib.metadata import version

    digest = hashlib.sha256(version("aws-sam-translator").encode())
    digest.update(path.read_bytes())
    digest.update(Path(__file__).read_bytes())  # a change to these rewrites is a new translation
    for asl in sorted((path.parent / "statemachines").glob("*.json")):
        digest.update(asl.read_bytes())
    cache = path.parent / "build" / "local-stack" / f"template-{digest.hexdigest()[:32]}.json"
    try:
        saved = json.loads(cache.read_text(encoding="utf-8"))
        return LocalTemplate(saved["body"], saved["functions"], saved["parameters"], saved["out_of_band"])
    except (OSError, ValueError, KeyError):
        pass
    translated = _translated(path, path.stat().st_mtime_ns)
    with suppress(OSError):  # a read-only checkout translates every time
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(
            json.dumps(
                {
                    "body": translated.body,
                    "functions": translated.functions,
                    "parameters": translated.parameters,
                    "out_of_band": translated.out_of_band,
                }
            ),
            encoding="utf-8",
        )
        partial.replace(cache)
    return translated


def function_folders(path: Path = TEMPLATE) -> dict[str, str]:
    """Logical id of every function -> its folder under functions/, read from the CodeUri."""
    return local_template(path).functions


def parameter_defaults(path: Path = TEMPLATE) -> dict[str, str]:
    return {
        name: str(spec["Default"])
        for name, spec in local_template(path).parameters.items()
        if "Default" in spec
    }


def _substituted(text: str, substitutions: dict[str, Any]) -> dict[str, Any]:
    """``${Key}`` replaced by its substitution, as Step Functions does, written as ``Fn::Join`` (moto's
    ``Fn::Sub`` runs Python's string.Template, which turns the ASL's ``$$.`` context paths into ``$.``)."""
    if not substitutions:
        return {"Fn::Join": ["", [text]]}
    pattern = re.compile("|".join(re.escape("${" + key + "}") for key in substitutions))
    parts: list[Any] = []
    position = 0
    for match in pattern.finditer(text):
        parts.append(text[position : match.start()])
        parts.append(substitutions[match.group()[2:-1]])
        position = match.end()
    parts.append(text[position:])
    return {"Fn::Join": ["", parts]}


def _conditional_statements_as_policies(body: dict[str, Any]) -> None:
    """A statement ``Fn::If [condition, statement, AWS::NoValue]`` of an ``AWS::IAM::Policy`` becomes a
    Policy resource of its own under that ``Condition``: the same permissions in every case, but moto
    reads the ``AWS::NoValue`` a false ``Fn::If`` leaves in a Policy's ``Statement`` as a syntax error."""
    resources = body["Resources"]
    for logical_id, resource in list(resources.items()):
        if resource.get("Type") != "AWS::IAM::Policy":
            continue
        document = resource["Properties"]["PolicyDocument"]
        kept: list[Any] = []
        for index, statement in enumerate(document.get("Statement", [])):
            branches = statement.get("Fn::If") if isinstance(statement, dict) else None
            if not (isinstance(branches, list) and branches[2] == {"Ref": "AWS::NoValue"}):
                kept.append(statement)
                continue
            split = copy.deepcopy(resource)
            split["Properties"]["PolicyName"] = f"{resource['Properties']['PolicyName']}-{index}"
            split["Properties"]["PolicyDocument"] = {**document, "Statement": [branches[1]]}
            split["Condition"] = branches[0]  # an AND with the resource's own condition, if any
            if "Condition" in resource:
                name = f"{logical_id}Statement{index}Condition"
                body.setdefault("Conditions", {})[name] = {
                    "Fn::And": [{"Condition": resource["Condition"]}, {"Condition": branches[0]}]
                }
                split["Condition"] = name
            resources[f"{logical_id}Statement{index}"] = split
        document["Statement"] = kept


def _bus_refs_by_name(node: Any, buses: set[str]) -> Any:
    if isinstance(node, dict):
        if len(node) == 1 and node.get("Ref") in buses:
            return {"Fn::GetAtt": [node["Ref"], "Name"]}
        return {key: _bus_refs_by_name(value, buses) for key, value in node.items()}
    if isinstance(node, list):
        return [_bus_refs_by_name(value, buses) for value in node]
    return node


def _empty_zip() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "README", "a local placeholder: the local stack runs the layer's code from the source tree"
        )
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_EMPTY_ZIP = _empty_zip()


def dumps(template: LocalTemplate) -> str:
    return json.dumps(template.body)
