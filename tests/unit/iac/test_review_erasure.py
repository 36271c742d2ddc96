"""Erasure reaches the review API's tables (issue 20, GDPR Art. 17): the erase role may read a case's
review records, rewrite them and delete its lease and screening, and nothing more; the function is told
the tables only when the API exists."""

from __future__ import annotations

import json
from typing import Any

ROLE = "EraseSubmissionFunctionRole"


def _policy_statements(tpl: dict[str, Any], role: str) -> list[Any]:
    return [
        st
        for res in tpl["Resources"].values()
        if res["Type"] == "AWS::IAM::Policy" and res["Properties"]["Roles"] == [{"Ref": role}]
        for st in res["Properties"]["PolicyDocument"]["Statement"]
    ]


def _about(statements: list[Any], table: str) -> list[Any]:
    return [st for st in statements if f'"{table}"' in json.dumps(st) or f"{table}." in json.dumps(st)]


def test_erase_role_reaches_review_records_only_when_the_api_exists_and_only_with_what_it_uses(template):
    statements = _policy_statements(template, ROLE)
    reviews = _about(statements, "ReviewsTable")
    assert len(reviews) == 1
    condition, granted, otherwise = reviews[0]["Fn::If"]
    assert condition == "IsScreeningApiEnabled" and otherwise == {"Ref": "AWS::NoValue"}
    assert sorted(granted["Action"]) == ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"]
    assert granted["Resource"] == {"Fn::GetAtt": ["ReviewsTable", "Arn"]}  # the table, not its indexes


def test_erase_role_may_only_read_and_delete_screening_items_and_find_them_by_reference(template):
    statements = _policy_statements(template, ROLE)
    screenings = _about(statements, "ScreeningsTable")
    assert len(screenings) == 2
    grants = {}
    for statement in screenings:
        condition, granted, otherwise = statement["Fn::If"]
        assert condition == "IsScreeningApiEnabled" and otherwise == {"Ref": "AWS::NoValue"}
        grants[json.dumps(granted["Resource"], sort_keys=True)] = sorted(granted["Action"])
    assert grants == {
        json.dumps({"Fn::GetAtt": ["ScreeningsTable", "Arn"]}): ["dynamodb:DeleteItem", "dynamodb:GetItem"],
        # declarations never uploaded are found by their reference (issue 20), no Scan
        json.dumps({"Fn::Sub": "${ScreeningsTable.Arn}/index/ClientReferenceIndex"}): ["dynamodb:Query"],
    }


def test_erase_role_may_only_delete_idempotency_records_by_id(template):
    statements = _policy_statements(template, ROLE)
    (idempotency,) = _about(statements, "ApiIdempotencyTable")
    condition, granted, otherwise = idempotency["Fn::If"]
    assert condition == "IsScreeningApiEnabled" and otherwise == {"Ref": "AWS::NoValue"}
    assert granted["Action"] == ["dynamodb:DeleteItem"]
    assert granted["Resource"] == {"Fn::GetAtt": ["ApiIdempotencyTable", "Arn"]}
    env = template["Resources"]["EraseSubmissionFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KYC_IDEMPOTENCY_TABLE"] == {
        "Fn::If": ["IsScreeningApiEnabled", {"Ref": "ApiIdempotencyTable"}, ""]
    }


def test_no_other_role_but_the_api_and_erasure_writes_the_review_tables(template):
    writers = set()
    for res in template["Resources"].values():
        if res["Type"] != "AWS::IAM::Policy":
            continue
        for st in res["Properties"]["PolicyDocument"]["Statement"]:
            text = json.dumps(st)
            writes = any(
                a in text for a in ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem")
            )
            if writes and ("ReviewsTable" in text or "ScreeningsTable" in text):
                writers.add(res["Properties"]["Roles"][0]["Ref"])
    assert writers == {"ScreeningApiFunctionRole", ROLE}


def test_erase_function_is_told_the_api_tables_under_the_api_condition(template):
    env = template["Resources"]["EraseSubmissionFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KYC_REVIEWS_TABLE"] == {"Fn::If": ["IsScreeningApiEnabled", {"Ref": "ReviewsTable"}, ""]}
    assert env["KYC_SCREENINGS_TABLE"] == {
        "Fn::If": ["IsScreeningApiEnabled", {"Ref": "ScreeningsTable"}, ""]
    }
