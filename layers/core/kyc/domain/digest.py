"""Signed, chained digests of the audit evidence, as CloudTrail validates its log files.

A digest lists what the evidence *is*, read from the stores themselves, never what a record says it
should be (issue 23): every version of every object under ``decisions/`` in the audit bucket, by key,
version id and the SHA-256 of the bytes the digest function read, and every decision item of the
table in a canonical form (its own SHA-256). It names the previous digest by key and the SHA-256 of
its bytes and is signed with an asymmetric KMS key. Whoever holds the public key can then prove,
offline, that no listed version or item was altered or removed, that nothing was added beside it
(a second version, a delete marker, an item no digest saw), and that no digest was removed,
altered, reordered or restarted.

Periods are half-open intervals ``[start, end)`` of one clock per kind of evidence: S3's own
``LastModified`` of an object version (set by the service, not the writer) and the decision item's
``decided_at``. An item dated after the digest was written (a forged future date) or not dated is
listed anyway, flagged, so no value hides an item. An item restated by an erasure (its
``erasure.json`` version falls in the period) is listed again with its new form. A record that
becomes visible after the digest of its period was written is listed, marked ``late``, by the next
digest, which re-reads the previous period. No AWS here: the caller signs, fetches and lists
(docs/digests.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DIGEST_FORMAT = "kycscreen-digest/2"
# Format 1 (issue 13) listed hashes copied from the records: its digests are read for the chain only
# (signature, sequence, links), so an upgraded stack's first format-2 digest chains on from them.
LEGACY_FORMATS = ("kycscreen-digest/1",)
SIGNING_ALGORITHM = "ECDSA_SHA_256"
DIGEST_PREFIX = "digests/"
EVIDENCE_PREFIX = "decisions/"  # decisions/<submission id>/{scores,lineage,erasure}.json
ITEM_KEY_PREFIX = "item:"  # an entry for a decision item: item:<submission id>
# Documents written exactly once: a second version of one is a rewrite, whoever made it.
WRITE_ONCE_NAMES = ("scores.json", "lineage.json")
# How far past the digest's own clock a decision may be dated before it counts as forged.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Records per digest at most. A longer backlog (the first digest of an existing table, a schedule
# broken for days) becomes several digests, each with a shorter period.
MAX_RECORDS_PER_DIGEST = 5000


class DigestError(Exception):
    """A digest cannot be built or read."""


class DigestFormatError(DigestError):
    """The bytes are not a digest of this format."""


def canonical_bytes(document: Any) -> bytes:
    """The one byte form of a JSON document: sorted keys, no spaces, UTF-8 (what is signed)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def period_time(moment: datetime) -> str:
    """A period bound in the form decide writes ``decided_at`` (UTC, milliseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def item_sha256(item: Mapping[str, Any]) -> str:
    """The decision item's own hash: SHA-256 of its canonical JSON (numbers as DynamoDB returns
    them through ``deserialise_item``), every attribute included, so any change to it shows."""
    return sha256_hex(canonical_bytes(dict(item)))


def item_entry_key(submission_id: str) -> str:
    return f"{ITEM_KEY_PREFIX}{submission_id}"


def submission_of(key: str) -> str:
    """The submission an entry belongs to: ``item:<sid>`` or ``decisions/<sid>/...``."""
    if key.startswith(ITEM_KEY_PREFIX):
        return key.removeprefix(ITEM_KEY_PREFIX)
    parts = key.split("/")
    return parts[1] if len(parts) > 2 and key.startswith(EVIDENCE_PREFIX) else ""


@dataclass(frozen=True, order=True)
class DigestEntry:
    """One version of one piece of evidence. Ordered by (at, key, version_id): the order a digest lists.

    ``at`` is S3's ``LastModified`` for an object version, ``decided_at`` for an item (or when its
    restatement was written). ``flag`` marks an item the digest lists although its date is not in
    the period: ``future`` (dated after the digest) or ``undated``; each is a finding for verifiers.
    """

    at: str
    key: str
    version_id: str
    sha256: str
    late: bool = False
    flag: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at,
            "key": self.key,
            "version_id": self.version_id,
            "sha256": self.sha256,
        }
        if self.late:
            out["late"] = True
        if self.flag:
            out["flag"] = self.flag
        return out

    @property
    def is_item(self) -> bool:
        return self.key.startswith(ITEM_KEY_PREFIX)


@dataclass(frozen=True)
class ObjectVersion:
    """One version of an audit object as listed (``ListObjectVersions``), or a delete marker."""

    key: str
    version_id: str
    at: str  # period_time(LastModified)
    delete_marker: bool = False


def object_entry(version: ObjectVersion, data: bytes, *, late: bool = False) -> DigestEntry:
    """A version listed with the SHA-256 of the bytes read from it, never a hash a record names."""
    return DigestEntry(
        at=version.at, key=version.key, version_id=version.version_id, sha256=sha256_hex(data), late=late
    )


def item_entry(
    item: Mapping[str, Any], *, at: str | None = None, late: bool = False, flag: str = ""
) -> DigestEntry:
    return DigestEntry(
        at=at if at is not None else str(item.get("decided_at") or ""),
        key=item_entry_key(str(item["submission_id"])),
        version_id="",
        sha256=item_sha256(item),
        late=late,
        flag=flag,
    )


def item_flag(item: Mapping[str, Any], written_at: datetime) -> str:
    """``future`` or ``undated`` for an item whose ``decided_at`` cannot be true, else ''."""
    decided = item.get("decided_at")
    if not isinstance(decided, str) or not decided:
        return "undated"
    if decided > period_time(written_at + FUTURE_TOLERANCE):
        return "future"
    return ""


@dataclass(frozen=True)
class DigestPeriod:
    """``[start, end)`` of time strings; ``start`` None for the first digest (all before)."""

    start: str | None
    end: str

    def contains(self, at: str) -> bool:
        return (self.start is None or self.start <= at) and at < self.end

    def to_dict(self) -> dict[str, str | None]:
        return {"start": self.start, "end": self.end}


def next_period(previous: Mapping[str, Any] | None, now: datetime, settle_seconds: float) -> DigestPeriod:
    """From where the previous digest ended to ``settle_seconds`` before now (never backwards)."""
    end = period_time(now - timedelta(seconds=max(0.0, settle_seconds)))
    if previous is None:
        return DigestPeriod(start=None, end=end)
    start = str(previous["period"]["end"])
    return DigestPeriod(start=start, end=max(start, end))


def capped_end(
    period: DigestPeriod, decided_ats: Sequence[str], truncated_at: Sequence[str], limit: int
) -> str:
    """Where a period must end to hold at most ``limit`` records, all of them seen.

    ``decided_ats`` are the times of the records read so far; ``truncated_at`` the last time read
    from each source that has more: past it that source is unread, so the period ends there
    (exclusive). Raises when more than ``limit`` records share one instant.
    """
    end = min([period.end, *truncated_at])
    inside = sorted(d for d in decided_ats if (period.start is None or d >= period.start) and d < end)
    if len(inside) > limit:
        end = inside[limit]  # the first record left out starts the next period
    if end < period.end and not any(d < end for d in inside):  # shortened, yet nothing fits before
        raise DigestError(f"more than {limit} records at {end}: cannot split the period there")
    return end


def period_entries(
    period: DigestPeriod,
    written_at: datetime,
    items: Iterable[Mapping[str, Any]],
    versions: Iterable[tuple[ObjectVersion, bytes]],
    restated: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[DigestEntry]:
    """What one digest lists for its period.

    ``items``: decision items read from the table whatever their decision value (a scan, not an
    index a writer can leave); ``versions``: object versions under ``decisions/`` with the bytes
    read from each. An item in the period is listed; a future-dated or undated one is listed
    flagged; an item whose audit objects changed in the period (``restated``: sid -> current item,
    an erasure) is listed again at the time of that change.
    """
    entries: list[DigestEntry] = []
    changed_at: dict[str, str] = {}
    for version, data in versions:
        if version.delete_marker or not period.contains(version.at):
            continue
        entries.append(object_entry(version, data))
        sid = submission_of(version.key)
        changed_at[sid] = max(changed_at.get(sid, ""), version.at)
    seen: set[str] = set()
    for item in items:
        sid = str(item.get("submission_id"))
        flag = item_flag(item, written_at)
        if flag or period.contains(str(item.get("decided_at"))):
            entries.append(item_entry(item, flag=flag))
            seen.add(sid)
    for sid, item in (restated or {}).items():
        at = changed_at.get(sid)
        if at and sid not in seen and item is not None:
            entries.append(item_entry(item, at=at))
    return sorted(set(entries))


def late_entries(
    previous_body: Mapping[str, Any],
    written_at: datetime,
    items: Iterable[Mapping[str, Any]],
    versions: Iterable[tuple[ObjectVersion, bytes]],
) -> list[DigestEntry]:
    """Evidence of the previous period that its digest did not list (visible only after it ran)."""
    bounds = previous_body["period"]
    before = DigestPeriod(start=bounds.get("start"), end=str(bounds["end"]))
    entries = previous_body.get("entries") or []
    listed = {(e.get("key"), e.get("version_id"), e.get("sha256")) for e in entries}
    out = []
    for entry in period_entries(before, written_at, items, versions):
        if entry.flag or (entry.key, entry.version_id, entry.sha256) in listed:
            continue
        out.append(DigestEntry(entry.at, entry.key, entry.version_id, entry.sha256, late=True))
    return out


def digest_key(sequence: int, written_at: str) -> str:
    """``digests/YYYY/MM/DD/<sequence>.json`` (by the day it was written): two writers of one
    sequence on one day collide on one key (the second write is refused)."""
    day = written_at[:10].replace("-", "/")
    return f"{DIGEST_PREFIX}{day}/{sequence:010d}.json"


@dataclass(frozen=True)
class PreviousDigest:
    key: str
    data: bytes

    def body(self) -> dict[str, Any]:
        return parse_digest(self.data).body


def build_digest_body(
    *,
    previous: PreviousDigest | None,
    period: DigestPeriod,
    entries: Sequence[DigestEntry],
    audit_bucket: str,
    signing_key_id: str,
    written_at: datetime,
) -> dict[str, Any]:
    """The signed part of a digest. ``entries`` are this period's plus the previous period's late ones."""
    prior = previous.body() if previous is not None else None
    sequence = int(prior["sequence"]) + 1 if prior is not None else 1
    for entry in entries:
        if not entry.late and not entry.flag and not period.contains(entry.at):
            raise DigestError(f"{entry.key} at {entry.at} is outside {period.to_dict()}")
    listed = sorted(set(entries))
    return {
        "format": DIGEST_FORMAT,
        "sequence": sequence,
        "audit_bucket": audit_bucket,
        "period": period.to_dict(),
        "previous": (
            {"key": previous.key, "sha256": sha256_hex(previous.data), "sequence": prior["sequence"]}
            if previous is not None and prior is not None
            else None
        ),
        "signing": {"algorithm": SIGNING_ALGORITHM, "key_id": signing_key_id},
        "written_at": period_time(written_at),
        "entry_count": len(listed),
        "entries": [e.to_dict() for e in listed],
    }


def signed_bytes(body: Mapping[str, Any]) -> bytes:
    """Exactly the bytes the signature covers (ECDSA_SHA_256 over their SHA-256; KMS is sent the hash
    as MessageType DIGEST): the body's canonical JSON."""
    return canonical_bytes(body)


def digest_document(body: Mapping[str, Any], signature: bytes) -> bytes:
    """The stored object: the body and its DER-encoded ECDSA signature (base64), canonical JSON."""
    return canonical_bytes({"digest": dict(body), "signature": base64.b64encode(signature).decode("ascii")})


@dataclass(frozen=True)
class ParsedDigest:
    body: dict[str, Any]
    signature: bytes


def parse_digest(data: bytes) -> ParsedDigest:
    try:
        document = json.loads(data)
        body, signature = document["digest"], base64.b64decode(document["signature"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise DigestFormatError(f"not a digest: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") not in (DIGEST_FORMAT, *LEGACY_FORMATS):
        raise DigestFormatError(f"not a {DIGEST_FORMAT} digest")
    return ParsedDigest(body=body, signature=signature)


# --------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class StoredDigest:
    """A digest object as read from the bucket (its first version); ``versions`` > 1 means it was
    overwritten, ``hidden`` that a delete marker hides it from ordinary reads."""

    key: str
    data: bytes
    versions: int = 1
    hidden: bool = False


@dataclass
class DigestReport:
    digests: int = 0
    entries: int = 0
    first_period_start: str | None = None
    last_period_end: str | None = None
    expected: bool = False  # evidence exists (or a genesis is pinned), so digests must too
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return self.digests > 0 and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "digests": self.digests,
            "entries": self.entries,
            "first_period_start": self.first_period_start,
            "last_period_end": self.last_period_end,
            "expected": self.expected,
            "problems": list(self.problems),
            "verified": self.verified,
        }


VerifySignature = Callable[[bytes, bytes], bool]  # (message, DER signature) -> valid
FetchVersion = Callable[[str, str], bytes | None]  # (key, version id) -> bytes, None when gone


@dataclass(frozen=True)
class Evidence:
    """What the stores hold now, read by the verifier itself (never through the digests)."""

    versions: Sequence[ObjectVersion]  # every version and delete marker under decisions/
    fetch: FetchVersion
    items: Sequence[Mapping[str, Any]]  # every decision item (a scan)


def verify_digests(
    digests: Sequence[StoredDigest],
    verify_signature: VerifySignature,
    evidence: Evidence,
    *,
    now: datetime,
    genesis_sha256: str | None = None,
) -> DigestReport:
    """Check every signature, the chain from its pinned genesis, every listed version and item
    against the stores, and that nothing in the stores before the last period's end is unlisted.

    Problem prefixes: ``unreadable``, ``signature``, ``overwritten``, ``deleted``, ``misplaced``,
    ``gap``, ``break``, ``genesis``, ``reordered``, ``duplicate``, ``removed``, ``altered``,
    ``unlisted``, ``future``, ``undated``, ``missing``.
    """
    report = DigestReport(digests=len(digests))
    report.expected = bool(evidence.versions or evidence.items or genesis_sha256)
    problems = report.problems
    if not digests:
        if report.expected:
            problems.append(
                f"missing: no digest in the audit bucket, yet {len(evidence.items)} decision item(s) and "
                f"{len(evidence.versions)} evidence version(s) exist"
                + (" and a genesis is pinned" if genesis_sha256 else "")
            )
        return report
    parsed: list[tuple[StoredDigest, dict[str, Any]]] = []
    for stored in digests:
        if stored.hidden:
            problems.append(f"deleted: {stored.key} is hidden by a delete marker")
        if stored.versions > 1:
            problems.append(
                f"overwritten: {stored.key} has {stored.versions} versions (digests are written once)"
            )
        try:
            digest = parse_digest(stored.data)
        except DigestFormatError as exc:
            problems.append(f"unreadable: {stored.key}: {exc}")
            continue
        if not verify_signature(signed_bytes(digest.body), digest.signature):
            problems.append(f"signature: {stored.key} does not verify with the public key")
        parsed.append((stored, digest.body))
    parsed.sort(key=lambda pair: (_int(pair[1].get("sequence")), pair[0].key))
    problems.extend(_genesis_problems(parsed, genesis_sha256))
    listed: dict[tuple[str, str], tuple[str, str]] = {}  # (key, version) -> (sha256, digest key)
    items_listed: dict[str, tuple[str, str]] = {}  # sid -> (sha256 of the latest listing, digest key)
    previous: tuple[StoredDigest, dict[str, Any]] | None = None
    current = [body for _, body in parsed if body.get("format") == DIGEST_FORMAT]
    for stored, body in parsed:
        problems.extend(_chain_problems(stored, body, previous))
        if body.get("format") == DIGEST_FORMAT:
            problems.extend(_entry_problems(stored, body, listed, items_listed))
        previous = (stored, body)
    if not parsed:
        return report
    report.first_period_start = parsed[0][1].get("period", {}).get("start")
    report.last_period_end = parsed[-1][1].get("period", {}).get("end")
    report.entries = len(listed) + len(items_listed)
    if not current:
        return report
    # what format-1 digests covered was checked by the release that wrote them (docs/digests.md)
    covered = DigestPeriod(
        start=(current[0].get("period") or {}).get("start"), end=str(report.last_period_end)
    )
    problems.extend(_version_problems(evidence, listed, covered))
    problems.extend(_item_problems(evidence, items_listed, covered, now))
    return report


def _genesis_problems(parsed: list[tuple[StoredDigest, dict[str, Any]]], genesis: str | None) -> list[str]:
    firsts = [stored for stored, body in parsed if _int(body.get("sequence")) == 1]
    problems = []
    if len(firsts) > 1:
        problems.append(
            f"break: the chain restarted: {len(firsts)} digests claim sequence 1 "
            f"({', '.join(s.key for s in firsts)})"
        )
    if genesis:
        if not firsts:
            problems.append(f"genesis: no digest 1 to check against the pinned genesis {genesis}")
        elif sha256_hex(firsts[0].data) != genesis.lower():
            problems.append(
                f"genesis: {firsts[0].key} hashes to {sha256_hex(firsts[0].data)}, "
                f"the pinned genesis is {genesis}"
            )
    return problems


def _chain_problems(
    stored: StoredDigest, body: Mapping[str, Any], previous: tuple[StoredDigest, dict[str, Any]] | None
) -> list[str]:
    problems = []
    sequence = _int(body.get("sequence"))
    period = body.get("period") or {}
    if stored.key != digest_key(sequence, str(body.get("written_at", ""))):
        problems.append(f"misplaced: {stored.key} holds digest {sequence} written {body.get('written_at')}")
    link = body.get("previous")
    if previous is None:
        if sequence != 1 or link is not None:
            problems.append(
                f"gap: the chain starts at digest {sequence} ({stored.key}); earlier digests are missing"
            )
        return problems
    prev_stored, prev_body = previous
    prev_sequence = _int(prev_body.get("sequence"))
    if sequence == prev_sequence:
        return [
            *problems,
            f"duplicate: digests {prev_stored.key} and {stored.key} both claim sequence {sequence}",
        ]
    if sequence != prev_sequence + 1:
        problems.append(
            f"gap: digest {prev_sequence + 1} to {sequence - 1} missing "
            f"between {prev_stored.key} and {stored.key}"
        )
        return problems
    if not isinstance(link, Mapping) or link.get("key") != prev_stored.key:
        problems.append(f"break: {stored.key} does not name {prev_stored.key} as its previous digest")
    elif link.get("sha256") != sha256_hex(prev_stored.data):
        problems.append(
            f"break: {stored.key} names {prev_stored.key} with another hash (changed after it was chained)"
        )
    if period.get("start") != (prev_body.get("period") or {}).get("end"):
        problems.append(
            f"break: {stored.key} starts at {period.get('start')}, the previous period ended at "
            f"{(prev_body.get('period') or {}).get('end')}"
        )
    return problems


def _entry_problems(
    stored: StoredDigest,
    body: Mapping[str, Any],
    listed: dict[tuple[str, str], tuple[str, str]],
    items_listed: dict[str, tuple[str, str]],
) -> list[str]:
    problems = []
    raw = body.get("entries") or []
    if body.get("entry_count") != len(raw):
        problems.append(f"break: {stored.key} says {body.get('entry_count')} entries and lists {len(raw)}")
    order = [(str(e.get("at")), str(e.get("key")), str(e.get("version_id"))) for e in raw]
    if order != sorted(order) or len(set(order)) != len(order):
        problems.append(f"reordered: {stored.key} does not list its entries in (at, key, version) order")
    period = body.get("period") or {}
    bounds = DigestPeriod(start=period.get("start"), end=str(period.get("end", "")))
    for entry in raw:
        key, version = str(entry.get("key")), str(entry.get("version_id") or "")
        flag = entry.get("flag")
        if flag:
            problems.append(f"{flag}: {key} was listed by {stored.key} dated {entry.get('at')!r}")
        elif not entry.get("late") and not bounds.contains(str(entry.get("at"))):
            problems.append(f"break: {stored.key} lists {key} at {entry.get('at')}, outside its period")
        if key.startswith(ITEM_KEY_PREFIX):
            items_listed[key.removeprefix(ITEM_KEY_PREFIX)] = (str(entry.get("sha256")), stored.key)
            continue
        if (key, version) in listed:
            earlier = listed[(key, version)][1]
            problems.append(f"duplicate: {key}@{version} is listed by {earlier} and {stored.key}")
            continue
        listed[(key, version)] = (str(entry.get("sha256")), stored.key)
    return problems


def _version_problems(
    evidence: Evidence, listed: dict[tuple[str, str], tuple[str, str]], covered: DigestPeriod
) -> list[str]:
    problems = []
    present: set[tuple[str, str]] = set()
    per_key: dict[str, int] = {}
    for version in sorted(evidence.versions, key=lambda v: (v.key, v.at, v.version_id)):
        if version.delete_marker:
            problems.append(f"deleted: {version.key} is hidden by a delete marker (written {version.at})")
            continue
        present.add((version.key, version.version_id))
        per_key[version.key] = per_key.get(version.key, 0) + 1
        found = listed.get((version.key, version.version_id))
        if found is None:
            if covered.contains(version.at):
                problems.append(
                    f"unlisted: {version.key}@{version.version_id} (written {version.at}) is in no digest"
                )
            continue
        data = evidence.fetch(version.key, version.version_id)
        if data is None:
            problems.append(f"removed: {version.key}@{version.version_id} (listed by {found[1]}) is gone")
        elif sha256_hex(data) != found[0]:
            problems.append(
                f"altered: {version.key}@{version.version_id} hashes to {sha256_hex(data)}, "
                f"{found[1]} lists {found[0]}"
            )
    for key, count in sorted(per_key.items()):
        if count > 1 and key.rsplit("/", 1)[-1] in WRITE_ONCE_NAMES:
            problems.append(f"overwritten: {key} has {count} versions (written once by decide)")
        elif count > 1 and "/reviews/" in key:  # issue 20: one document per verdict or approval
            problems.append(f"overwritten: {key} has {count} versions (written once by the review API)")
    for (key, version), (_, digest) in sorted(listed.items()):
        if (key, version) not in present:
            problems.append(f"removed: {key}@{version} (listed by {digest}) is gone")
    return problems


def _item_problems(
    evidence: Evidence, items_listed: dict[str, tuple[str, str]], covered: DigestPeriod, now: datetime
) -> list[str]:
    problems = []
    current = {str(i.get("submission_id")): i for i in evidence.items}
    for sid, item in sorted(current.items()):
        flag = item_flag(item, now)
        if flag:
            problems.append(f"{flag}: decision item {sid} is dated {item.get('decided_at')!r}")
        found = items_listed.get(sid)
        if found is None:
            if flag or covered.contains(str(item.get("decided_at"))):
                problems.append(
                    f"unlisted: decision item {sid} (decided {item.get('decided_at')}) is in no digest"
                )
            continue
        if item_sha256(item) != found[0]:
            problems.append(
                f"altered: decision item {sid} differs from its form in {found[1]} "
                "(changed after it was digested)"
            )
    for sid, (_, digest) in sorted(items_listed.items()):
        if sid not in current:
            problems.append(f"removed: decision item {sid} (listed by {digest}) is gone from the table")
    return problems


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
