"""Static tests of the optional VPC attachment in template.yaml (docs/deployment.md, "Running in a VPC").

Off by default: with the default parameters no EC2 resource, no VpcConfig and no ENI permission exists.
With VpcSubnetIds/VpcSecurityGroupIds set, every function runs in those subnets and its role gets the ENI
statements; with VpcId (and VpcRouteTableIds) also set, the stack creates the endpoints the functions need.
Conditions are evaluated here with a small evaluator of the intrinsics the template uses for them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.unit.iac.test_template import (
    FUNCTIONS,
    ROOT,
    UNSCOPABLE_ACTIONS,
    _as_list,
    _resources,
    _role_policy_documents,
    _statements,
)

NO_VALUE = {"Ref": "AWS::NoValue"}
VPC_PARAMETERS = {"VpcSubnetIds", "VpcSecurityGroupIds", "VpcId", "VpcRouteTableIds"}
VPC_CONDITIONS = {
    "CreateVpcEndpoints",
    "CreateVpcGatewayEndpoints",
    *(f"HasVpcSecurityGroup{i}" for i in range(2, 6)),
    "CreateRekognitionVpcEndpoint",  # face stage: only when Rekognition is the evidence source
}
ENI_SIDS = {"DescribeVpcNetworkInterfaces", "ManageVpcNetworkInterfaces"}
ENI_DESCRIBE = {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}
ENI_MANAGE = {
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
FAKE = {
    "VpcSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "VpcSecurityGroupIds": ["sg-0123456789abcdef0"],
    "VpcId": "vpc-0123456789abcdef0",
    "VpcRouteTableIds": ["rtb-0123456789abcdef0", "rtb-0123456789abcdef1"],
}
# boto3 service name -> VPC endpoint service suffix (com.amazonaws.<region>.<suffix>)
ENDPOINT_OF = {
    "s3": "s3",
    "dynamodb": "dynamodb",
    "sagemaker-runtime": "sagemaker.runtime",
    "sagemaker": "sagemaker.api",  # issue 24: the deployment witness; issue 21: registry, candidate endpoints
    "stepfunctions": "states",
    "events": "events",
    "sns": "sns",
    "ssm": "ssm",
    "sqs": "sqs",
    "kms": "kms",
    "logs": "logs",
    "sts": "sts",
    "xray": "xray",
    "rekognition": "rekognition",
}
GATEWAY_SERVICES = {"s3", "dynamodb"}


# --------------------------------------------------------------------------------------------------------
# a small evaluator of the condition intrinsics
# --------------------------------------------------------------------------------------------------------
def _parameter_values(tpl: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"AWS::Region": "eu-west-1", "AWS::Partition": "aws"}  # pseudo parameters
    for name, param in tpl["Parameters"].items():
        default = str(param.get("Default", ""))
        values[name] = default.split(",") if param["Type"] == "CommaDelimitedList" else default
    return values | overrides


def _value(expr: Any, params: dict[str, Any], tpl: dict[str, Any]) -> Any:
    if not isinstance(expr, dict):
        return [_value(e, params, tpl) for e in expr] if isinstance(expr, list) else expr
    ((fn, arg),) = expr.items()
    if fn == "Ref":
        return params[arg]
    if fn == "Condition":
        return _value(tpl["Conditions"][arg], params, tpl)
    if fn == "Fn::Not":
        return not _value(arg[0], params, tpl)
    if fn == "Fn::And":
        return all(_value(a, params, tpl) for a in arg)
    if fn == "Fn::Equals":
        return _value(arg[0], params, tpl) == _value(arg[1], params, tpl)
    if fn == "Fn::Join":
        return arg[0].join(_flatten(_value(arg[1], params, tpl)))
    if fn == "Fn::Split":
        return _value(arg[1], params, tpl).split(arg[0])
    if fn == "Fn::Select":
        return _value(arg[1], params, tpl)[int(arg[0])]
    raise AssertionError(f"unexpected intrinsic in a condition: {fn}")


def _flatten(items: list[Any]) -> list[str]:
    out: list[str] = []
    for item in items:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def _conditions(tpl: dict[str, Any], **overrides: Any) -> dict[str, bool]:
    params = _parameter_values(tpl, overrides)
    return {name: bool(_value(expr, params, tpl)) for name, expr in tpl["Conditions"].items()}


def _vpc_resources(tpl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"].startswith("AWS::EC2::")}


def _function_roles() -> list[str]:
    return [f"{lid}Role" for lid in FUNCTIONS]


def _role_statements(tpl: dict[str, Any], role: str) -> list[Any]:
    (document,) = _role_policy_documents(tpl, role)
    return document["Statement"]


# --------------------------------------------------------------------------------------------------------
# off by default
# --------------------------------------------------------------------------------------------------------
def test_vpc_parameters_default_to_empty(template):
    for name in VPC_PARAMETERS:
        assert template["Parameters"][name]["Default"] == "", name
    conditions = _conditions(template)
    assert not conditions["IsInVpc"]
    assert not any(conditions[name] for name in VPC_CONDITIONS)


def test_with_default_parameters_no_vpc_resource_is_created(template):
    resources = _vpc_resources(template)
    assert resources, "no EC2 resources: the VPC endpoints are missing"
    conditions = _conditions(template)
    for lid, res in resources.items():
        assert res.get("Condition") in VPC_CONDITIONS, f"{lid} is not conditional on the VPC parameters"
        assert not conditions[res["Condition"]], f"{lid} would be created with the default parameters"


def test_with_vpc_parameters_every_vpc_resource_is_created(template):
    conditions = _conditions(template, **FAKE)
    assert (
        conditions["IsInVpc"] and conditions["CreateVpcEndpoints"] and conditions["CreateVpcGatewayEndpoints"]
    )
    # one function security group given: one endpoint ingress rule
    assert not any(conditions[f"HasVpcSecurityGroup{i}"] for i in range(2, 6))
    five = [f"sg-0123456789abcdef{i}" for i in range(5)]
    rekognition = {"FaceEvidenceSource": "rekognition"}
    conditions = _conditions(template, **(FAKE | rekognition | {"VpcSecurityGroupIds": five}))
    assert all(conditions[res["Condition"]] for res in _vpc_resources(template).values())
    # a face stage that calls no Rekognition (local, the default; or the model's faces): no endpoint
    for source in ("local", "model"):
        other = _conditions(template, **(FAKE | {"FaceEvidenceSource": source}))
        assert other["CreateVpcEndpoints"] and not other["CreateRekognitionVpcEndpoint"]
    # subnets without VpcId: functions in the VPC, endpoints provided by the VPC owner
    conditions = _conditions(template, **(FAKE | {"VpcId": ""}))
    assert conditions["IsInVpc"] and not conditions["CreateVpcEndpoints"]
    # VpcId without route tables: interface endpoints only
    conditions = _conditions(template, **(FAKE | {"VpcRouteTableIds": [""]}))
    assert conditions["CreateVpcEndpoints"] and not conditions["CreateVpcGatewayEndpoints"]


def test_security_groups_are_required_with_subnets(template):
    rule = template["Rules"]["VpcSecurityGroupsWithSubnets"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::EachMemberEquals": [{"Ref": "VpcSubnetIds"}, ""]}]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Not": [{"Fn::EachMemberEquals": [{"Ref": "VpcSecurityGroupIds"}, ""]}]
    }


# --------------------------------------------------------------------------------------------------------
# every function gets the VpcConfig through the condition
# --------------------------------------------------------------------------------------------------------
def test_globals_attach_every_function_only_under_the_condition(template):
    assert template["Globals"]["Function"]["VpcConfig"] == {
        "Fn::If": [
            "IsInVpc",
            {"SubnetIds": {"Ref": "VpcSubnetIds"}, "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"}},
            NO_VALUE,
        ]
    }
    assert template["Conditions"]["IsInVpc"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "VpcSubnetIds"}]}, ""]}]
    }
    for lid, fn in _resources(template, "AWS::Serverless::Function").items():
        assert "VpcConfig" not in fn["Properties"], f"{lid} overrides the global VpcConfig"


def test_every_function_keeps_an_explained_vpc_skip(template):
    for lid, fn in _resources(template, "AWS::Serverless::Function").items():
        skips = {s["id"]: s["comment"] for s in fn["Metadata"]["checkov"]["skip"]}
        assert "VpcSubnetIds" in skips["CKV_AWS_117"] and "off by default" in skips["CKV_AWS_117"], lid


def test_transformed_functions_carry_the_conditional_vpc_config(transformed, template):
    fns = {k: v for k, v in transformed["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}
    assert set(fns) == set(FUNCTIONS)
    for lid, fn in fns.items():
        assert fn["Properties"]["VpcConfig"] == template["Globals"]["Function"]["VpcConfig"], lid


# --------------------------------------------------------------------------------------------------------
# ENI permissions: only under the condition, scoped where EC2 allows it
# --------------------------------------------------------------------------------------------------------
def test_every_function_role_has_the_eni_statements_only_under_the_condition(template):
    for role in _function_roles():
        conditional = [st for st in _role_statements(template, role) if "Fn::If" in st]
        eni = [st["Fn::If"] for st in conditional if st["Fn::If"][0] == "IsInVpc"]
        assert {branch[1]["Sid"] for branch in eni} == ENI_SIDS, role
        for _cond, then, otherwise in eni:
            assert otherwise == NO_VALUE, role
            assert then["Effect"] == "Allow"
            if then["Sid"] == "DescribeVpcNetworkInterfaces":
                assert set(then["Action"]) == ENI_DESCRIBE and then["Resource"] == "*"
            else:
                assert set(then["Action"]) == ENI_MANAGE
                assert "*" not in _as_list(then["Resource"]), f"{role}: ENI management on Resource '*'"
                resources = [r["Fn::Sub"] for r in then["Resource"]]
                assert all(r.startswith("arn:${AWS::Partition}:ec2:${AWS::Region}:") for r in resources)
                assert {r.rsplit(":", 1)[1] for r in resources} == {
                    "network-interface/*",
                    "subnet/*",
                    "security-group/*",
                }


def test_no_ec2_permission_outside_the_vpc_condition(template):
    roles = [lid for lid, res in template["Resources"].items() if res["Type"] == "AWS::IAM::Role"]
    assert len(roles) >= len(FUNCTIONS)
    for lid in roles:
        for document in _role_policy_documents(template, lid):
            for st in document["Statement"]:
                if "Fn::If" in st:
                    if st["Fn::If"][0] == "IsInVpc":
                        continue
                    branches = [b for b in st["Fn::If"][1:] if isinstance(b, dict) and "Action" in b]
                else:
                    branches = [st]
                for branch in branches:
                    ec2 = [a for a in _as_list(branch["Action"]) if a.startswith("ec2:")]
                    assert not ec2, f"{lid}: {ec2} outside the IsInVpc condition"


def test_only_the_describe_actions_joined_the_resource_star_allow_list():
    assert {a for a in UNSCOPABLE_ACTIONS if a.startswith("ec2:")} == ENI_DESCRIBE


# --------------------------------------------------------------------------------------------------------
# endpoints: the services the code calls, private DNS, reachable from the functions only
# --------------------------------------------------------------------------------------------------------
def _services_called_by_the_code() -> set[str]:
    sources = [*ROOT.glob("functions/*/app.py"), *(ROOT / "layers" / "core" / "kyc").rglob("*.py")]
    called: set[str] = set()
    for path in sources:
        text = path.read_text(encoding="utf-8")
        called |= set(re.findall(r"""client\(\s*["']([a-z0-9-]+)["']""", text))
        if "utilities import parameters" in text:  # Powertools parameters: SSM GetParameter
            called.add("ssm")
    return called


def _endpoints(tpl: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    out = {}
    for lid, res in _resources(tpl, "AWS::EC2::VPCEndpoint").items():
        name = res["Properties"]["ServiceName"]["Fn::Sub"]
        assert name.startswith("com.amazonaws.${AWS::Region}."), lid
        out[name.removeprefix("com.amazonaws.${AWS::Region}.")] = (lid, res)
    return out


def test_endpoints_cover_every_service_the_functions_call(template):
    called = _services_called_by_the_code()
    assert {"s3", "dynamodb", "sagemaker-runtime", "stepfunctions", "sns", "ssm"} <= called
    assert template["Globals"]["Function"]["Tracing"] == "Active"  # the X-Ray daemon sends segments
    needed = {ENDPOINT_OF[service] for service in called} | {"xray"}
    endpoints = _endpoints(template)
    missing = needed - set(endpoints)
    assert not missing, f"no VPC endpoint for {sorted(missing)}"
    assert set(endpoints) == set(ENDPOINT_OF.values()), "an endpoint nobody documented"


def test_interface_endpoints_use_private_dns_the_function_subnets_and_their_own_group(template):
    for service, (lid, res) in _endpoints(template).items():
        props = res["Properties"]
        assert props["VpcId"] == {"Ref": "VpcId"}, lid
        if service in GATEWAY_SERVICES:
            assert res["Condition"] == "CreateVpcGatewayEndpoints", lid
            assert props["VpcEndpointType"] == "Gateway", lid
            assert props["RouteTableIds"] == {"Ref": "VpcRouteTableIds"}, lid
            continue
        expected = "CreateRekognitionVpcEndpoint" if service == "rekognition" else "CreateVpcEndpoints"
        assert res["Condition"] == expected, lid
        assert props["VpcEndpointType"] == "Interface", lid
        assert props["PrivateDnsEnabled"] is True, lid
        assert props["SubnetIds"] == {"Ref": "VpcSubnetIds"}, lid
        assert props["SecurityGroupIds"] == [{"Ref": "VpcEndpointSecurityGroup"}], lid
        (st,) = _statements(props["PolicyDocument"])
        assert st["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}, lid


def test_endpoint_security_group_admits_https_from_the_function_groups_only(template):
    sg = template["Resources"]["VpcEndpointSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in sg
    (egress,) = sg["SecurityGroupEgress"]
    assert egress["CidrIp"] == "127.0.0.1/32"  # replaces the default allow-all egress
    rules = _resources(template, "AWS::EC2::SecurityGroupIngress")
    assert len(rules) == 5  # Lambda allows at most 5 security groups per function
    for i, (lid, rule) in enumerate(sorted(rules.items())):
        props = rule["Properties"]
        assert props["GroupId"] == {"Ref": "VpcEndpointSecurityGroup"}, lid
        assert (props["IpProtocol"], props["FromPort"], props["ToPort"]) == ("tcp", 443, 443), lid
        assert "CidrIp" not in props and "CidrIpv6" not in props, lid
        source = json.dumps(props["SourceSecurityGroupId"])
        assert '"VpcSecurityGroupIds"' in source and f'"Fn::Select": [{i}' in source, lid


def _role_actions(tpl: dict[str, Any], prefix: str) -> set[str]:
    actions = set()
    for role in _function_roles():
        (document,) = _role_policy_documents(tpl, role)
        for st in _statements(document):
            actions |= {a for a in _as_list(st["Action"]) if a.startswith(prefix)}
    return actions


def test_gateway_endpoint_policies_admit_the_stack_data_and_every_action_the_roles_use(template):
    endpoints = _endpoints(template)
    (s3,) = _statements(endpoints["s3"][1]["Properties"]["PolicyDocument"])
    assert set(s3["Action"]) == _role_actions(template, "s3:")
    buckets = {"IntakeBucket", "WorkBucket", "AuditBucket", "ReviewBucket"}
    model_data = {  # issue 24: the deployment witness reads the model data's checksum, when a bucket is set
        "Fn::If": [
            "HasModelDataBucket",
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${ModelDataBucket}/${ModelDataPrefix}*"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert {json.dumps(r) for r in s3["Resource"]} == {
        json.dumps(r)
        for b in sorted(buckets)
        for r in ({"Fn::GetAtt": [b, "Arn"]}, {"Fn::Sub": f"${{{b}.Arn}}/*"})
    } | {json.dumps(model_data)}
    (ddb,) = _statements(endpoints["dynamodb"][1]["Properties"]["PolicyDocument"])
    assert set(ddb["Action"]) == _role_actions(template, "dynamodb:")
    assert ddb["Resource"] == [
        {"Fn::GetAtt": ["DecisionsTable", "Arn"]},
        {"Fn::Sub": "${DecisionsTable.Arn}/index/*"},
        {"Fn::GetAtt": ["ReuseIndexTable", "Arn"]},
    ]
    for st in (s3, ddb):
        assert st["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
