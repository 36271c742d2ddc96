"""Erasure of one submission (GDPR Art. 17) that keeps the AML and AI Act record (Art. 17(3)(b)).

The raw video, the frames, the batch scores and the contact sheet are deleted. The decision
record stays, pseudonymised: the outcome, its reasons, the policy and model that produced it and
the SHA-256 of the screened bytes (the audit anchor: it proves which bytes were screened without
being them). The raw object key and the client reference go, because either one names the
applicant. Fields are kept by an explicit list, so a field added to the record later is dropped
until someone decides it may stay (docs/erasure.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kyc.domain.identity import MacFunction, pseudonymise_key, submission_id
from kyc.domain.record import contact_sheet_key

ERASURE_VERSION = "1"
DEFAULT_REASON = "GDPR_ART17_REQUEST"

# Top-level attributes of the decision record that survive an erasure, and why (docs/erasure.md).
KEPT_FIELDS: frozenset[str] = frozenset(
    {
        "submission_id",  # the key of the record and of every audit object; a hash, not the key
        "record_version",
        "decision",
        "reasons",
        "score",
        "policy",
        "model",
        "frames_sampled",
        "frames_scored",
        "frames_with_face",
        "source",  # rebuilt: key pseudonymised, sha256 kept as the audit anchor
        "media",  # rebuilt from MEDIA_FIELDS: technical properties only
        "execution_arn",  # named by the submission id, never by the key
        "received_at",
        "decided_at",
        "expires_at",  # the AML retention clock keeps running
        "artefacts",
        "code_version",
        "recorded_by",
        "event_published",  # written by releases before the decision outbox; readable on old items
    }
)
# Attributes that name the applicant; dropped (client_reference also leaves ClientReferenceIndex).
PERSONAL_FIELDS: frozenset[str] = frozenset({"client_reference"})
# What S3 knows of the source: the key is replaced by its pseudonym, the rest is not personal.
SOURCE_FIELDS: tuple[str, ...] = ("bucket", "version_id", "etag", "size", "sha256")
# Technical properties of the video: no tags, no device or location metadata.
MEDIA_FIELDS: frozenset[str] = frozenset(
    {
        "container",
        "codec",
        "profile",
        "pix_fmt",
        "bit_depth",
        "width",
        "height",
        "display_width",
        "display_height",
        "rotation",
        "mirrored",  # the display matrix mirrors (issue 22)
        "sample_aspect_ratio",
        "fps",
        "duration_s",
        "frame_count",
        "color_range",
        "color_space",
        "has_audio",
    }
)
# The contact sheet (faces) lives in the review bucket and is deleted; see contact_sheet_key. The
# audit bucket is write-once (Object Lock) and holds nothing erasure must delete. Audit objects
# kept: per-frame scores with face boxes (coordinates, no pixels) and the lineage (hashes and the
# pseudonymised key). Both are pseudonymous and explain the decision.
KEPT_AUDIT_FILES: tuple[str, ...] = ("scores.json", "lineage.json")


# Review records (ReviewsTable, issue 20) survive an erasure pseudonymised, like the decision record:
# the human verdict is part of what was decided. The reason and note are free text a person typed and
# may name the applicant, so they go; reviewer ids are keyed pseudonyms and stay (four-eyes is
# evidence). The write-once documents of the audit bucket (decisions/<sid>/reviews/) stay as written.
REVIEW_KEPT_FIELDS: frozenset[str] = frozenset(
    {
        "review_id",
        "record",
        "record_kind",  # RecordTimeIndex: the digest still lists the record's evidence document
        "recorded_at",
        "verdict_id",
        "verdict",
        "attack_type",
        "reviewer_id",
        "approver_id",
        "approved_at",
        "supersedes",
        "requires_approval",
        "evidence_key",
        "evidence_sha256",
        "ttl",  # the review retention clock keeps running
    }
)
REVIEW_FREE_TEXT_FIELDS: frozenset[str] = frozenset({"reason", "note"})
LEASE_RECORD = "lease"
SCREENING_ID_CHARS = frozenset("0123456789abcdef")


class ErasureError(Exception):
    """Base class of erasure failures."""


class PersonalDataLeftError(ErasureError):
    """The pseudonymised record still holds a personal value: never write it."""


class ErasureRequestError(ErasureError):
    """The event names neither one submission nor one client reference."""


class ErasureOutcome(StrEnum):
    ERASED = "ERASED"
    ALREADY_ERASED = "ALREADY_ERASED"
    PENDING = "PENDING"  # no decision yet: the screening is in flight (or the id is unknown)
    REFUSED = "REFUSED"  # another version of the same key is still being screened; see ``force``
    DECLARATION_ERASED = "DECLARATION_ERASED"  # declared through the API, never uploaded (issue 20)


@dataclass(frozen=True)
class ErasureTargets:
    """Where a submission's derived data lives; every version under these is deleted."""

    submission_id: str
    work_prefixes: tuple[str, ...]
    review_keys: tuple[str, ...]  # in the review bucket; nothing in the audit bucket is deleted
    evidence_key: str


@dataclass(frozen=True)
class ErasureRequest:
    submission_id: str | None
    client_reference: str | None
    force: bool = False
    reason: str = DEFAULT_REASON
    request_reference: str | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> ErasureRequest:
        sid, ref = event.get("submission_id"), event.get("client_reference")
        if bool(sid) == bool(ref) or not isinstance(sid or ref, str):
            raise ErasureRequestError("give exactly one of submission_id or client_reference, as a string")
        return cls(
            submission_id=sid,
            client_reference=ref,
            force=bool(event.get("force", False)),
            reason=str(event.get("reason") or DEFAULT_REASON),
            request_reference=event.get("request_reference"),
        )

    def evidence(self) -> dict[str, Any]:
        """The request as the evidence records it: how it named the subject, never the reference."""
        return {
            "by": "submission_id" if self.submission_id else "client_reference",
            "request_reference": self.request_reference,
            "force": self.force,
        }


def evidence_staging_prefix(execution_arn: str | None) -> str:
    """Where decide stages an execution's evidence bytes in the work bucket before its decision is
    written (``functions/decide``: ``_staging_key``): one prefix per execution ARN."""
    return f"evidence/{hashlib.sha256(str(execution_arn).encode('utf-8')).hexdigest()[:32]}/"


def erasure_targets(sid: str, execution_arn: str | None = None) -> ErasureTargets:
    """``execution_arn``: the decision's execution, whose staging copies of the audit documents
    (issue 23) are erased with the frames; they also expire with the work bucket's lifecycle."""
    staging = (f"{evidence_staging_prefix(execution_arn)}decisions/{sid}/",) if execution_arn else ()
    return ErasureTargets(
        submission_id=sid,
        work_prefixes=(f"frames/{sid}/", f"scores/{sid}/", *staging),
        review_keys=(contact_sheet_key(sid),),
        evidence_key=f"decisions/{sid}/erasure.json",
    )


@dataclass(frozen=True)
class DeletedVersions:
    """What one S3 sweep removed: object versions and delete markers, per key (counts, no content)."""

    bucket: str
    versions: Mapping[str, int] = field(default_factory=dict)
    delete_markers: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.versions.values()) + sum(self.delete_markers.values())

    def to_dict(self, *, pseudonymise_with: MacFunction | None = None) -> dict[str, Any]:
        """``pseudonymise_with`` names keys by their keyed pseudonym (intake keys can carry identifiers)."""

        def name(key: str) -> str:
            return pseudonymise_key(key, pseudonymise_with) if pseudonymise_with else key

        keys = sorted(set(self.versions) | set(self.delete_markers))
        return {
            "bucket": self.bucket,
            "objects": [
                {
                    "key": name(k),
                    "versions": self.versions.get(k, 0),
                    "delete_markers": self.delete_markers.get(k, 0),
                }
                for k in keys
            ],
            "total": self.total,
        }


def is_erased(item: Mapping[str, Any]) -> bool:
    return bool(item.get("erased_at"))


def sibling_submissions(
    bucket: str, key: str, version_ids: Iterable[str], *, exclude: str, mac: MacFunction
) -> list[str]:
    """Submissions of the other versions of a key: deleting every version erases their video too."""
    sids = {submission_id(bucket, key, v, mac=mac) for v in version_ids if v and v != "null"}
    return sorted(sids - {exclude})


def pseudonymise_record(
    item: Mapping[str, Any],
    *,
    erased_at: datetime,
    reason: str,
    evidence: Mapping[str, str],
    mac: MacFunction,
) -> dict[str, Any]:
    """The record kept after erasure: the decision and its provenance, nothing that names a person."""
    out: dict[str, Any] = {k: v for k, v in item.items() if k in KEPT_FIELDS and v is not None}
    source = dict(item.get("source") or {})
    out["source"] = {k: source.get(k) for k in SOURCE_FIELDS if source.get(k) is not None}
    if source.get("key"):
        out["source"]["key"] = pseudonymise_key(str(source["key"]), mac)
    if item.get("media"):
        out["media"] = {k: v for k, v in dict(item["media"]).items() if k in MEDIA_FIELDS}
    if item.get("client_reference"):
        # Not in ClientReferenceIndex (a different attribute). Keyed: only a caller the pseudonym key's
        # policy allows (kms:GenerateMac, or kms:VerifyMac for an auditor) can confirm a reference, so
        # nobody can test candidate references offline. Pseudonymous, not anonymous, all the same.
        out["client_reference_pseudonym"] = pseudonymise_key(str(item["client_reference"]), mac)
    out |= {
        "erased_at": erased_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "erasure_reason": reason,
        "erasure": dict(evidence),
    }
    leftovers = personal_values_left(out, personal_values(item))
    if leftovers:
        raise PersonalDataLeftError(f"pseudonymised record still holds personal data at {leftovers}")
    return out


def personal_values(item: Mapping[str, Any]) -> list[str]:
    """The values of a record that name the applicant: the raw key and the client reference."""
    source = item.get("source") or {}
    return [str(v) for v in (source.get("key"), item.get("client_reference")) if v]


def personal_values_left(document: Any, values: Iterable[str], path: str = "$") -> list[str]:
    """Paths in ``document`` whose strings equal or contain any of ``values`` (empty when clean)."""
    needles = [v for v in values if v]
    found: list[str] = []
    if isinstance(document, Mapping):
        for key, value in document.items():
            if any(_matches(str(key), n) for n in needles):
                found.append(f"{path}.<key>")
            found.extend(personal_values_left(value, needles, f"{path}.{key}"))
    elif isinstance(document, list | tuple):
        for index, value in enumerate(document):
            found.extend(personal_values_left(value, needles, f"{path}[{index}]"))
    elif isinstance(document, str) and any(_matches(document, n) for n in needles):
        found.append(path)
    return found


def _matches(text: str, needle: str) -> bool:
    # Short values (a 2-character reference) would match by accident inside hashes; compare whole.
    return text == needle or (len(needle) >= 8 and needle in text)


def build_erasure_evidence(
    *,
    item: Mapping[str, Any],
    erased_at: datetime,
    reason: str,
    request: Mapping[str, Any],
    deleted: Iterable[DeletedVersions],
    intake_bucket: str | None,
    siblings: Iterable[str],
    code_version: Mapping[str, str],
    mac: MacFunction,
) -> dict[str, Any]:
    """decisions/<sid>/erasure.json: what was deleted (keys and version counts) and what was kept."""
    sid = item["submission_id"]
    return {
        "erasure_version": ERASURE_VERSION,
        "submission_id": sid,
        "erased_at": erased_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "erasure_reason": reason,
        "request": dict(request),
        "deleted": [d.to_dict(pseudonymise_with=mac if d.bucket == intake_bucket else None) for d in deleted],
        "kept": {
            "record_fields": sorted(k for k in item if k in KEPT_FIELDS),
            "audit_objects": [f"decisions/{sid}/{name}" for name in KEPT_AUDIT_FILES],
            "source_sha256": (item.get("source") or {}).get("sha256"),
        },
        "dropped_fields": sorted(k for k in item if k not in KEPT_FIELDS),
        "sibling_submissions": sorted(siblings),
        "code_version": dict(code_version),
    }


def merge_deleted(earlier: Iterable[Mapping[str, Any]], now: Iterable[Mapping[str, Any]]) -> list[dict]:
    """A retried erasure adds its counts to the evidence of the attempt that failed half-way."""
    merged: dict[str, dict[str, dict[str, Any]]] = {}
    for sweep in [*earlier, *now]:
        objects = merged.setdefault(sweep["bucket"], {})  # a sweep that found nothing is evidence too
        for obj in sweep.get("objects", []):
            slot = objects.setdefault(obj["key"], {"key": obj["key"], "versions": 0, "delete_markers": 0})
            slot["versions"] += obj.get("versions", 0)
            slot["delete_markers"] += obj.get("delete_markers", 0)
    out = []
    for bucket, objects in merged.items():
        items = [objects[k] for k in sorted(objects)]
        total = sum(o["versions"] + o["delete_markers"] for o in items)
        out.append({"bucket": bucket, "objects": items, "total": total})
    return out


def pseudonymise_review_item(item: Mapping[str, Any], *, erased_at: datetime) -> dict[str, Any]:
    """A verdict or approval record as it stays after erasure: kept fields only, free text gone."""
    kept = {k: v for k, v in item.items() if k in REVIEW_KEPT_FIELDS}
    if "erased_at" in item:
        kept["erased_at"] = item["erased_at"]  # a retry keeps the first erasure's time
    else:
        kept["erased_at"] = erased_at.astimezone(UTC).isoformat(timespec="milliseconds")
    return kept


def screening_id_of(source_key: str | None) -> str | None:
    """The API screening (ScreeningsTable) a decided upload came from: the stem of a key the API
    generated (``<prefix><folder>/<32 hex>.<ext>``); None for keys it did not generate."""
    if not source_key:
        return None
    stem = source_key.rsplit("/", 1)[-1].split(".", 1)[0]
    return stem if len(stem) == 32 and set(stem) <= SCREENING_ID_CHARS else None
