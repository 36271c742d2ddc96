"""The review rules (kyc.domain.review): groups, leases, verdict chain, four-eyes, queue, export.

Expected values are written out by hand from the rules in docs/review.md, never read back from the
code under test.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from datetime import UTC, datetime, timedelta

import pytest

from kyc.domain.review import (
    EXPORT_COLUMNS,
    Caller,
    CaseHistory,
    CaseState,
    Lease,
    Permission,
    ReviewError,
    ReviewErrorCode,
    ReviewPolicy,
    VerdictRequest,
    VerdictStatus,
    approval_needed_for,
    export_csv,
    export_row,
    in_queue,
    parse_groups,
    permissions,
    plan_approval,
    plan_lease,
    plan_verdict,
    queue_item,
    reviewed_event_detail,
    reviewer_id,
    score_band,
)

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
SID = "a" * 64
POLICY = ReviewPolicy(deadline=timedelta(hours=24), lease=timedelta(minutes=15))
ALICE = Caller("rv-000000000000a11c", ("reviewer",))
BOB = Caller("rv-0000000000000b0b", ("approver",))
CAROL = Caller("rv-00000000000ca201", ("approver",))
AUDREY = Caller("rv-0000000000a0d1e7", ("auditor",))


def decision(kind: str = "REVIEW", reasons=("MODEL_UNCERTAIN",), **extra):
    return {
        "submission_id": SID,
        "decision": kind,
        "reasons": list(reasons),
        "decided_at": "2026-12-05T18:00:00.000+00:00",
        "score": 0.5,
        "policy": {"version": "p-1", "pass_threshold": 0.3, "reject_threshold": 0.7},
        "model": {"name": "ref", "version": "7"},
        "source": {"sha256": "b" * 64},
        **extra,
    }


def lease_for(caller: Caller, minutes: int = 10) -> Lease:
    return Lease(
        SID,
        caller.reviewer_id,
        "2026-12-06T11:55:00.000+00:00",
        (NOW + timedelta(minutes=minutes)).isoformat(),
    )


def record(caller, body, history=None, dec=None, at=NOW):
    return plan_verdict(
        VerdictRequest.parse(body),
        review_id=SID,
        decision=dec or decision(),
        history=history or CaseHistory(),
        caller=caller,
        lease=lease_for(caller),
        policy=POLICY,
        now=at,
    )


# ---------------------------------------------------------------- groups
@pytest.mark.parametrize(
    ("raw", "groups"),
    [
        (["reviewer", "auditor"], ("reviewer", "auditor")),
        ("reviewer,approver", ("reviewer", "approver")),
        ("[reviewer approver]", ("reviewer", "approver")),
        ("auditor", ("auditor",)),
        (None, ()),
        ("", ()),
    ],
)
def test_groups_claim_parsed_in_every_carrier_shape(raw, groups):
    assert parse_groups(raw) == groups


def test_auditor_reads_and_exports_but_writes_nothing():
    assert permissions(["auditor"]) == {Permission.READ, Permission.EXPORT}
    with pytest.raises(ReviewError) as err:
        plan_lease(SID, current=None, caller=AUDREY, policy=POLICY, now=NOW)
    assert err.value.code is ReviewErrorCode.FORBIDDEN and err.value.status == 403
    with pytest.raises(ReviewError) as err:
        plan_verdict(
            VerdictRequest.parse({"verdict": "genuine", "reason": "looks fine"}),
            review_id=SID, decision=decision(), history=CaseHistory(), caller=AUDREY,
            lease=lease_for(AUDREY), policy=POLICY, now=NOW,
        )  # fmt: skip
    assert err.value.code is ReviewErrorCode.FORBIDDEN


def test_unknown_groups_grant_nothing():
    assert permissions(["admin", "Reviewer", "reviewers"]) == frozenset()


def test_reviewer_id_is_a_keyed_mac_of_the_subject():
    key = b"k" * 32

    class Mac:
        label = "t"

        def __call__(self, message: bytes) -> bytes:
            return hmac.new(key, message, hashlib.sha256).digest()

    expected = "rv-" + hmac.new(key, b"reviewer\x00sub-123", hashlib.sha256).hexdigest()[:16]
    assert reviewer_id("sub-123", Mac()) == expected
    assert reviewer_id("sub-124", Mac()) != expected


# ---------------------------------------------------------------- leases
def test_lease_free_case_goes_to_the_claimant_for_the_lease_time():
    lease = plan_lease(SID, current=None, caller=ALICE, policy=POLICY, now=NOW)
    assert lease.holder == ALICE.reviewer_id
    assert lease.expires_at == "2026-12-06T12:15:00.000+00:00"


def test_second_reviewer_cannot_claim_a_live_lease_and_learns_holder_and_expiry():
    held = plan_lease(SID, current=None, caller=ALICE, policy=POLICY, now=NOW)
    with pytest.raises(ReviewError) as err:
        plan_lease(SID, current=held, caller=BOB, policy=POLICY, now=NOW + timedelta(minutes=14, seconds=59))
    assert err.value.code is ReviewErrorCode.LEASE_HELD and err.value.status == 409
    assert err.value.details == {"holder": ALICE.reviewer_id, "expires_at": "2026-12-06T12:15:00.000+00:00"}


def test_expired_lease_can_be_taken_by_another():
    held = plan_lease(SID, current=None, caller=ALICE, policy=POLICY, now=NOW)
    taken = plan_lease(SID, current=held, caller=BOB, policy=POLICY, now=NOW + timedelta(minutes=15))
    assert taken.holder == BOB.reviewer_id
    assert taken.acquired_at == "2026-12-06T12:15:00.000+00:00"


def test_holder_renews_keeping_acquired_at():
    held = plan_lease(SID, current=None, caller=ALICE, policy=POLICY, now=NOW)
    renewed = plan_lease(SID, current=held, caller=ALICE, policy=POLICY, now=NOW + timedelta(minutes=5))
    assert renewed.acquired_at == held.acquired_at
    assert renewed.expires_at == "2026-12-06T12:20:00.000+00:00"


def test_verdict_needs_a_live_lease_of_the_caller():
    request = VerdictRequest.parse({"verdict": "genuine", "reason": "live person"})
    for lease in (None, lease_for(BOB), lease_for(ALICE, minutes=-1)):
        with pytest.raises(ReviewError) as err:
            plan_verdict(
                request, review_id=SID, decision=decision(), history=CaseHistory(), caller=ALICE,
                lease=lease, policy=POLICY, now=NOW,
            )  # fmt: skip
        assert err.value.code is ReviewErrorCode.LEASE_REQUIRED


# ---------------------------------------------------------------- verdict requests
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("genuine", ReviewErrorCode.INVALID_BODY),
        ({"verdict": "fake", "reason": "abc"}, ReviewErrorCode.INVALID_VERDICT),
        ({"verdict": "attack", "reason": "abc"}, ReviewErrorCode.INVALID_VERDICT),
        ({"verdict": "attack", "attack_type": "deepfake", "reason": "abc"}, ReviewErrorCode.INVALID_VERDICT),
        ({"verdict": "genuine", "attack_type": "mask", "reason": "abc"}, ReviewErrorCode.INVALID_VERDICT),
        ({"verdict": "genuine", "reason": "  "}, ReviewErrorCode.INVALID_VERDICT),
        ({"verdict": "genuine", "reason": "x" * 2001}, ReviewErrorCode.INVALID_VERDICT),
        ({"verdict": "genuine", "reason": "abc", "reviewer_id": "rv-1"}, ReviewErrorCode.INVALID_BODY),
        ({"verdict": "genuine", "reason": "abc", "supersedes": "1"}, ReviewErrorCode.INVALID_PARAMETER),
    ],
)
def test_bad_verdict_requests_refused_with_their_code(body, code):
    with pytest.raises(ReviewError) as err:
        VerdictRequest.parse(body)
    assert err.value.code is code


@pytest.mark.parametrize(
    "attack_type",
    ["face_swap", "reenactment", "fully_synthetic", "replay_screen", "mask", "injected_stream", "other"],
)
def test_every_attack_type_of_the_fixed_list_is_accepted(attack_type):
    assert VerdictRequest.parse(
        {"verdict": "attack", "attack_type": attack_type, "reason": "seen"}
    ).attack_type


# ---------------------------------------------------------------- four-eyes
@pytest.mark.parametrize(
    ("kind", "reasons", "high_risk", "needs"),
    [
        ("REVIEW", ["MODEL_UNCERTAIN"], "", []),
        ("REJECT", ["HIGH_FAKE_SCORE"], "", ["genuine"]),
        # REVIEW because the thresholds were not calibrated, while the score itself was REJECT-grade
        ("REVIEW", ["HIGH_FAKE_SCORE", "MODEL_NOT_CALIBRATED"], "", ["genuine"]),
        ("REVIEW", ["DECLARED_SYNTHETIC"], "", ["genuine"]),
        ("REVIEW", ["MEDIA_REUSED"], "MEDIA_REUSED", ["genuine", "attack", "inconclusive"]),
        ("PASS", ["LOW_FAKE_SCORE"], "MEDIA_REUSED", []),
    ],
)
def test_four_eyes_applies_to_clearing_reject_grade_and_to_high_risk_reasons(kind, reasons, high_risk, needs):
    policy = ReviewPolicy.from_settings(24, 900, high_risk)
    assert approval_needed_for(decision(kind, reasons), policy) == needs


def test_high_risk_list_refuses_unknown_codes():
    with pytest.raises(ValueError, match="NOT_A_CODE"):
        ReviewPolicy.from_settings(24, 900, "MEDIA_REUSED,NOT_A_CODE")


def test_clearing_a_reject_waits_for_another_approver_then_takes_effect():
    dec = decision("REJECT", ["HIGH_FAKE_SCORE"])
    v1 = record(ALICE, {"verdict": "genuine", "reason": "live, moire from screen"}, dec=dec)
    assert v1.verdict_id == "v000001" and v1.requires_approval
    history = CaseHistory.of([v1], [])
    assert history.state is CaseState.AWAITING_APPROVAL and history.effective is None
    assert reviewed_event_detail(dec, history) is None  # nothing is published before approval
    with pytest.raises(ReviewError) as err:
        plan_approval(
            "v000001", history=history, caller=Caller(ALICE.reviewer_id, ("approver",)), note=None, now=NOW
        )
    assert err.value.code is ReviewErrorCode.SELF_APPROVAL and err.value.status == 403
    with pytest.raises(ReviewError) as err:
        plan_approval("v000001", history=history, caller=ALICE, note=None, now=NOW)
    assert err.value.code is ReviewErrorCode.FORBIDDEN  # a reviewer is not an approver
    approval = plan_approval(
        "v000001", history=history, caller=BOB, note="agree", now=NOW + timedelta(hours=1)
    )
    history = CaseHistory.of([v1], [approval])
    assert history.state is CaseState.REVIEWED
    assert history.status(v1) is VerdictStatus.EFFECTIVE
    event = reviewed_event_detail(dec, history)
    assert event["verdict"] == "genuine" and event["reviewed_at"] == "2026-12-06T13:00:00.000+00:00"
    assert "reason" not in event and "reviewer_id" not in event
    with pytest.raises(ReviewError) as err:
        plan_approval("v000001", history=history, caller=CAROL, note=None, now=NOW)
    assert err.value.code is ReviewErrorCode.ALREADY_APPROVED


def test_an_attack_verdict_on_an_ordinary_review_takes_effect_at_once():
    v1 = record(ALICE, {"verdict": "attack", "attack_type": "face_swap", "reason": "blending seam at jaw"})
    history = CaseHistory.of([v1], [])
    assert not v1.requires_approval and history.state is CaseState.REVIEWED
    with pytest.raises(ReviewError) as err:
        plan_approval("v000001", history=history, caller=BOB, note=None, now=NOW)
    assert err.value.code is ReviewErrorCode.APPROVAL_NOT_REQUIRED


# ---------------------------------------------------------------- the chain
def test_corrections_name_the_head_and_supersede_it():
    v1 = record(ALICE, {"verdict": "inconclusive", "reason": "too dark"})
    history = CaseHistory.of([v1], [])
    with pytest.raises(ReviewError) as err:
        record(ALICE, {"verdict": "attack", "attack_type": "mask", "reason": "mask edge"}, history)
    assert err.value.code is ReviewErrorCode.SUPERSEDES_MISMATCH and err.value.details == {
        "current": "v000001"
    }
    v2 = record(
        ALICE,
        {"verdict": "attack", "attack_type": "mask", "reason": "mask edge", "supersedes": "v000001"},
        history,
    )
    assert (v2.verdict_id, v2.supersedes) == ("v000002", "v000001")
    history = CaseHistory.of([v2, v1], [])  # any order in, chain order out
    assert [history.status(v) for v in history.verdicts] == [
        VerdictStatus.SUPERSEDED,
        VerdictStatus.EFFECTIVE,
    ]
    assert history.effective == v2


def test_a_correction_awaiting_approval_leaves_the_earlier_verdict_in_effect():
    dec = decision("REVIEW", ["HIGH_FAKE_SCORE", "MODEL_NOT_CALIBRATED"])
    v1 = record(ALICE, {"verdict": "attack", "attack_type": "reenactment", "reason": "lip sync off"}, dec=dec)
    history = CaseHistory.of([v1], [])
    v2 = record(
        ALICE, {"verdict": "genuine", "reason": "on second look, fine", "supersedes": "v000001"}, history, dec
    )
    history = CaseHistory.of([v1, v2], [])
    assert history.effective == v1
    assert history.status(v2) is VerdictStatus.AWAITING_APPROVAL
    assert history.state is CaseState.AWAITING_APPROVAL
    # superseded before approval: the earlier pending one cannot be approved any more
    v3 = record(ALICE, {"verdict": "inconclusive", "reason": "unsure", "supersedes": "v000002"}, history, dec)
    history = CaseHistory.of([v1, v2, v3], [])
    with pytest.raises(ReviewError) as err:
        plan_approval("v000002", history=history, caller=BOB, note=None, now=NOW)
    assert err.value.code is ReviewErrorCode.SUPERSEDED
    assert [history.status(v).value for v in history.verdicts] == ["superseded", "superseded", "effective"]


def test_invalid_and_error_decisions_are_not_reviewable():
    for kind in ("INVALID", "ERROR"):
        with pytest.raises(ReviewError) as err:
            record(ALICE, {"verdict": "genuine", "reason": "fine"}, dec=decision(kind, ["CORRUPT_MEDIA"]))
        assert err.value.code is ReviewErrorCode.NOT_REVIEWABLE


# ---------------------------------------------------------------- the queue
def test_queue_item_age_deadline_band_and_no_score():
    item = queue_item(decision(), CaseHistory(), None, policy=POLICY, me=ALICE.reviewer_id, now=NOW)
    assert item["age_seconds"] == 18 * 3600  # decided 2026-12-05 18:00, now 12-06 12:00
    assert item["deadline_at"] == "2026-12-06T18:00:00.000+00:00" and item["overdue"] is False
    assert item["score_band"] == "between" and "score" not in item
    late = queue_item(decision(), CaseHistory(), None, policy=POLICY, me="x", now=NOW + timedelta(hours=6))
    assert late["overdue"] is True


def test_queue_shows_a_live_lease_and_hides_an_expired_one():
    live = queue_item(decision(), CaseHistory(), lease_for(BOB), policy=POLICY, me=ALICE.reviewer_id, now=NOW)
    assert live["lease"]["holder"] == BOB.reviewer_id and live["lease"]["held_by_me"] is False
    gone = queue_item(decision(), CaseHistory(), lease_for(BOB, -1), policy=POLICY, me="x", now=NOW)
    assert gone["lease"] is None


@pytest.mark.parametrize(
    ("score", "band"),
    [(None, "unscored"), (0.1, "below_pass"), (0.3, "between"), (0.7, "at_or_above_reject")],
)
def test_score_band_against_the_recorded_thresholds(score, band):
    assert score_band(score, {"pass_threshold": 0.3, "reject_threshold": 0.7}) == band


def test_queue_filters_by_reason_and_state():
    dec = decision(reasons=["NO_FACE", "MODEL_UNCERTAIN"])
    assert in_queue(dec, CaseHistory(), reasons=["NO_FACE"], state="open")
    assert not in_queue(dec, CaseHistory(), reasons=["MEDIA_REUSED"], state="open")
    v1 = record(ALICE, {"verdict": "inconclusive", "reason": "too dark"}, dec=dec)
    done = CaseHistory.of([v1], [])
    assert not in_queue(dec, done, reasons=[], state="open")
    assert in_queue(dec, done, reasons=[], state="reviewed") and in_queue(dec, done, reasons=[], state="all")


# ---------------------------------------------------------------- export
def test_export_rows_label_attack_type_people_and_leave_out_inconclusive():
    dec = decision("REJECT", ["HIGH_FAKE_SCORE"])
    v1 = record(ALICE, {"verdict": "genuine", "reason": "live"}, dec=dec)
    approval = plan_approval("v000001", history=CaseHistory.of([v1], []), caller=BOB, note=None,
                             now=datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # fmt: skip
    row = export_row(dec, CaseHistory.of([v1], [approval]))
    assert row == {
        "sha256": "b" * 64,
        "label": "genuine",
        "attack_type": None,
        "reviewer_count": 2,
        "reviewed_at": "2026-12-07T09:00:00.000+00:00",
        "submission_id": SID,
        "verdict_id": "v000001",
        "decision": "REJECT",
        "policy_version": "p-1",
        "model_version": "7",
    }
    unsure = record(ALICE, {"verdict": "inconclusive", "reason": "dark"})
    assert export_row(decision(), CaseHistory.of([unsure], [])) is None
    assert export_row(dec, CaseHistory.of([v1], [])) is None  # not approved yet: no label


def test_export_csv_has_the_documented_columns_and_defuses_formulas():
    text = export_csv(
        [{"sha256": "c" * 64, "label": "attack", "attack_type": "mask", "reviewer_count": 1,
          "reviewed_at": "2026-12-06T12:00:00.000+00:00", "submission_id": SID, "verdict_id": "v000001",
          "decision": "REVIEW", "policy_version": "=HYPERLINK(1)", "model_version": None}]
    )  # fmt: skip
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "sha256", "label", "attack_type", "reviewer_count", "reviewed_at",
        "submission_id", "verdict_id", "decision", "policy_version", "model_version",
    ]  # fmt: skip
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert rows[1][2] == "mask" and rows[1][8] == "'=HYPERLINK(1)" and rows[1][9] == ""


# ---------------------------------------------------------------- lineage
def test_review_records_join_the_submissions_lineage_one_record_each():
    from kyc.domain.lineage import chain_from_logs

    def line(stage, **entry):
        return {"message": "lineage", "lineage": {"stage": stage, "submission_id": SID, **entry}}

    decide = line("decide", outputs={"decision": "REVIEW"}, inputs={})
    verdict = line(
        "review", record_id="verdict#v000001", outputs={"verdict": "genuine", "case_state": "awaiting"}
    )
    approval = line(
        "review", record_id="approval#v000001", outputs={"verdict": "genuine", "case_state": "reviewed"}
    )
    chain = chain_from_logs([approval, verdict, decide, verdict])  # any order, a retried log line twice
    assert [s.label for s in chain.stages] == [
        "decide",
        "review[approval#v000001]",
        "review[verdict#v000001]",
    ]
    assert not [p for p in chain.problems if "review" in p]
    forged = line(
        "review", record_id="verdict#v000001", outputs={"verdict": "attack", "case_state": "reviewed"}
    )
    assert any(
        "conflicting review[verdict#v000001]" in p
        for p in chain_from_logs([decide, verdict, forged]).problems
    )


# ---------------------------------------------------------------- evidence digests
def test_review_documents_are_a_digest_section_of_their_own_and_verified_like_the_rest():
    from kyc.domain.digest import (
        DigestPeriod,
        StoredDigest,
        build_digest_body,
        digest_document,
        digest_key,
        entries_from_review_records,
        signed_bytes,
        verify_digests,
    )
    from kyc.domain.review import evidence_document, evidence_key

    v1 = record(ALICE, {"verdict": "attack", "attack_type": "mask", "reason": "mask edge at the brow"})
    document = evidence_document("verdict", v1.to_item())
    stored = {evidence_key(SID, "verdict", "v000001"): document}
    item = v1.to_item() | {
        "evidence_key": evidence_key(SID, "verdict", "v000001"),
        "evidence_sha256": hashlib.sha256(document).hexdigest(),  # hashed here, not by the code under test
    }
    reviews = entries_from_review_records(
        [item, {"review_id": SID, "recorded_at": iso_now()}]
    )  # no doc: none
    assert [e.key for e in reviews] == [f"decisions/{SID}/reviews/verdict-v000001.json"]
    body = build_digest_body(
        previous=None,
        period=DigestPeriod(start=None, end="2026-12-07T00:00:00.000+00:00"),
        entries=[],
        audit_bucket="audit",
        signing_key_id="k",
        written_at=NOW,
        review_entries=reviews,
    )
    assert body["entries"] == [] and body["review_entry_count"] == 1
    assert body["review_entries"][0]["sha256"] == item["evidence_sha256"]
    digest = StoredDigest(digest_key(1, body["written_at"]), digest_document(body, b"sig"))

    def check(fetch):
        return verify_digests([digest], lambda data, sig: data == signed_bytes(body), fetch).problems

    assert check(stored.get) == []
    stored[item["evidence_key"]] = document.replace(b"mask", b"other")
    assert any(p.startswith(f"altered: decisions/{SID}/reviews/") for p in check(stored.get))
    assert any(p.startswith(f"removed: decisions/{SID}/reviews/") for p in check(lambda key: None))


def iso_now() -> str:
    return NOW.isoformat()


# ---------------------------------------------------------------- erased cases (GDPR Art. 17)
def test_an_erased_case_leaves_the_queue_the_export_and_cannot_be_claimed_or_judged():
    erased = decision("REVIEW", erased_at="2026-12-06T10:00:00.000+00:00")
    v1 = record(ALICE, {"verdict": "attack", "attack_type": "mask", "reason": "silicone edge"})
    done = CaseHistory.of([v1], [])
    assert export_row(decision(), done) is not None  # the same case before erasure: a row
    assert export_row(erased, done) is None
    assert not in_queue(erased, CaseHistory(), reasons=[], state="all")
    with pytest.raises(ReviewError) as err:
        record(ALICE, {"verdict": "genuine", "reason": "live"}, dec=erased)
    assert err.value.code is ReviewErrorCode.NOT_REVIEWABLE and err.value.status == 409
