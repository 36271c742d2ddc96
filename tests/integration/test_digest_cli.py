"""`kycscreen digest` and `kycscreen verify-digests` as separate commands over one saved local state.

Each command starts its own local stack from the state directory, as a user's shell session would:
the digests, the evidence and moto's local signing key must survive between them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kyclocal.cli import main
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def test_digest_then_verify_in_separate_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / ".local-stack"
    clip = make_clip(tmp_path / "selfie.mp4", width=320, height=240, fps=15, seconds=2.0)
    assert main(["run", "--json", "--frames", "8", "--state-dir", str(state), str(clip)]) == 0
    capsys.readouterr()
    pem = tmp_path / "digest-key.pem"
    # a decision and no digest yet: digests are expected, so this is a failure, not "nothing to verify"
    code, report = _json(["verify-digests", "--json", "--state-dir", str(state)], capsys)
    assert code == 1 and report["expected"] and report["problems"][0].startswith("missing: no digest"), report

    code, first = _json(["digest", "--state-dir", str(state), "--public-key", str(pem)], capsys)
    assert code == 0 and first["sequence"] == 1 and first["entries"] == 3  # the item and two documents
    # the auditor's record of the genesis, kept in the state directory, never rewritten
    assert (state / "digest-genesis.sha256").read_text().strip() == first["genesis_sha256"]
    assert pem.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    code, report = _json(
        ["verify-digests", "--json", "--state-dir", str(state), "--public-key", str(pem)], capsys
    )
    assert code == 0 and report["verified"] and report["entries"] == 3, report

    code, second = _json(["digest", "--state-dir", str(state)], capsys)  # the chain goes on next time
    assert code == 0 and second["sequence"] == 2 and second["period"]["start"] == first["period"]["end"]
    code, report = _json(
        ["verify-digests", "--json", "--state-dir", str(state), "--public-key", str(pem)], capsys
    )
    assert code == 0 and report["digests"] == 2, report["problems"]

    with LocalStack(LocalStackSettings(state_dir=state, triggers=False)) as stack:  # hide digest 1
        stack.client("s3").delete_object(Bucket=stack.resources.audit_bucket, Key=first["digest_key"])
    code, report = _json(
        ["verify-digests", "--json", "--state-dir", str(state), "--public-key", str(pem)], capsys
    )
    assert code == 1 and report["problems"] == [
        f"deleted: {first['digest_key']} is hidden by a delete marker"
    ]
    assert main(["verify-digests", "--state-dir", str(state)]) == 1  # readable report, same verdict
    assert "verification FAILED" in capsys.readouterr().out


def test_verify_digests_without_state_or_digests_has_nothing_to_verify(tmp_path: Path) -> None:
    assert main(["verify-digests", "--state-dir", str(tmp_path / "none")]) == 2
    assert main(["digest", "--state-dir", str(tmp_path / "none")]) == 2


def test_erase_of_a_saved_decision_then_digest_lineage_and_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 23: `kycscreen erase` works on the state `kycscreen run` saved (it answered PENDING on an
    empty stack), its erasure.json and the rewritten item are listed by the next digest, and both
    verifiers pass on the erased submission; a later change to the erased item is caught."""
    state = tmp_path / ".local-stack"
    clip = make_clip(tmp_path / "selfie.mp4", width=320, height=240, fps=15, seconds=2.0)
    assert main(["run", "--json", "--frames", "8", "--state-dir", str(state), str(clip)]) == 0
    sid = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["submission_id"]
    assert main(["digest", "--state-dir", str(state)]) == 0
    capsys.readouterr()

    assert main(["erase", "--submission", sid, "--state-dir", str(state)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["erase"]["outcomes"] == {"ERASED": 1}
    assert answer["records"][sid]["erased_at"] and "client_reference" not in answer["records"][sid]

    code, after = _json(["digest", "--state-dir", str(state)], capsys)
    assert code == 0 and after["sequence"] == 2
    with LocalStack(LocalStackSettings(state_dir=state, triggers=False)) as stack:
        body = stack.client("s3").get_object(Bucket=stack.resources.audit_bucket, Key=after["digest_key"])
        listed = {e["key"] for e in json.loads(body["Body"].read())["digest"]["entries"]}
    assert {f"decisions/{sid}/erasure.json", f"item:{sid}"} <= listed
    code, report = _json(["verify-digests", "--json", "--state-dir", str(state)], capsys)
    assert code == 0 and report["problems"] == [], report
    assert main(["lineage", "--state-dir", str(state), sid]) == 0  # erased objects excused by erase's record
    capsys.readouterr()

    with LocalStack(LocalStackSettings(state_dir=state, triggers=False)) as stack:  # an insider edits it
        stack.client("dynamodb").update_item(
            TableName=stack.resources.decisions_table,
            Key={"submission_id": {"S": sid}},
            UpdateExpression="SET decision = :p",
            ExpressionAttributeValues={":p": {"S": "PASS"}},
        )
    code, report = _json(["verify-digests", "--json", "--state-dir", str(state)], capsys)
    assert code == 1 and any(p.startswith(f"altered: decision item {sid}") for p in report["problems"])
