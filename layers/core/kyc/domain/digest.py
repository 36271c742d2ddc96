"""Signed, chained digests of the audit evidence, as CloudTrail validates its log files.

Each digest lists the decision documents (``scores.json``) and lineage documents (``lineage.json``)
recorded in one period, by key and SHA-256, names the previous digest by key and the SHA-256 of
its bytes, and is signed with an asymmetric KMS key. Whoever holds the public key can then prove,
offline, that no listed document was altered or removed, that no digest was removed, altered or
reordered, and that no document recorded in a covered period is missing from the digests.

Periods are half-open intervals of the decision record's ``decided_at`` string, ``[start, end)``:
each digest starts exactly where the previous one ended, so consecutive periods tile time with no
gap and no overlap. A record that becomes visible after the digest of its period was written (a
slow index, a retried write) is listed, marked ``late``, by the next digest, which re-reads the
previous period. No AWS here: the caller signs, fetches and queries (docs/digests.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DIGEST_FORMAT = "kycscreen-digest/1"
SIGNING_ALGORITHM = "ECDSA_SHA_256"
DIGEST_PREFIX = "digests/"
# The documents a decision record names in its ``artefacts`` (``<name>_key``, ``<name>_sha256``).
EVIDENCE_NAMES = ("scores", "lineage")
# Records per digest at most (two documents each: about 3.0 MB of digest). A longer backlog (the first
# digest of an existing table, a schedule broken for days) becomes several digests, each with a shorter
# period, so no digest outgrows the function's memory or time.
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


@dataclass(frozen=True, order=True)
class DigestEntry:
    """One document listed by a digest. Ordered by (decided_at, key): the order a digest lists."""

    decided_at: str
    key: str
    sha256: str
    submission_id: str
    late: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key,
            "sha256": self.sha256,
            "submission_id": self.submission_id,
            "decided_at": self.decided_at,
        }
        if self.late:
            out["late"] = True
        return out


def entries_from_decisions(items: Iterable[Mapping[str, Any]], *, late: bool = False) -> list[DigestEntry]:
    """The documents each decision record names, with the hash decide committed before writing them.

    The hash comes from the record, not from reading the object: the record is written first and
    the object after it with exactly those bytes (docs/architecture.md), so a document whose write
    is still being retried is listed with the bytes it must have, and an object changed before the
    digest ran is not blessed. Records without documents (the state machine's last-resort ERROR)
    list nothing.
    """
    entries = []
    for item in items:
        artefacts = item.get("artefacts") or {}
        for name in EVIDENCE_NAMES:
            key, digest = artefacts.get(f"{name}_key"), artefacts.get(f"{name}_sha256")
            if key and digest:
                entries.append(
                    DigestEntry(
                        decided_at=str(item["decided_at"]),
                        key=str(key),
                        sha256=str(digest),
                        submission_id=str(item["submission_id"]),
                        late=late,
                    )
                )
    return sorted(set(entries))


# issue 20: the write-once documents of human review (one per verdict and per approval, in the audit
# bucket under reviews/) are a record kind of their own: listed in a separate section of the digest,
# by the time they were recorded, never mixed with the decision documents.
REVIEW_SECTION = "review_entries"
REVIEW_COUNT = "review_entry_count"


def entries_from_review_records(
    items: Iterable[Mapping[str, Any]], *, late: bool = False
) -> list[DigestEntry]:
    """The evidence document each verdict or approval record names (``evidence_key``/``_sha256``), with
    the hash the API committed in the record before writing the document (as decide does)."""
    entries = []
    for item in items:
        key, digest = item.get("evidence_key"), item.get("evidence_sha256")
        if key and digest:
            entries.append(
                DigestEntry(
                    decided_at=str(item["recorded_at"]),
                    key=str(key),
                    sha256=str(digest),
                    submission_id=str(item["review_id"]),
                    late=late,
                )
            )
    return sorted(set(entries))


@dataclass(frozen=True)
class DigestPeriod:
    """``[start, end)`` of ``decided_at`` strings; ``start`` None for the first digest (all before)."""

    start: str | None
    end: str

    def contains(self, decided_at: str) -> bool:
        return (self.start is None or self.start <= decided_at) and decided_at < self.end

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

    ``decided_ats`` are the records read so far (up to ``limit`` per index partition, oldest first);
    ``truncated_at`` is the last ``decided_at`` read from each partition that has more: past it that
    partition is unread, so the period ends there (exclusive). Raises when more than ``limit`` records
    share one instant and no shorter period can make progress.
    """
    end = min([period.end, *truncated_at])
    inside = sorted(d for d in decided_ats if d < end)
    if len(inside) > limit:
        end = inside[limit]  # the first record left out starts the next period
    if end < period.end and not any(d < end for d in inside):  # shortened, yet nothing fits before
        raise DigestError(f"more than {limit} records decided at {end}: cannot split the period there")
    return end


def digest_key(sequence: int, written_at: str) -> str:
    """``digests/YYYY/MM/DD/<sequence>.json`` (by the day it was written): the newest digest is in
    today's or a recent day's listing, and two writers of one sequence on one day collide on one key
    (the second write is refused)."""
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
    review_entries: Sequence[DigestEntry] = (),
) -> dict[str, Any]:
    """The signed part of a digest. ``entries`` are this period's plus the previous period's late ones;
    ``review_entries`` the human-review documents recorded in the period (a section only when any)."""
    prior = previous.body() if previous is not None else None
    sequence = int(prior["sequence"]) + 1 if prior is not None else 1
    for entry in [*entries, *review_entries]:
        if not entry.late and not period.contains(entry.decided_at):
            raise DigestError(f"{entry.key} decided at {entry.decided_at} is outside {period.to_dict()}")
    listed = sorted(set(entries))
    reviews = sorted(set(review_entries))
    section = {REVIEW_COUNT: len(reviews), REVIEW_SECTION: [e.to_dict() for e in reviews]} if reviews else {}
    return section | {
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
    """Exactly the bytes the key signs (ECDSA_SHA_256, MessageType RAW): the body's canonical JSON."""
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
    if not isinstance(body, dict) or body.get("format") != DIGEST_FORMAT:
        raise DigestFormatError(f"not a {DIGEST_FORMAT} digest")
    return ParsedDigest(body=body, signature=signature)


# --------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class StoredDigest:
    """A digest object as read from the bucket; ``versions`` > 1 means it was overwritten."""

    key: str
    data: bytes
    versions: int = 1


@dataclass
class DigestReport:
    digests: int = 0
    entries: int = 0
    first_period_start: str | None = None
    last_period_end: str | None = None
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
            "problems": list(self.problems),
            "verified": self.verified,
        }


VerifySignature = Callable[[bytes, bytes], bool]  # (message, DER signature) -> valid
FetchEvidence = Callable[[str], bytes | None]  # key -> current bytes, None when gone
RecordedBetween = Callable[[str | None, str], Iterable[Mapping[str, Any]]]  # decision records in [start, end)


def verify_digests(
    digests: Sequence[StoredDigest],
    verify_signature: VerifySignature,
    fetch: FetchEvidence,
    *,
    recorded: RecordedBetween | None = None,
) -> DigestReport:
    """Check every signature, the chain, every listed document, and that nothing recorded is unlisted.

    ``recorded(start, end)`` returns the decision records of the periods the digests cover: any
    document they name that no digest lists is reported ``unlisted``.
    Problem prefixes: ``unreadable``, ``signature``, ``overwritten``, ``misplaced``, ``gap``,
    ``break``, ``reordered``, ``duplicate``, ``removed``, ``altered``, ``unlisted``.
    """
    report = DigestReport(digests=len(digests))
    problems = report.problems
    parsed: list[tuple[StoredDigest, dict[str, Any]]] = []
    for stored in digests:
        try:
            digest = parse_digest(stored.data)
        except DigestFormatError as exc:
            problems.append(f"unreadable: {stored.key}: {exc}")
            continue
        if not verify_signature(signed_bytes(digest.body), digest.signature):
            problems.append(f"signature: {stored.key} does not verify with the public key")
        if stored.versions > 1:
            problems.append(
                f"overwritten: {stored.key} has {stored.versions} versions (digests are written once)"
            )
        parsed.append((stored, digest.body))
    parsed.sort(key=lambda pair: (_int(pair[1].get("sequence")), pair[0].key))
    listed: dict[str, tuple[str, str]] = {}  # document key -> (sha256, digest key)
    previous: tuple[StoredDigest, dict[str, Any]] | None = None
    for stored, body in parsed:
        problems.extend(_chain_problems(stored, body, previous))
        problems.extend(_entry_problems(stored, body, listed))
        problems.extend(_entry_problems(stored, body, listed, section=REVIEW_SECTION, counted=REVIEW_COUNT))
        previous = (stored, body)
    if parsed:
        report.first_period_start = parsed[0][1].get("period", {}).get("start")
        report.last_period_end = parsed[-1][1].get("period", {}).get("end")
    report.entries = len(listed)
    for key, (digest_sha256, digest_key_) in sorted(listed.items()):
        data = fetch(key)
        if data is None:
            problems.append(f"removed: {key} (listed by {digest_key_}) is gone")
        elif sha256_hex(data) != digest_sha256:
            problems.append(
                f"altered: {key} hashes to {sha256_hex(data)}, {digest_key_} lists {digest_sha256}"
            )
    if report.last_period_end is not None and recorded is not None:
        covered = DigestPeriod(start=report.first_period_start, end=report.last_period_end)
        for entry in entries_from_decisions(recorded(covered.start, covered.end)):
            if covered.contains(entry.decided_at) and entry.key not in listed:
                problems.append(f"unlisted: {entry.key} (decided {entry.decided_at}) is in no digest")
    return report


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
    listed: dict[str, tuple[str, str]],
    *,
    section: str = "entries",
    counted: str = "entry_count",
) -> list[str]:
    problems = []
    raw = body.get(section) or []
    if section == REVIEW_SECTION and counted not in body and not raw:
        return problems  # a digest without human-review documents has no such section
    if body.get(counted) != len(raw):
        problems.append(f"break: {stored.key} says {body.get(counted)} {section} and lists {len(raw)}")
    order = [(str(e.get("decided_at")), str(e.get("key"))) for e in raw]
    if order != sorted(order) or len(set(order)) != len(order):
        problems.append(f"reordered: {stored.key} does not list its entries in (decided_at, key) order")
    period = body.get("period") or {}
    bounds = DigestPeriod(start=period.get("start"), end=str(period.get("end", "")))
    for entry in raw:
        key = str(entry.get("key"))
        if not entry.get("late") and not bounds.contains(str(entry.get("decided_at"))):
            problems.append(
                f"break: {stored.key} lists {key} decided at {entry.get('decided_at')}, outside its period"
            )
        if key in listed:
            problems.append(f"duplicate: {key} is listed by {listed[key][1]} and {stored.key}")
            continue
        listed[key] = (str(entry.get("sha256")), stored.key)
    return problems


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
