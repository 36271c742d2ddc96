"""CheckReuse against moto, with real frames (JPEGs in the work bucket, decoded and hashed by the
handler): a copy matches the earlier submission; of two copies screened at the same moment only the
later is marked, whatever the order the checks run in; a retry adds nothing; a re-screened
submission never matches itself; a changed manifest or face evidence is refused; refused media is
not checked."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from kyc.aws.errors import SourceChangedError
from kyc.media.frames import encode_image
from kyclocal.alarms import datapoints_from_emf
from tests.unit.aws.test_dynamodb_reuse_index import create_reuse_table
from tests.unit.functions.handler_loader import FakeContext, load_handler

WORK, TABLE = "work", "reuse-index"
NOW = datetime.now(UTC)
FRAMES = 6
ENTRIES_PER_SUBMISSION = 1 + 9 * FRAMES + 1  # bytes, 9 bands per frame (radius 8), the sub# list


def _at(hours_ago: float) -> str:
    """Receipt times relative to now: the index's TTL filter reads the real clock."""
    return (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pictures(seed: int) -> list[np.ndarray]:
    """A textured clip: smooth random blobs (low frequencies a perceptual hash sees), one per frame."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(FRAMES):
        coarse = rng.uniform(0, 255, (6, 8, 3))
        out.append(np.kron(coarse, np.ones((20, 20, 1))))
    return out


def _copy(pictures: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Re-encoded look: a little noise and a brightness change, mirrored."""
    rng = np.random.default_rng(seed)
    return [np.clip(p[:, ::-1] * 0.95 + rng.normal(0, 3, p.shape), 0, 255) for p in pictures]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=WORK)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_reuse_table(ddb, TABLE)
        env = {"KYC_WORK_BUCKET": WORK, "KYC_REUSE_TABLE": TABLE, "KYC_REUSE_WINDOW_DAYS": "7"}
        app = load_handler("reuse", env, monkeypatch)
        yield {"s3": s3, "ddb": ddb, "app": app}


def _event(aws: dict[str, Any], sid: str, sha: str, pictures: list[np.ndarray], received_at: str) -> dict:
    prefix = f"frames/{sid}/"
    frames = []
    for i, rgb in enumerate(pictures):
        image = encode_image(rgb.astype(np.uint8), "jpeg")
        aws["s3"].put_object(Bucket=WORK, Key=f"{prefix}{i:03d}.jpg", Body=image.data)
        frames.append({"index": i, "pts_s": 0.1 * i, "file": f"{i:03d}.jpg", "sha256": image.sha256})
    body = json.dumps({"frames": frames, "prefix": prefix}).encode()
    key = f"{prefix}manifest.json"
    aws["s3"].put_object(Bucket=WORK, Key=key, Body=body)
    return {
        "submission": {"submission_id": sid, "received_at": received_at},
        "validation": {"sha256": sha},
        "extraction": {
            "manifest_key": key,
            "manifest_sha256": hashlib.sha256(body).hexdigest(),
            "refusal": None,
        },
        "faces": {"source": "model", "evidence_key": None, "evidence_sha256": None},
    }


def _check(aws: dict[str, Any], event: dict) -> dict:
    return aws["app"].lambda_handler(event, FakeContext())


def test_a_copy_under_another_submission_matches_the_earlier_one(aws: dict[str, Any]) -> None:
    original = _pictures(1)
    first = _check(aws, _event(aws, "A", "aa" * 32, original, _at(3)))
    assert first["checked"] and not first["matched"] and first["frames_indexed"] == FRAMES
    copy = _check(aws, _event(aws, "B", "bb" * 32, _copy(original, 2), _at(2)))
    assert copy["matched"], copy
    (match,) = copy["matches"]
    assert (match["submission_id"], match["kind"], match["frames_matched"]) == ("A", "perceptual", FRAMES)
    assert match["max_distance"] <= 8
    # the bytes, 9 bands per frame, for r2 and for the legacy r1 keys read during the transition
    assert copy["lookups"] <= 1 + 2 * 9 * FRAMES and copy["items_read"] >= FRAMES
    unrelated = _check(aws, _event(aws, "C", "cc" * 32, _pictures(3), _at(1)))
    assert not unrelated["matched"], unrelated


def test_an_index_written_by_r1_is_still_read_after_the_upgrade_and_never_written_again(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries written before the upgrade (r1 keys, r1 hashes, as main's index_entries wrote them)
    stay in the window until their TTL: a copy screened under r2 still meets them. Without the
    legacy read it would not (the copy would PASS on the model's word)."""
    from kyc.domain.reuse import ReuseParams, index_entries
    from kyc.media import recording_hash_r1
    from kyc.media.recording_hash import frame_signatures

    original = _pictures(11)
    frames = [(i, 0.1 * i, p.astype(np.uint8)) for i, p in enumerate(original)]
    r1_frames = frame_signatures(frames, [], recording_hash_r1.recording_hashes)
    params = ReuseParams(window_days=7)
    written = [
        {**item, "pk": item["pk"].replace("r2m", "r1m", 1)}
        for item in index_entries(
            submission_id="OLD", received_at=_at(30), sha256="ee" * 32, frames=r1_frames, params=params
        )
    ]
    assert {item["pk"][:3] for item in written if "scene" in item} == {"r1m"}
    aws["app"].INDEX.record("OLD", written, written[0]["expires_at"])
    copy = _check(aws, _event(aws, "NEW", "ff" * 32, _copy(original, 12), _at(1)))
    assert [(m["submission_id"], m["kind"]) for m in copy["matches"]] == [("OLD", "perceptual")], copy
    keys = {item["pk"]["S"] for item in aws["ddb"].scan(TableName=TABLE)["Items"]}
    assert not any(k.startswith("r1m") for k in keys - {item["pk"] for item in written})  # r2 only written
    monkeypatch.setattr(aws["app"], "LEGACY_HASHERS", {})
    again = _check(aws, _event(aws, "NEWER", "ab" * 32, _copy(original, 13), _at(0.5)))
    assert "OLD" not in {m["submission_id"] for m in again["matches"]}  # the false "no match" it prevents


def test_same_bytes_match_exactly_even_when_no_frame_has_a_hash(aws: dict[str, Any]) -> None:
    flat = [np.full((120, 160, 3), 90.0)] * 2
    _check(aws, _event(aws, "A", "dd" * 32, flat, _at(3)))
    again = _check(aws, _event(aws, "B", "dd" * 32, flat, _at(2.9)))
    assert again["frames_indexed"] == 0
    assert [(m["submission_id"], m["kind"], m["strength"]) for m in again["matches"]] == [("A", "exact", 1.0)]


def test_concurrent_copies_only_the_later_is_marked_and_retries_add_nothing(aws: dict[str, Any]) -> None:
    """Both write before they read; whichever runs first, the earlier upload (by receipt time) is
    never marked, the later one always is; a retry writes no second set of entries."""
    original = _pictures(4)
    event_a = _event(aws, "A", "aa" * 32, original, _at(3))
    event_b = _event(aws, "B", "bb" * 32, _copy(original, 5), _at(2.99))  # received 36 s after A
    later_first = _check(aws, event_b)  # B's check happens to run first: A is not indexed yet
    earlier = _check(aws, event_a)
    size = len(aws["ddb"].scan(TableName=TABLE)["Items"])
    later_retried = _check(aws, event_b)
    earlier_retried = _check(aws, event_a)
    assert not later_first["matched"]  # nothing earlier was indexed when it looked
    assert not earlier["matched"] and not earlier_retried["matched"], earlier  # B came later: never A's match
    assert [m["submission_id"] for m in later_retried["matches"]] == ["A"]  # never "B" itself
    assert size == 2 * ENTRIES_PER_SUBMISSION
    assert len(aws["ddb"].scan(TableName=TABLE)["Items"]) == size


def test_same_receipt_time_the_id_breaks_the_tie_once(aws: dict[str, Any]) -> None:
    original = _pictures(10)
    at = _at(2)
    a = _check(aws, _event(aws, "A", "aa" * 32, original, at))
    b = _check(aws, _event(aws, "B", "aa" * 32, original, at))
    a_again = _check(aws, _event(aws, "A", "aa" * 32, original, at))
    assert not a["matched"] and not a_again["matched"]
    assert {m["submission_id"] for m in b["matches"]} == {"A"}


def test_outside_the_window_nothing_matches(aws: dict[str, Any]) -> None:
    original = _pictures(6)
    _check(aws, _event(aws, "A", "aa" * 32, original, _at(24 * 8)))
    late = _check(aws, _event(aws, "B", "aa" * 32, original, _at(3)))
    assert not late["matched"]


def test_changed_manifest_frame_or_face_evidence_is_refused_and_refused_media_is_not_checked(
    aws: dict[str, Any],
) -> None:
    event = _event(aws, "A", "aa" * 32, _pictures(7), _at(3))
    bad_manifest = json.loads(json.dumps(event))
    bad_manifest["extraction"]["manifest_sha256"] = "0" * 64
    with pytest.raises(SourceChangedError):
        _check(aws, bad_manifest)
    aws["s3"].put_object(Bucket=WORK, Key="scores/A/faces.json", Body=b'{"frames": []}')
    bad_faces = json.loads(json.dumps(event))
    bad_faces["faces"] = {
        "source": "rekognition",
        "evidence_key": "scores/A/faces.json",
        "evidence_sha256": "0" * 64,
    }
    with pytest.raises(SourceChangedError):
        _check(aws, bad_faces)
    aws["s3"].put_object(Bucket=WORK, Key="frames/A/002.jpg", Body=b"\xff\xd8\xffswapped")
    with pytest.raises(SourceChangedError):
        _check(aws, event)
    refused = {
        "submission": {"submission_id": "R", "received_at": _at(3)},
        "validation": {"sha256": "ee" * 32},
        "extraction": {"manifest_key": None, "manifest_sha256": None, "refusal": {"reason": "CORRUPT_MEDIA"}},
    }
    result = _check(aws, refused)
    assert (result["checked"], result["matched"]) == (False, False)
    assert aws["ddb"].scan(TableName=TABLE)["Items"] == []


def test_two_copies_interleaved_only_the_later_is_marked(aws: dict[str, Any]) -> None:
    """B's whole check runs while A is between its write and its read (the worst interleaving for
    write-then-read): B, received later, is flagged naming A; A, the earlier upload, is not."""
    app = aws["app"]
    original = _pictures(8)
    event_a = _event(aws, "A", "aa" * 32, original, _at(2))
    event_b = _event(aws, "B", "bb" * 32, _copy(original, 9), _at(1.9))
    results: dict[str, dict] = {}
    real_exact = app.INDEX.exact

    def exact_with_b_in_between(*args: Any, **kwargs: Any) -> Any:
        if not results:  # A's read: B runs now, whole (its own read goes straight through)
            results["B"] = {}
            results["B"] = app.check_reuse(event_b)  # the handler's body, without Powertools' wrappers
        return real_exact(*args, **kwargs)

    app.INDEX.exact = exact_with_b_in_between
    try:
        results["A"] = _check(aws, event_a)
    finally:
        app.INDEX.exact = real_exact
    assert results["A"]["matches"] == [] and not results["A"]["matched"]
    assert [m["submission_id"] for m in results["B"]["matches"]] == ["A"]


class _Looks:
    """Counts the check's looks at the admission records; ``on_look`` runs before each."""

    def __init__(self, app: Any, on_look: Any = None) -> None:
        self.real, self.on_look, self.looks = app.ADMISSIONS.unsettled_before, on_look, 0

    def __call__(self, sid: str, received_at: str) -> list[Any]:
        self.looks += 1
        if self.on_look:
            self.on_look(self.looks)
        return self.real(sid, received_at)


def test_the_later_copy_checked_first_waits_for_the_earlier_one_in_flight_and_is_marked(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of issue 24: B (received later) is checked before A (earlier, admitted: its record
    unsettled) has written anything. B finds nothing, sees A's record, waits; A's check runs during
    the wait and settles A; B reads again and is marked naming A. A, which sees B, is not marked."""
    app = aws["app"]
    original = _pictures(11)
    event_a = _event(aws, "A", "aa" * 32, original, _at(2))
    event_b = _event(aws, "B", "bb" * 32, _copy(original, 12), _at(1.9))
    for sid, at in (("A", _at(2)), ("B", _at(1.9))):
        assert app.ADMISSIONS.admit(sid, at)  # what the start function wrote on receipt
    results: dict[str, dict] = {}

    def a_checks_on_the_second_look(look: int) -> None:
        if look == 2:
            results["A"] = app.check_reuse(event_a)

    looks = _Looks(app, a_checks_on_the_second_look)
    monkeypatch.setattr(app.ADMISSIONS, "unsettled_before", looks)
    monkeypatch.setattr(app, "POLL_S", (0.01,))
    results["B"] = app.check_reuse(event_b, wait_s=30)
    assert [m["submission_id"] for m in results["B"]["matches"]] == ["A"] and results["B"]["matched"]
    assert results["A"]["matches"] == [] and not results["A"]["matched"]
    assert looks.looks == 3 and results["B"]["waited_for_earlier"] == ["A"]  # B twice, A once
    assert {app.ADMISSIONS.state(s) for s in "AB"} == {"settled"}  # each check settled its own


def test_an_earlier_submission_that_never_indexes_times_the_check_out_instead_of_a_pass(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An earlier upload stays unsettled past the wait (queued, or screening and unindexed): no
    answer (the state machine retries, then records ERROR), never an unmarked result that would let
    the copy PASS. A later upload's record (C) is never waited for."""
    from kyc.domain.reuse import EarlierSubmissionsInFlightError

    app = aws["app"]
    event_b = _event(aws, "B", "bb" * 32, _pictures(13), _at(1.9))
    for sid, at in (("A", _at(2)), ("C", _at(1))):
        app.ADMISSIONS.admit(sid, at)
    monkeypatch.setattr(app, "POLL_S", (0.01,))
    with pytest.raises(EarlierSubmissionsInFlightError, match="1 earlier upload"):
        app.check_reuse(event_b, wait_s=0.2)  # C, received after B, is never waited for


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


@pytest.mark.parametrize("retry_succeeds", [True, False], ids=["retry-succeeds", "retry-fails-too"])
def test_the_errors_alarm_is_quiet_on_a_retried_wait_that_succeeds_and_fires_when_it_fails_too(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, retry_succeeds: bool
) -> None:
    """Issue 24 item 5: the template's CheckReuseErrorsAlarm, evaluated (kyclocal.alarms) on what the
    handler really emitted (its EMF records) plus what Lambda publishes (one Errors point per raised
    invocation). Attempt 1 times out waiting for an earlier upload (retry_count 0: the state machine
    retries it); then either the earlier upload settles and attempt 2 answers (no page), or every
    attempt times out, the last one (retry_count = WAIT_RETRIES) included (a page)."""
    from pathlib import Path

    from kyc.domain.reuse import EarlierSubmissionsInFlightError
    from kyclocal.alarms import Datapoint, breaches_at, load_alarms

    app = aws["app"]
    root = Path(__file__).resolve().parents[3]
    alarm = load_alarms(root / "template.yaml", resources={"CheckReuseFunction": "check-reuse"})[
        "CheckReuseErrorsAlarm"
    ]
    event = _event(aws, "B", "bb" * 32, _pictures(17), _at(1.9))
    app.ADMISSIONS.admit("A", _at(2))  # an earlier upload, queued or screening
    monkeypatch.setattr(app, "POLL_S", (0.01,))
    errors: list[Datapoint] = []
    attempts = list(range(app.WAIT_RETRIES + 1))
    for attempt in attempts:
        if retry_succeeds and attempt == 1:
            app.ADMISSIONS.settle("A")
        try:
            app.check_reuse(event | {"retry_count": attempt}, wait_s=0.05)
        except EarlierSubmissionsInFlightError:
            errors.append(
                Datapoint("AWS/Lambda", "Errors", (("FunctionName", "check-reuse"),), time.time(), 1.0)
            )
        else:
            break
    records = _emf(capsys.readouterr().out)
    points = datapoints_from_emf(records) + errors
    waits = [r["outcome"] for r in records if "ReuseWaits" in r]
    if retry_succeeds:
        assert waits == ["RETRIED"] and len(errors) == 1
        assert not breaches_at(alarm, points, time.time() + 1)
    else:
        assert waits == ["RETRIED"] * app.WAIT_RETRIES + ["FAILED"] and len(errors) == len(attempts)
        assert breaches_at(alarm, points, time.time() + 1)
    # the old alarm (Lambda Errors alone) would have paged in both cases
    assert sum(p.value for p in errors) >= 1


def test_a_crashed_earlier_screening_is_settled_by_reconcile_and_blocks_nothing_after(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24 item 5: an earlier screening that died outside the workflow (aborted, its process
    gone) leaves its record 'admitted': a later upload's check waits for it and, the wait bounded,
    raises (ERROR after the retries, never PASS). The status-change rule's reconcile function settles
    the record; the next check answers at once."""
    from kyc.domain.reuse import EarlierSubmissionsInFlightError
    from tests.fixtures.decisions_table import create_decisions_table

    app = aws["app"]
    create_decisions_table(aws["ddb"], "decisions")
    app.ADMISSIONS.admit("A", _at(2))
    event_b = _event(aws, "B", "bb" * 32, _pictures(19), _at(1.9))
    monkeypatch.setattr(app, "POLL_S", (0.01,))
    with pytest.raises(EarlierSubmissionsInFlightError):
        app.check_reuse(event_b, wait_s=0.1)
    reconcile = load_handler(
        "reconcile", {"KYC_DECISIONS_TABLE": "decisions", "KYC_REUSE_TABLE": TABLE}, monkeypatch
    )
    submission = {"submission_id": "A", "bucket": "intake", "key": "uploads/a.mp4", "received_at": _at(2)}
    aborted = {
        "version": "0",
        "id": "1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": _at(1.8),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "executionArn": "arn:exec:A",
            "status": "ABORTED",
            "input": json.dumps({"submission": submission}),
        },
    }
    assert reconcile.lambda_handler(aborted, FakeContext())["decision"] == "ERROR"
    assert app.ADMISSIONS.state("A") == "settled"

    started = time.monotonic()
    result = app.check_reuse(event_b, wait_s=30)
    assert result["waited_for_earlier"] == [] and not result["matched"]
    assert time.monotonic() - started < 10  # no wait at all (30 s were allowed)
