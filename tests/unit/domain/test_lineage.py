"""Lineage from log records: ordering, gaps, duplicates, cross-stage hashes, and tampering."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from kyc.domain.lineage import (
    LOG_GROUP_FIELD,
    EvidenceRetention,
    ExecutionWitness,
    LineageError,
    chain_from_logs,
    is_failure,
    lineage_key,
    verify_chain,
    verify_lineage,
    witness_from_history,
)

SID = "a" * 64
ARN = f"arn:aws:states:us-east-1:123456789012:execution:kyc:{SID}"
MODEL = {"name": "m", "version": "1"}
POLICY = {"version": "2026-11-default"}
AUDIT, WORK = "audit", "work"


def h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def world() -> tuple[list[dict], dict[tuple[str, str], bytes], dict]:
    """Log records, stored objects and the decision item of one intact screening."""
    source = b"video"
    frames = [b"frame-0", b"frame-1"]
    prefix = f"frames/{SID}/"
    manifest = {
        "prefix": prefix,
        "source_sha256": h(source),
        "frames": [{"index": i, "file": f"{i:03d}.jpg", "sha256": h(f)} for i, f in enumerate(frames)],
    }
    result = {"status": "SCORED", "request_sha256": "req", "response_sha256": "resp", "model": MODEL}
    scores = {"frames": []}
    store = {
        (WORK, prefix + "manifest.json"): canonical(manifest),
        (WORK, prefix + "000.jpg"): frames[0],
        (WORK, prefix + "001.jpg"): frames[1],
        (WORK, f"scores/{SID}/batch-000.json"): canonical(result),
        (AUDIT, f"decisions/{SID}/scores.json"): canonical(scores),
        ("intake", "uploads/x.mp4"): source,
    }
    lineage = {
        "submission_id": SID,
        "execution_arn": ARN,
        "source": {"sha256": h(source)},
        "frames": {
            "bucket": WORK,
            "manifest_key": prefix + "manifest.json",
            "manifest_sha256": h(canonical(manifest)),
            "items": [{"key": prefix + m["file"], "sha256": m["sha256"]} for m in manifest["frames"]],
        },
        "scoring": [
            {
                "batch_index": 0,
                "bucket": WORK,
                "result_key": f"scores/{SID}/batch-000.json",
                "result_sha256": h(canonical(result)),
                "request_sha256": "req",
                "response_sha256": "resp",
            }
        ],
        "decision": {
            "decision": "REVIEW",
            "reasons": ["NO_FACE"],
            "model": MODEL,
            "policy": POLICY,
            "bucket": AUDIT,
            "scores_key": f"decisions/{SID}/scores.json",
            "scores_sha256": h(canonical(scores)),
        },
    }
    store[(AUDIT, lineage_key(SID))] = canonical(lineage)
    code = {"package": "0.1.0", "revision": "abc"}

    def rec(stage: str, fn: str, ts: str, **entry: object) -> dict:
        body = {"stage": stage, "submission_id": SID, "code_version": code, **entry}
        return {"message": "lineage", "function_name": fn, "timestamp": ts, "lineage": body}

    records = [
        rec(
            "decide",
            "Decide",
            "4",
            inputs={
                "manifest_sha256": lineage["frames"]["manifest_sha256"],
                "batches": [f"scores/{SID}/batch-000.json"],
            },
            outputs={"decision": "REVIEW", "reasons": ["NO_FACE"], "lineage_sha256": h(canonical(lineage))},
            policy=POLICY,
            model=MODEL,
            execution_arn=ARN,
        ),
        rec(
            "score",
            "Score",
            "3",
            batch_index=0,
            inputs={"frames": [h(f) for f in frames], "request_sha256": "req"},
            outputs={"status": "SCORED", "response_sha256": "resp", "result_sha256": h(canonical(result))},
            model=MODEL,
        ),
        rec(
            "extract",
            "Extract",
            "2",
            inputs={"sha256": h(source)},
            outputs={
                "manifest_key": prefix + "manifest.json",
                "manifest_sha256": h(canonical(manifest)),
                "frames": [h(f) for f in frames],
            },
        ),
        rec(
            "validate",
            "Validate",
            "1",
            inputs={"object": "sha256:x"},
            outputs={"sha256": h(source), "accepted": True, "reason": None},
        ),
        {"message": "admission", "submission_id": SID},
        {"message": "lineage", "lineage": {"stage": "validate", "submission_id": "b" * 64, "outputs": {}}},
    ]
    item = {
        "submission_id": SID,
        "decision": "REVIEW",
        "reasons": ["NO_FACE"],
        "model": MODEL,
        "policy": POLICY,
        "execution_arn": ARN,
        "source": {"bucket": "intake", "key": "uploads/x.mp4", "version_id": "v1", "sha256": h(source)},
        "artefacts": {"lineage_sha256": h(canonical(lineage)), "scores_sha256": h(canonical(scores))},
    }
    return records, store, item


def verify(records: list[dict], store: dict, item: dict | None = None, **strict: object) -> list[str]:
    chain = chain_from_logs(records, SID)
    return verify_chain(
        chain,
        lambda b, k: store.get((b, k)),
        audit_bucket=AUDIT,
        decision_item=item,
        fetch_source=lambda b, k, v: store.get((b, k)),
        **strict,  # type: ignore[arg-type]
    )


# The template's lifecycle: work objects 1 day, uploads 30 days, decision evidence 5 years.
RETENTION = EvidenceRetention(days={WORK: 1, "intake": 30, AUDIT: 1825}, erasable=frozenset({WORK, "intake"}))
UPLOADED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def witness(item: dict, **changes: object) -> ExecutionWitness:
    """What Step Functions recorded for the execution (started at UPLOADED), as for a real decision."""
    source = item["source"]
    fields = {
        "arn": ARN,
        "found": True,
        "started_at": UPLOADED,
        "status": "SUCCEEDED",
        "submission": {"submission_id": SID, "bucket": source["bucket"], "version_id": source["version_id"]},
        "decided": (item["decision"],),
    } | changes
    return ExecutionWitness(**fields)  # type: ignore[arg-type]


def strictly(records: list[dict], store: dict, item: dict, days_later: float, **changes: object) -> list[str]:
    return verify(
        records,
        store,
        item,
        retention=RETENTION,
        now=UPLOADED + timedelta(days=days_later),
        witness=witness(item, **changes),
    )


def stage(records: list[dict], name: str) -> dict:
    return next(r["lineage"] for r in records if (r.get("lineage") or {}).get("stage") == name)


def test_chain_from_logs_intact_records_ordered_by_stage_without_problems() -> None:
    records, _, _ = world()
    chain = chain_from_logs(records, SID)

    assert [s.label for s in chain.stages] == ["validate", "extract", "score[0]", "decide"]
    assert chain.problems == ()
    assert (chain.decision, chain.execution_arn) == ("REVIEW", ARN)


def test_chain_from_logs_several_submissions_without_id_raises() -> None:
    records, _, _ = world()
    with pytest.raises(LineageError):
        chain_from_logs(records)


def test_chain_from_logs_missing_extract_reports_gap() -> None:
    records, _, _ = world()
    records = [r for r in records if (r.get("lineage") or {}).get("stage") != "extract"]

    problems = chain_from_logs(records, SID).problems

    assert "missing stage: extract (the upload was accepted)" in problems


def test_chain_from_logs_missing_score_batch_reports_gap() -> None:
    records, _, _ = world()
    records = [r for r in records if (r.get("lineage") or {}).get("stage") != "score"]

    assert chain_from_logs(records, SID).problems == (
        f"missing stage: score[0] (decide read scores/{SID}/batch-000.json)",
    )


def test_chain_from_logs_missing_decide_reports_gap() -> None:
    records, _, _ = world()
    records = [r for r in records if (r.get("lineage") or {}).get("stage") != "decide"]

    assert (
        "missing stage: decide (no terminal record for this submission)"
        in chain_from_logs(records, SID).problems
    )


def test_chain_from_logs_duplicate_decide_reported() -> None:
    records, _, _ = world()
    second = copy.deepcopy(records[0])
    second["lineage"]["outputs"]["decision"] = "PASS"
    second["timestamp"] = "5"

    problems = chain_from_logs([*records, second], SID).problems

    assert problems == ("duplicate terminal record: decide says PASS, decide already said REVIEW",)


def test_chain_from_logs_identical_retry_kept_once() -> None:
    records, _, _ = world()
    chain = chain_from_logs([*records, copy.deepcopy(records[3])], SID)

    assert (len(chain.stages), chain.problems) == (4, ())


def test_chain_from_logs_extract_read_other_bytes_reports_mismatch() -> None:
    records, _, _ = world()
    stage(records, "extract")["inputs"]["sha256"] = "f" * 64

    problems = chain_from_logs(records, SID).problems

    assert problems[0].startswith(f"hash mismatch extract->validate: extract read {'f' * 64}")


def test_chain_from_logs_scored_foreign_frame_reports_it() -> None:
    records, _, _ = world()
    stage(records, "score")["inputs"]["frames"][1] = "e" * 64

    assert chain_from_logs(records, SID).problems == (
        f"score[0] scored 1 frame(s) extract did not produce: {'e' * 64}",
    )


def test_chain_from_logs_decide_read_other_manifest_reports_mismatch() -> None:
    records, _, _ = world()
    stage(records, "decide")["inputs"]["manifest_sha256"] = "d" * 64

    assert chain_from_logs(records, SID).problems[0].startswith("hash mismatch decide->extract")


def test_verify_chain_intact_world_has_no_problems() -> None:
    records, store, item = world()

    assert verify(records, store, item) == []


def test_verify_chain_tampered_frame_names_it() -> None:
    records, store, item = world()
    store[(WORK, f"frames/{SID}/001.jpg")] = b"swapped"

    assert verify(records, store, item) == [f"hash mismatch: frames/{SID}/001.jpg"]


def test_verify_chain_expired_frame_reported_missing() -> None:
    records, store, item = world()
    del store[(WORK, f"frames/{SID}/000.jpg")]

    assert verify(records, store, item) == [f"missing: frames/{SID}/000.jpg"]


def test_verify_chain_consistently_forged_lineage_caught_by_logged_hash() -> None:
    """A forger rewrites a frame and its hash in lineage.json: the decide log still pins lineage.json."""
    records, store, item = world()
    lineage = json.loads(store[(AUDIT, lineage_key(SID))])
    store[(WORK, f"frames/{SID}/000.jpg")] = b"forged"
    lineage["frames"]["items"][0]["sha256"] = h(b"forged")
    store[(AUDIT, lineage_key(SID))] = canonical(lineage)

    problems = verify(records, store, item)

    assert problems[0].startswith(f"hash mismatch: {lineage_key(SID)}: stored {h(canonical(lineage))}")
    assert any(p.startswith("lineage.json frames[].sha256: stored") for p in problems)


def test_verify_chain_changed_decision_record_names_field() -> None:
    records, store, item = world()
    item["decision"] = "PASS"

    assert verify(records, store, item) == ["decision record decision: stored 'PASS', decide logged 'REVIEW'"]


def test_verify_chain_tampered_batch_result_and_scores_reported() -> None:
    records, store, item = world()
    store[(WORK, f"scores/{SID}/batch-000.json")] = b"{}"
    store[(AUDIT, f"decisions/{SID}/scores.json")] = b"{}"

    assert verify(records, store, item) == [
        f"hash mismatch: scores/{SID}/batch-000.json",
        f"hash mismatch: decisions/{SID}/scores.json",
    ]


def test_verify_chain_tampered_manifest_reported_against_both_records() -> None:
    records, store, item = world()
    store[(WORK, f"frames/{SID}/manifest.json")] = b"{}"

    problems = verify(records, store, item)

    assert problems[0] == f"hash mismatch: frames/{SID}/manifest.json"
    assert problems[1].startswith(
        f"hash mismatch: frames/{SID}/manifest.json: stored {h(b'{}')}, extract logged"
    )


def test_verify_chain_replaced_source_upload_reported() -> None:
    records, store, item = world()
    store[("intake", "uploads/x.mp4")] = b"another video"

    assert verify(records, store, item) == [
        f"hash mismatch: source upload: stored {h(b'another video')}, validate logged {h(b'video')}"
    ]


def test_verify_chain_missing_lineage_json_reported() -> None:
    records, store, item = world()
    del store[(AUDIT, lineage_key(SID))]

    assert verify(records, store, item) == [f"missing: {lineage_key(SID)}"]


def test_chain_from_logs_after_decision_stages_are_known_not_problems() -> None:
    records = [
        {
            "message": "lineage",
            "lineage": {
                "stage": "decide",
                "submission_id": "s1",
                "outputs": {"decision": "REVIEW", "reasons": []},
            },
        },
        {"message": "lineage", "lineage": {"stage": "notify", "submission_id": "s1", "outputs": {}}},
        {"message": "lineage", "lineage": {"stage": "erase", "submission_id": "s1", "outputs": {}}},
    ]

    chain = chain_from_logs(records, "s1")

    assert [s.stage for s in chain.stages][-2:] == ["notify", "erase"]
    assert not any("unknown stage" in p for p in chain.problems)


# --- strict verification: only documented expiries are excused ---


def test_strict_frames_deleted_within_retention_fail() -> None:
    records, store, item = world()
    del store[(WORK, f"frames/{SID}/000.jpg")]

    problems = strictly(records, store, item, days_later=0.5)

    assert problems == [f"missing: frames/{SID}/000.jpg"]
    assert any(is_failure(p) for p in problems)


def test_strict_work_objects_gone_after_their_expiry_are_excused() -> None:
    records, store, item = world()
    for key in [k for k in store if k[0] == WORK]:
        del store[key]  # frames, manifest and batch results all expire after a day

    problems = strictly(records, store, item, days_later=2)

    assert problems and all(p.startswith("expired: ") for p in problems)
    assert not any(is_failure(p) for p in problems)


def test_strict_expired_frames_still_checked_through_lineage_hashes() -> None:
    """Past their expiry the frames are gone, but lineage.json's hashes still meet extract's log."""
    records, store, item = world()
    for key in [k for k in store if k[0] == WORK]:
        del store[key]
    lineage = json.loads(store[(AUDIT, lineage_key(SID))])
    lineage["frames"]["items"][0]["sha256"] = "0" * 64
    store[(AUDIT, lineage_key(SID))] = canonical(lineage)

    problems = strictly(records, store, item, days_later=2)

    assert any(is_failure(p) and p.startswith("lineage.json frames[].sha256") for p in problems)


@pytest.mark.parametrize("key", [lineage_key(SID), f"decisions/{SID}/scores.json"])
def test_strict_audit_evidence_deleted_fails_for_years(key: str) -> None:
    records, store, item = world()
    del store[(AUDIT, key)]

    problems = strictly(records, store, item, days_later=400)

    assert f"missing: {key}" in problems
    assert any(is_failure(p) for p in problems)


def test_strict_source_gone_after_erasure_is_excused_not_before() -> None:
    records, store, item = world()
    del store[("intake", "uploads/x.mp4")]

    assert strictly(records, store, item, days_later=3) == [
        "missing: source upload (the intake bucket keeps uploads for its retention only)"
    ]
    # the item's own erased_at excuses nothing: its writer can set it (issue 23)
    claimed = strictly(records, store, item | {"erased_at": "2026-11-02T00:00:00Z"}, days_later=3)
    assert claimed == ["missing: source upload (the intake bucket keeps uploads for its retention only)"]
    erase = {"message": "lineage", "lineage": {"stage": "erase", "submission_id": SID, "outputs": {}}}
    erased = strictly([*records, erase], store, item, days_later=3)
    assert erased == ["erased: source upload (the submission was erased)"]


def test_strict_received_at_on_the_item_excuses_nothing() -> None:
    """An insider back-dates the item to make deleted frames look expired: the execution's start
    (Step Functions) is the clock, so they are still missing."""
    records, store, item = world()
    del store[(WORK, f"frames/{SID}/000.jpg")]
    item |= {"received_at": "2020-01-01T00:00:00Z", "decided_at": "2020-01-01T00:00:01Z"}
    assert strictly(records, store, item, days_later=0.5) == [f"missing: frames/{SID}/000.jpg"]


def test_stage_records_count_only_from_their_own_functions_log_group() -> None:
    records, _, _ = world()
    groups = {"validate": "/v", "extract": "/x", "score": "/s", "decide": "/d"}
    tagged = [
        r | {LOG_GROUP_FIELD: groups.get((r.get("lineage") or {}).get("stage"), "/other")} for r in records
    ]
    assert chain_from_logs(tagged, SID, stage_groups=groups).problems == ()
    # the decide role writes a validate record into its own log group: refused, and validate is missing
    forged = [r | {LOG_GROUP_FIELD: "/d"} if stage_of(r) == "validate" else r for r in tagged]
    problems = chain_from_logs(forged, SID, stage_groups=groups).problems
    assert problems[0] == "foreign record: a validate record in /d, not /v's (ignored)"
    assert "missing stage: validate" in problems


def stage_of(record: dict) -> str | None:
    return (record.get("lineage") or {}).get("stage")


def test_decision_the_execution_never_returned_fails_the_witness() -> None:
    records, store, item = world()
    assert strictly(records, store, item, days_later=0) == []
    problems = strictly(records, store, item, days_later=0, decided=("REJECT",))
    assert problems == [
        f"witness: the decision record says REVIEW, DecideOutcome returned REJECT in execution {ARN}"
    ]
    problems = strictly(records, store, item, days_later=0, submission={"submission_id": "other"})
    assert any(p.startswith("witness: execution") for p in problems)
    assert any(p.startswith("witness: decision record source.version_id") for p in problems)


def test_no_execution_fails_until_step_functions_would_have_forgotten_it() -> None:
    records, store, item = world()
    gone = ExecutionWitness(arn=ARN, found=False)
    problems = verify(records, store, item, retention=RETENTION, now=UPLOADED, witness=gone)
    assert problems == [f"missing: execution history (Step Functions has no execution {ARN})"]
    assert is_failure(problems[0])


def test_witness_read_from_describe_execution_and_history() -> None:
    execution = {
        "startDate": "2026-11-01T09:00:00+00:00",
        "status": "SUCCEEDED",
        "input": json.dumps({"submission": {"submission_id": SID, "bucket": "intake", "version_id": "v1"}}),
    }
    history = [
        {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "Validate", "output": "{}"}},
        {
            "type": "TaskStateExited",
            "stateExitedEventDetails": {
                "name": "DecideOutcome",
                "output": json.dumps({"decision": {"decision": "REVIEW", "reasons": []}}),
            },
        },
    ]
    read = witness_from_history(ARN, execution, history)
    assert read.found and read.decided == ("REVIEW",) and read.started_at == UPLOADED
    assert read.submission["version_id"] == "v1"
    assert not witness_from_history(ARN, None, []).found


def test_strict_forged_score_on_the_record_fails() -> None:
    records, store, item = world()
    lineage = json.loads(store[(AUDIT, lineage_key(SID))])
    item["score"] = lineage["decision"].get("score")
    assert strictly(records, store, item, days_later=0) == []

    item["score"] = 0.01

    problems = strictly(records, store, item, days_later=0)
    assert any(p.startswith("decision record score: stored 0.01") for p in problems)


def test_strict_policy_changed_under_the_same_version_fails() -> None:
    records, store, item = world()
    item["policy"] = POLICY | {"pass_threshold": 0.9}  # same version label, different rule

    problems = verify(records, store, item)

    assert any(p.startswith("decision record policy: stored") for p in problems)


def _with_reuse(records: list[dict], manifest_sha256: str) -> list[dict]:
    """The CheckReuse stage's lineage record, as functions/reuse logs it."""
    reuse = copy.deepcopy(next(r for r in records if (r.get("lineage") or {}).get("stage") == "extract"))
    reuse["lineage"] = {
        "stage": "reuse",
        "submission_id": SID,
        "inputs": {"source_sha256": "x", "manifest_sha256": manifest_sha256},
        "outputs": {"checked": True, "matched": True, "matches": [{"submission_id": "a" * 64}]},
        "execution_arn": ARN,
    }
    return [*records, reuse]


def test_chain_from_logs_reuse_stage_sits_between_scoring_and_decide() -> None:
    records, _, _ = world()
    extract_manifest = stage(records, "extract")["outputs"]["manifest_sha256"]
    chain = chain_from_logs(_with_reuse(records, extract_manifest), SID)

    assert [s.label for s in chain.stages] == ["validate", "extract", "score[0]", "reuse", "decide"]
    assert chain.problems == ()


def test_chain_from_logs_reuse_read_other_manifest_reports_mismatch() -> None:
    records, _, _ = world()

    problems = chain_from_logs(_with_reuse(records, "d" * 64), SID).problems

    assert problems[0].startswith("hash mismatch reuse->extract")


def test_verify_lineage_frames_as_ranges_of_one_batch_object() -> None:
    """Frames stored one object per batch (kyc.media.framestore): each range hashed on its own,
    the object fetched once, and a changed byte named by the frame it falls in."""
    frames = [b"frame-zero", b"frame-one!", b"frame-two"]
    key = f"frames/{SID}/batch-000.bin"
    blob = b"".join(frames)
    items, offset = [], 0
    for f in frames:
        items.append({"key": key, "offset": offset, "length": len(f), "sha256": h(f)})
        offset += len(f)
    lineage = {"frames": {"bucket": WORK, "items": items}}
    fetched: list[str] = []

    def fetch(bucket: str, k: str) -> bytes | None:
        fetched.append(k)
        return stored.get(k)

    stored = {key: blob}
    assert verify_lineage(lineage, fetch) == [] and fetched == [key]
    tampered = bytearray(blob)
    tampered[len(frames[0]) + 2] ^= 0x01  # inside the second frame only
    stored = {key: bytes(tampered)}
    assert verify_lineage(lineage, fetch) == [f"hash mismatch: {key} @{len(frames[0])}"]
    stored = {key: blob[:-1]}  # truncated: the last range runs past the end
    assert verify_lineage(lineage, fetch) == [f"hash mismatch: {key} @{len(frames[0]) + len(frames[1])}"]
    stored = {}
    assert len(verify_lineage(lineage, fetch)) == 3  # every frame reported missing
