"""Evidence digests (format 2, issue 23): building, chaining and verifying with a real ECDSA P-256 key.

Oracles: hashlib over the bytes as stored (never a hash a record names), `cryptography`'s own ECDSA
verification, and digest bodies written out by hand. The "stores" are plain dicts standing in for
the audit bucket's object versions and the decisions table.
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
    Evidence,
    ObjectVersion,
    PreviousDigest,
    StoredDigest,
    build_digest_body,
    capped_end,
    digest_document,
    digest_key,
    late_entries,
    next_period,
    period_entries,
    signed_bytes,
    verify_digests,
)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/digest"


def _iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


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


class World:
    """The audit bucket's versions and the table, mutated as writers and attackers would."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.versions: list[ObjectVersion] = []
        self.bytes: dict[tuple[str, str], bytes] = {}
        self.signer = Signer()
        self.digests: list[StoredDigest] = []
        self._n = 0

    def decide(self, sid: str, minutes: float, decision: str = "PASS") -> None:
        self.items[sid] = {"submission_id": sid, "decided_at": _iso(minutes), "decision": decision}
        for name in ("scores", "lineage"):
            self.put(f"decisions/{sid}/{name}.json", f"{name} {sid}".encode(), minutes)

    def put(self, key: str, data: bytes, minutes: float) -> str:
        self._n += 1
        version = f"v{self._n}"
        self.versions.append(ObjectVersion(key, version, _iso(minutes)))
        self.bytes[(key, version)] = data
        return version

    def delete_marker(self, key: str, minutes: float) -> None:
        self._n += 1
        self.versions.append(ObjectVersion(key, f"m{self._n}", _iso(minutes), delete_marker=True))

    def read(self) -> list[tuple[ObjectVersion, bytes]]:
        return [(v, self.bytes[(v.key, v.version_id)]) for v in self.versions if not v.delete_marker]

    def digest(self, minutes: float) -> StoredDigest:
        now = T0 + timedelta(minutes=minutes)
        previous = PreviousDigest(self.digests[-1].key, self.digests[-1].data) if self.digests else None
        prior = previous.body() if previous else None
        period = next_period(prior, now, settle_seconds=0)
        items = list(self.items.values())
        entries = period_entries(period, now, items, self.read(), self.items)
        if prior is not None:
            entries += late_entries(prior, now, items, self.read())
        body = build_digest_body(
            previous=previous,
            period=period,
            entries=entries,
            audit_bucket="audit",
            signing_key_id=KEY_ID,
            written_at=now,
        )
        data = digest_document(body, self.signer.sign(signed_bytes(body)))
        stored = StoredDigest(digest_key(body["sequence"], body["written_at"]), data)
        self.digests.append(stored)
        return stored

    def verify(self, digests: list[StoredDigest] | None = None, *, minutes: float = 1000, **kwargs: Any):
        evidence = Evidence(
            versions=list(self.versions),
            fetch=lambda key, version: self.bytes.get((key, version)),
            items=list(self.items.values()),
        )
        return verify_digests(
            self.digests if digests is None else digests,
            self.signer.verify,
            evidence,
            now=T0 + timedelta(minutes=minutes),
            **kwargs,
        )


@pytest.fixture
def world() -> World:
    w = World()
    w.decide("a", 10)
    w.decide("b", 20, decision="REJECT")
    w.digest(60)
    w.decide("c", 70)
    w.decide("d", 80)
    w.digest(120)
    w.digest(180)  # nothing new: an empty digest still extends the chain
    w.decide("e", 190)
    w.digest(240)
    return w


def _kinds(problems: list[str]) -> set[str]:
    return {p.split(":", 1)[0] for p in problems}


def _resign(signer: Signer, stored: StoredDigest, change: Any) -> StoredDigest:
    document = json.loads(stored.data)
    change(document["digest"])
    body = document["digest"]
    return StoredDigest(key=stored.key, data=digest_document(body, signer.sign(signed_bytes(body))))


# ------------------------------------------------------------------ building
def test_signed_bytes_are_the_canonical_json_written_by_hand() -> None:
    body = {"sequence": 1, "entries": [{"sha256": "ab", "key": "k"}], "format": "kycscreen-digest/2"}
    assert (
        signed_bytes(body)
        == b'{"entries":[{"key":"k","sha256":"ab"}],"format":"kycscreen-digest/2","sequence":1}'
    )


def test_digest_lists_versions_by_the_bytes_read_and_items_by_their_canonical_form(world) -> None:
    document = json.loads(world.digests[0].data)
    message = json.dumps(document["digest"], sort_keys=True, separators=(",", ":")).encode()
    world.signer.private.public_key().verify(
        base64.b64decode(document["signature"]), message, ec.ECDSA(hashes.SHA256())
    )  # raises if not
    item_a = b'{"decided_at":"2026-11-29T10:10:00.000+00:00","decision":"PASS","submission_id":"a"}'
    assert document["digest"]["entries"][:3] == [
        {
            "at": _iso(10),
            "key": "decisions/a/lineage.json",
            "version_id": "v2",
            "sha256": hashlib.sha256(b"lineage a").hexdigest(),
        },
        {
            "at": _iso(10),
            "key": "decisions/a/scores.json",
            "version_id": "v1",
            "sha256": hashlib.sha256(b"scores a").hexdigest(),
        },
        {"at": _iso(10), "key": "item:a", "version_id": "", "sha256": hashlib.sha256(item_a).hexdigest()},
    ]
    assert document["digest"]["entry_count"] == 6
    assert document["digest"]["previous"] is None and document["digest"]["sequence"] == 1


def test_each_digest_names_the_previous_by_the_sha256_of_its_stored_bytes(world) -> None:
    for before, after in itertools.pairwise(world.digests):
        link = json.loads(after.data)["digest"]["previous"]
        assert link["key"] == before.key
        assert link["sha256"] == hashlib.sha256(before.data).hexdigest()


def test_periods_tile_time_without_gap_or_overlap(world) -> None:
    bodies = [json.loads(d.data)["digest"] for d in world.digests]
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
    assert next_period(previous, T0 + timedelta(minutes=61), 900) == DigestPeriod(_iso(60), _iso(60))


def test_digest_key_by_day_and_sequence() -> None:
    assert digest_key(7, "2026-11-29T23:59:59.999+00:00") == "digests/2026/11/29/0000000007.json"


def test_entry_outside_the_period_is_refused_unless_late() -> None:
    period = DigestPeriod(start=_iso(60), end=_iso(120))
    stray = DigestEntry(at=_iso(30), key="decisions/x/lineage.json", version_id="v", sha256="0" * 64)
    kwargs = {"previous": None, "audit_bucket": "audit", "signing_key_id": KEY_ID, "written_at": T0}
    with pytest.raises(DigestError):
        build_digest_body(period=period, entries=[stray], **kwargs)
    late = DigestEntry(stray.at, stray.key, stray.version_id, stray.sha256, late=True)
    assert build_digest_body(period=period, entries=[late], **kwargs)["entries"][0]["late"] is True


def test_every_item_is_listed_whatever_its_decision_value() -> None:
    period = DigestPeriod(start=_iso(0), end=_iso(60))
    odd = {"submission_id": "z", "decided_at": _iso(5), "decision": "APPROVED_BY_HAND"}
    (entry,) = period_entries(period, T0 + timedelta(minutes=60), [odd], [])
    assert entry.key == "item:z" and not entry.flag


def test_future_dated_and_undated_items_are_listed_flagged() -> None:
    period = DigestPeriod(start=_iso(0), end=_iso(60))
    items = [
        {"submission_id": "f", "decided_at": "2099-01-01T00:00:00.000+00:00", "decision": "PASS"},
        {"submission_id": "u", "decision": "PASS"},
        {"submission_id": "n", "decided_at": 12345, "decision": "PASS"},
        {"submission_id": "soon", "decided_at": _iso(62), "decision": "PASS"},  # next period's: not yet
    ]
    entries = period_entries(period, T0 + timedelta(minutes=60), items, [])
    assert {(e.key, e.flag) for e in entries} == {
        ("item:f", "future"),
        ("item:u", "undated"),
        ("item:n", "undated"),
    }


# ------------------------------------------------------------------ verification
def test_intact_chain_verifies(world) -> None:
    report = world.verify()
    assert report.problems == [] and report.verified
    assert (report.digests, report.entries) == (4, 15)  # five items, ten document versions


def test_entry_hash_altered_in_a_digest_fails(world) -> None:
    digests = list(world.digests)
    document = json.loads(digests[0].data)
    document["digest"]["entries"][0]["sha256"] = "f" * 64
    digests[0] = StoredDigest(digests[0].key, json.dumps(document).encode())
    problems = world.verify(digests).problems
    assert any(p.startswith("signature: ") for p in problems)
    assert any(p.startswith("altered: decisions/a/lineage.json@v2") for p in problems), problems


def test_reordered_entries_fail_even_when_resigned(world) -> None:
    digests = list(world.digests)
    digests[0] = _resign(world.signer, digests[0], lambda b: b["entries"].reverse())
    problems = world.verify(digests).problems
    assert any(p.startswith(f"reordered: {digests[0].key}") for p in problems), problems
    assert any(p.startswith(f"break: {digests[1].key}") for p in problems), problems


def test_removed_digest_is_a_gap_and_a_removed_first_one_too(world) -> None:
    assert any(
        p.startswith("gap: digest 3 to 3 missing")
        for p in world.verify(world.digests[:2] + world.digests[3:]).problems
    )
    assert any(
        p.startswith("gap: the chain starts at digest 2") for p in world.verify(world.digests[1:]).problems
    )


def test_wrong_signature_fails(world) -> None:
    digests = list(world.digests)
    digests[3] = _resign(Signer(), digests[3], lambda b: None)
    assert world.verify(digests).problems == [
        f"signature: {digests[3].key} does not verify with the public key"
    ]


def test_delete_marker_on_evidence_is_a_finding_not_a_skip(world) -> None:
    world.delete_marker("decisions/c/lineage.json", 300)
    problems = world.verify().problems
    assert problems == [
        f"deleted: decisions/c/lineage.json is hidden by a delete marker (written {_iso(300)})"
    ]


def test_hidden_or_overwritten_digest_is_a_finding(world) -> None:
    digests = list(world.digests)
    digests[1] = StoredDigest(digests[1].key, digests[1].data, versions=2, hidden=True)
    assert _kinds(world.verify(digests).problems) == {"deleted", "overwritten"}


def test_second_version_of_a_document_written_before_the_digest_is_caught(world) -> None:
    # the pre-digest rewrite: a new scores.json version and the item changed, then the digest runs
    world.put("decisions/e/scores.json", b"forged scores e", 200)
    world.items["e"]["decision"] = "PASS"
    world.digest(300)
    problems = world.verify().problems
    assert problems == ["overwritten: decisions/e/scores.json has 2 versions (written once by decide)"]


def test_evidence_version_changed_in_place_is_altered(world) -> None:
    world.bytes[("decisions/c/scores.json", "v5")] = b"edited"
    problems = world.verify().problems
    assert [p for p in problems if p.startswith("altered: decisions/c/scores.json@v5")], problems


def test_item_changed_after_its_digest_is_altered_and_removed_item_is_removed(world) -> None:
    world.items["c"]["decision"] = "REJECT"
    del world.items["d"]
    problems = world.verify().problems
    assert any(p.startswith("altered: decision item c") for p in problems), problems
    assert any(p.startswith("removed: decision item d") for p in problems), problems


def test_item_restated_by_an_erasure_is_listed_again_and_verifies(world) -> None:
    world.items["a"] = {**world.items["a"], "erased_at": _iso(250)}
    world.put("decisions/a/erasure.json", b"erased a", 250)
    world.digest(300)
    assert world.verify().problems == []


def test_back_dated_item_in_a_covered_period_is_unlisted(world) -> None:
    world.items["sneaked"] = {"submission_id": "sneaked", "decided_at": _iso(75), "decision": "PASS"}
    assert world.verify().problems == [
        f"unlisted: decision item sneaked (decided {_iso(75)}) is in no digest"
    ]
    # one after the last digest's period is not yet due
    del world.items["sneaked"]
    world.items["next"] = {"submission_id": "next", "decided_at": _iso(500), "decision": "PASS"}
    assert world.verify().problems == []


def test_future_dated_item_is_a_finding_in_the_digest_and_in_the_table(world) -> None:
    world.items["f"] = {
        "submission_id": "f",
        "decided_at": "2099-01-01T00:00:00.000+00:00",
        "decision": "PASS",
    }
    assert _kinds(world.verify().problems) == {"future", "unlisted"}  # before the next digest
    world.digest(300)
    problems = world.verify().problems
    assert _kinds(problems) == {"future"} and len(problems) == 2  # flagged by the digest, and as found


def test_restarted_chain_is_a_break(world) -> None:
    restarted = World()
    restarted.signer = world.signer
    restarted.items, restarted.versions, restarted.bytes = world.items, world.versions, world.bytes
    first = restarted.digest(24 * 60 + 10)  # the next day, starting again at 1
    problems = world.verify([*world.digests, first]).problems
    assert any(p.startswith("break: the chain restarted: 2 digests claim sequence 1") for p in problems), (
        problems
    )


def test_genesis_pinned_by_the_auditor(world) -> None:
    genesis = hashlib.sha256(world.digests[0].data).hexdigest()
    assert world.verify(genesis_sha256=genesis).problems == []
    assert _kinds(world.verify(genesis_sha256="0" * 64).problems) == {"genesis"}
    # a whole chain rebuilt by someone holding the signing key does not match the recorded genesis
    forged = World()
    forged.signer = world.signer
    forged.items, forged.versions, forged.bytes = world.items, world.versions, world.bytes
    forged.digest(60)
    forged.digest(240)
    assert "genesis" in _kinds(forged.verify(genesis_sha256=genesis).problems)


def test_nothing_to_verify_where_evidence_exists_is_a_failure(world) -> None:
    report = world.verify([])
    assert report.expected and not report.verified
    assert report.problems[0].startswith("missing: no digest in the audit bucket, yet 5 decision item(s)")
    empty = World().verify([])
    assert not empty.expected and empty.problems == []


def test_late_evidence_is_listed_by_the_next_digest_and_verifies() -> None:
    w = World()
    w.decide("p", 10)
    w.digest(60)
    w.decide("q", 50)  # visible only after digest 1 ran, dated inside its period
    w.digest(120)
    body = json.loads(w.digests[1].data)["digest"]
    assert {e["key"] for e in body["entries"] if e.get("late")} == {
        "item:q",
        "decisions/q/scores.json",
        "decisions/q/lineage.json",
    }
    assert w.verify().problems == []


# ------------------------------------------------------------------ bounded digests
def test_capped_end_keeps_periods_under_the_record_limit() -> None:
    period = DigestPeriod(start=_iso(0), end=_iso(60))
    records = [_iso(m) for m in (1, 2, 2, 3, 4)]
    assert capped_end(period, records, [], limit=10) == _iso(60)
    assert capped_end(period, records, [], limit=3) == _iso(3)
    assert capped_end(period, records, [], limit=2) == _iso(2)
    assert capped_end(period, records, [_iso(2)], limit=10) == _iso(2)
    assert capped_end(period, [_iso(-5)] * 9, [], limit=3) == _iso(60)  # the previous period's: not counted


def test_capped_end_refuses_a_period_that_cannot_make_progress() -> None:
    period = DigestPeriod(start=_iso(0), end=_iso(60))
    with pytest.raises(DigestError):
        capped_end(period, [_iso(5)] * 4, [_iso(5)], limit=3)


def test_an_upgraded_stack_chains_format_2_on_from_its_format_1_digests() -> None:
    """Migration: the last format-1 digest is the cursor; its entries (hashes copied from records)
    are left to the release that wrote them, the chain and signature are still checked."""
    w = World()
    w.decide("old", 10)
    legacy = {
        "format": "kycscreen-digest/1",
        "sequence": 1,
        "audit_bucket": "audit",
        "period": {"start": None, "end": _iso(60)},
        "previous": None,
        "signing": {"algorithm": "ECDSA_SHA_256", "key_id": KEY_ID},
        "written_at": _iso(60),
        "entry_count": 1,
        "entries": [{"key": "decisions/old/lineage.json", "sha256": "0" * 64, "decided_at": _iso(10)}],
    }
    data = digest_document(legacy, w.signer.sign(signed_bytes(legacy)))
    w.digests.append(StoredDigest(digest_key(1, legacy["written_at"]), data))
    w.decide("new", 70)
    second = w.digest(120)
    assert json.loads(second.data)["digest"]["previous"]["sequence"] == 1
    assert w.verify().problems == []
    w.items["new"]["decision"] = "REJECT"  # format-2 entries are checked as ever
    assert _kinds(w.verify().problems) == {"altered"}
