"""Evidence digests: building, chaining and verifying, with a real ECDSA P-256 key and no AWS.

Oracles: hashlib over the bytes as stored, `cryptography`'s own ECDSA verification, and digest
bodies written out by hand.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kyc.domain.digest import (
    DigestEntry,
    DigestError,
    DigestPeriod,
    PreviousDigest,
    StoredDigest,
    build_digest_body,
    capped_end,
    digest_document,
    digest_key,
    entries_from_decisions,
    next_period,
    signed_bytes,
    verify_digests,
)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/digest"


def _iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


def _item(sid: str, minutes: float, *, scores: bool = True) -> dict[str, Any]:
    artefacts = {
        "lineage_key": f"decisions/{sid}/lineage.json",
        "lineage_sha256": hashlib.sha256(f"lineage {sid}".encode()).hexdigest(),
    }
    if scores:
        artefacts |= {
            "scores_key": f"decisions/{sid}/scores.json",
            "scores_sha256": hashlib.sha256(f"scores {sid}".encode()).hexdigest(),
        }
    return {"submission_id": sid, "decided_at": _iso(minutes), "decision": "PASS", "artefacts": artefacts}


def _evidence(items: list[dict[str, Any]]) -> dict[str, bytes]:
    out = {}
    for item in items:
        sid = item["submission_id"]
        out[f"decisions/{sid}/lineage.json"] = f"lineage {sid}".encode()
        if "scores_key" in item["artefacts"]:
            out[f"decisions/{sid}/scores.json"] = f"scores {sid}".encode()
    return out


class Signer:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message, ec.ECDSA(hashes.SHA256()))

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.private.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def _chain(
    signer: Signer, periods: list[list[dict[str, Any]]], step_minutes: float = 60
) -> list[StoredDigest]:
    """One digest per period of items, each chained to the one before (as the function writes them)."""
    out: list[StoredDigest] = []
    previous: PreviousDigest | None = None
    for index, items in enumerate(periods):
        now = T0 + timedelta(minutes=step_minutes * (index + 1))
        prior = previous.body() if previous else None
        period = next_period(prior, now, settle_seconds=0)
        body = build_digest_body(
            previous=previous,
            period=period,
            entries=entries_from_decisions(items),
            audit_bucket="audit",
            signing_key_id=KEY_ID,
            written_at=now,
        )
        data = digest_document(body, signer.sign(signed_bytes(body)))
        key = digest_key(body["sequence"], body["written_at"])
        out.append(StoredDigest(key=key, data=data))
        previous = PreviousDigest(key=key, data=data)
    return out


def _resign(signer: Signer, stored: StoredDigest, change: Any) -> StoredDigest:
    document = json.loads(stored.data)
    body = document["digest"]
    change(body)
    return StoredDigest(key=stored.key, data=digest_document(body, signer.sign(signed_bytes(body))))


@pytest.fixture
def world() -> dict[str, Any]:
    periods = [
        [_item("a", 10), _item("b", 20, scores=False)],
        [_item("c", 70), _item("d", 80)],
        [],
        [_item("e", 190)],
    ]
    items = [i for p in periods for i in p]
    signer = Signer()
    return {
        "signer": signer,
        "digests": _chain(signer, periods),
        "evidence": _evidence(items),
        "items": items,
    }


def _verify(world: dict[str, Any], digests: list[StoredDigest] | None = None, **kwargs: Any):
    evidence = world["evidence"]
    return verify_digests(
        world["digests"] if digests is None else digests, world["signer"].verify, evidence.get, **kwargs
    )


# ------------------------------------------------------------------ building
def test_signed_bytes_are_the_canonical_json_written_by_hand() -> None:
    body = {"sequence": 1, "entries": [{"sha256": "ab", "key": "k"}], "format": "kycscreen-digest/1"}
    assert (
        signed_bytes(body)
        == b'{"entries":[{"key":"k","sha256":"ab"}],"format":"kycscreen-digest/1","sequence":1}'
    )


def test_stored_digest_holds_the_body_and_a_signature_that_verifies_independently(world) -> None:
    first = world["digests"][0]
    document = json.loads(first.data)
    message = json.dumps(document["digest"], sort_keys=True, separators=(",", ":")).encode()
    world["signer"].private.public_key().verify(
        base64.b64decode(document["signature"]), message, ec.ECDSA(hashes.SHA256())
    )  # raises if not
    assert document["digest"]["entries"] == [
        {
            "key": "decisions/a/lineage.json",
            "sha256": hashlib.sha256(b"lineage a").hexdigest(),
            "submission_id": "a",
            "decided_at": "2026-11-29T10:10:00.000+00:00",
        },
        {
            "key": "decisions/a/scores.json",
            "sha256": hashlib.sha256(b"scores a").hexdigest(),
            "submission_id": "a",
            "decided_at": "2026-11-29T10:10:00.000+00:00",
        },
        {
            "key": "decisions/b/lineage.json",
            "sha256": hashlib.sha256(b"lineage b").hexdigest(),
            "submission_id": "b",
            "decided_at": "2026-11-29T10:20:00.000+00:00",
        },
    ]
    assert document["digest"]["previous"] is None and document["digest"]["sequence"] == 1
    assert document["digest"]["signing"] == {"algorithm": "ECDSA_SHA_256", "key_id": KEY_ID}


def test_each_digest_names_the_previous_by_the_sha256_of_its_stored_bytes(world) -> None:
    digests = world["digests"]
    for before, after in itertools.pairwise(digests):
        link = json.loads(after.data)["digest"]["previous"]
        assert link["key"] == before.key
        assert link["sha256"] == hashlib.sha256(before.data).hexdigest()


def test_periods_tile_time_without_gap_or_overlap(world) -> None:
    bodies = [json.loads(d.data)["digest"] for d in world["digests"]]
    assert bodies[0]["period"] == {"start": None, "end": "2026-11-29T11:00:00.000+00:00"}
    for before, after in itertools.pairwise(bodies):
        assert after["period"]["start"] == before["period"]["end"]


def test_period_is_half_open_a_record_at_the_end_belongs_to_the_next() -> None:
    period = DigestPeriod(start=_iso(0), end=_iso(60))
    assert period.contains(_iso(0)) and period.contains(_iso(59.999))
    assert not period.contains(_iso(60)) and not period.contains(_iso(-0.001))


def test_next_period_waits_the_settle_time_and_never_runs_backwards() -> None:
    previous = {"period": {"start": None, "end": _iso(60)}}
    assert next_period(previous, T0 + timedelta(minutes=120), 900) == DigestPeriod(_iso(60), _iso(105))
    # a run right after the previous one (settle larger than the gap): an empty period, not a negative one
    assert next_period(previous, T0 + timedelta(minutes=61), 900) == DigestPeriod(_iso(60), _iso(60))


def test_digest_key_by_day_and_sequence() -> None:
    assert digest_key(7, "2026-11-29T23:59:59.999+00:00") == "digests/2026/11/29/0000000007.json"


def test_entry_outside_the_period_is_refused_unless_late() -> None:
    period = DigestPeriod(start=_iso(60), end=_iso(120))
    stray = DigestEntry(
        decided_at=_iso(30), key="decisions/x/lineage.json", sha256="0" * 64, submission_id="x"
    )
    kwargs = {"previous": None, "audit_bucket": "audit", "signing_key_id": KEY_ID, "written_at": T0}
    with pytest.raises(DigestError):
        build_digest_body(period=period, entries=[stray], **kwargs)
    late = DigestEntry(stray.decided_at, stray.key, stray.sha256, stray.submission_id, late=True)
    body = build_digest_body(period=period, entries=[late], **kwargs)
    assert body["entries"][0]["late"] is True


def test_record_without_documents_lists_nothing() -> None:
    assert entries_from_decisions([{"submission_id": "z", "decided_at": _iso(1), "artefacts": None}]) == []


# ------------------------------------------------------------------ verification
def test_intact_chain_verifies(world) -> None:
    report = _verify(world, recorded=lambda start, end: world["items"])
    assert report.problems == [] and report.verified
    assert (report.digests, report.entries) == (4, 9)  # a, c, d, e: two documents; b: lineage only


def test_entry_removed_from_a_digest_fails_its_signature(world) -> None:
    digests = list(world["digests"])
    document = json.loads(digests[1].data)
    del document["digest"]["entries"][0]
    digests[1] = StoredDigest(digests[1].key, json.dumps(document).encode())
    problems = _verify(world, digests).problems
    assert any(p.startswith(f"signature: {digests[1].key}") for p in problems), problems


def test_entry_hash_altered_in_a_digest_fails(world) -> None:
    digests = list(world["digests"])
    document = json.loads(digests[0].data)
    document["digest"]["entries"][0]["sha256"] = "f" * 64
    digests[0] = StoredDigest(digests[0].key, json.dumps(document).encode())
    problems = _verify(world, digests).problems
    assert any(p.startswith("signature: ") for p in problems)
    assert any(p.startswith("altered: decisions/a/lineage.json") for p in problems), problems


def test_reordered_entries_fail_even_when_resigned(world) -> None:
    # a writer holding the key (or a bug) that lists out of order is still caught
    digests = list(world["digests"])
    digests[0] = _resign(world["signer"], digests[0], lambda b: b["entries"].reverse())
    problems = _verify(world, digests).problems
    assert any(p.startswith(f"reordered: {digests[0].key}") for p in problems), problems
    # and the next digest no longer matches the bytes it chained to
    assert any(p.startswith(f"break: {digests[1].key}") for p in problems), problems


def test_removed_digest_is_a_gap(world) -> None:
    digests = list(world["digests"])
    del digests[2]
    problems = _verify(world, digests).problems
    assert any(p.startswith("gap: digest 3 to 3 missing") for p in problems), problems


def test_removed_first_digest_is_a_gap(world) -> None:
    problems = _verify(world, world["digests"][1:]).problems
    assert any(p.startswith("gap: the chain starts at digest 2") for p in problems), problems


def test_digests_read_in_another_order_still_verify(world) -> None:
    assert _verify(world, list(reversed(world["digests"]))).problems == []


def test_wrong_signature_fails(world) -> None:
    other = Signer()
    digests = list(world["digests"])
    digests[3] = _resign(other, digests[3], lambda b: None)
    problems = _verify(world, digests).problems
    assert problems == [f"signature: {digests[3].key} does not verify with the public key"]


def test_altered_and_removed_evidence_fail(world) -> None:
    evidence = dict(world["evidence"])
    evidence["decisions/c/scores.json"] = b"scores c, edited"
    del evidence["decisions/e/lineage.json"]
    problems = verify_digests(world["digests"], world["signer"].verify, evidence.get).problems
    assert any(p.startswith("altered: decisions/c/scores.json") for p in problems), problems
    assert any(p.startswith("removed: decisions/e/lineage.json") for p in problems), problems


def test_overwritten_digest_fails(world) -> None:
    digests = list(world["digests"])
    digests[0] = StoredDigest(digests[0].key, digests[0].data, versions=2)
    assert _verify(world, digests).problems == [
        f"overwritten: {digests[0].key} has 2 versions (digests are written once)"
    ]


def test_digest_moved_to_another_key_is_misplaced(world) -> None:
    digests = list(world["digests"])
    digests[3] = StoredDigest("digests/2026/11/30/0000000004.json", digests[3].data)
    assert any(p.startswith("misplaced: ") for p in _verify(world, digests).problems)


def test_record_in_a_covered_period_missing_from_every_digest_is_unlisted(world) -> None:
    added = _item("sneaked", 75)  # a record that appeared in period 2 after the fact
    world["evidence"].update(_evidence([added]))
    problems = _verify(world, recorded=lambda start, end: [*world["items"], added]).problems
    assert sorted(problems) == [
        f"unlisted: decisions/sneaked/lineage.json (decided {_iso(75)}) is in no digest",
        f"unlisted: decisions/sneaked/scores.json (decided {_iso(75)}) is in no digest",
    ]
    # a record after the last digest's period is not yet due
    later = _item("next", 500)
    assert _verify(world, recorded=lambda start, end: [*world["items"], later]).problems == []


def test_late_record_is_listed_by_the_next_digest_and_verifies(world) -> None:
    signer = Signer()
    on_time, late = _item("p", 10), _item("q", 50)  # q decided in period 1, visible only after it
    first = _chain(signer, [[on_time]])[0]
    previous = PreviousDigest(first.key, first.data)
    period = next_period(previous.body(), T0 + timedelta(minutes=120), 0)
    entries = entries_from_decisions([_item("r", 90)]) + entries_from_decisions([late], late=True)
    body = build_digest_body(
        previous=previous,
        period=period,
        entries=entries,
        audit_bucket="audit",
        signing_key_id=KEY_ID,
        written_at=T0,
    )
    second = StoredDigest(
        digest_key(2, body["written_at"]), digest_document(body, signer.sign(signed_bytes(body)))
    )
    evidence = _evidence([on_time, late, _item("r", 90)])
    report = verify_digests(
        [first, second], signer.verify, evidence.get, recorded=lambda s, e: [on_time, late, _item("r", 90)]
    )
    assert report.problems == [] and report.entries == 6  # three records, two documents each


# ------------------------------------------------------------------ bounded digests
def test_capped_end_keeps_periods_under_the_record_limit() -> None:
    period = DigestPeriod(start=_iso(0), end=_iso(60))
    records = [_iso(m) for m in (1, 2, 2, 3, 4)]
    assert capped_end(period, records, [], limit=10) == _iso(60)  # all fit: unchanged
    assert capped_end(period, records, [], limit=3) == _iso(3)  # [0, 3) holds 1, 2, 2
    assert capped_end(period, records, [], limit=2) == _iso(2)  # both 2s go together to the next period
    # an outcome partition read only up to minute 2 (it has more): nothing past it is known
    assert capped_end(period, records, [_iso(2)], limit=10) == _iso(2)


def test_capped_end_refuses_a_period_that_cannot_make_progress() -> None:
    period = DigestPeriod(start=_iso(0), end=_iso(60))
    with pytest.raises(DigestError):
        capped_end(period, [_iso(5)] * 4, [_iso(5)], limit=3)  # more than 3 at one instant


def test_review_document_recorded_in_a_covered_period_but_in_no_digest_is_unlisted(world) -> None:
    """issue 20: verdict and approval records name their write-once document; one the digests skipped
    (or a record added after the fact) is reported, one after the last period is not yet due."""
    sid = "c" * 64
    document = b'{"record_kind":"verdict","verdict":"attack"}'
    verdict = {
        "review_id": sid,
        "record_kind": "verdict",
        "recorded_at": _iso(75),
        "evidence_key": f"decisions/{sid}/reviews/verdict-v000001.json",
        "evidence_sha256": hashlib.sha256(document).hexdigest(),
    }
    world["evidence"][verdict["evidence_key"]] = document
    problems = _verify(world, reviewed=lambda start, end: [verdict]).problems
    assert problems == [
        f"unlisted: decisions/{sid}/reviews/verdict-v000001.json (review recorded {_iso(75)}) is in no digest"
    ]
    assert _verify(world, reviewed=lambda start, end: [verdict | {"recorded_at": _iso(500)}]).problems == []
    assert _verify(world, reviewed=lambda start, end: []).problems == []
