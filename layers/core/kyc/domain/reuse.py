"""Reuse detection: has this clip, or a near-duplicate of it, been screened under another submission?

Fraud rings reuse a fake: the same file, or a re-encoded, rescaled or trimmed copy, comes back
under other identities. Two signals, neither needing a model:

- the same bytes: the upload's SHA-256 (validation already computes it);
- a near-duplicate: the 64-bit perceptual hashes of the sampled frames (``kyc.media.phash``).

The index (``kyc.aws.dynamodb_reuse_index``) splits every frame hash into ``BANDS`` bands of
``BAND_BITS`` bits and files the frame under each band's value. By pigeonhole, two hashes within
Hamming distance ``BANDS - 1`` agree exactly on at least one band, so a lookup is one Query per
distinct band value of the clip's own frames, never a Scan; hashes further apart are still found
whenever one band agrees, and every candidate is then compared on all 64 bits.

A clip matches an earlier submission only when enough of its frames (``min_matching_frames``,
at most the clip's own count) each lie within ``max_distance`` of some frame of that same
submission, so one coincidental frame never flags. The defaults are measured on the corpus in
``benchmarks/reuse.py`` (docs/provenance.md). Pure Python: no AWS, no numpy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from kyc.domain.policy import Effect, Finding
from kyc.domain.reasons import ReasonCode
from kyc.domain.timestamps import parse_utc

HASH_BITS = 64
BANDS = 4
BAND_BITS = HASH_BITS // BANDS
_BAND_MASK = (1 << BAND_BITS) - 1
MAX_REPORTED_MATCHES = 5  # the state and the lineage stay small; the strongest come first


class ReuseParamsError(ValueError):
    """Reuse parameters out of range (a configuration error)."""


@dataclass(frozen=True)
class ReuseParams:
    """How far back to look, and how close a clip must be to count as the same one.

    ``window_days`` is capped by the index retention (entries older than it are gone anyway).
    ``max_distance`` (bits of 64) and ``min_matching_frames`` were chosen on the corpus: copies
    re-encoded, rescaled or trimmed stay far below the distance, unrelated frames far above it.
    """

    window_days: int = 7
    retention_days: int = 7
    max_distance: int = 8
    min_matching_frames: int = 4

    def __post_init__(self) -> None:
        for name, value, lo, hi in (
            ("window_days", self.window_days, 1, 3653),
            ("retention_days", self.retention_days, 1, 3653),
            ("max_distance", self.max_distance, 0, 16),
            ("min_matching_frames", self.min_matching_frames, 2, 1000),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ReuseParamsError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")

    @property
    def effective_window_days(self) -> int:
        return min(self.window_days, self.retention_days)

    def to_dict(self) -> dict[str, int]:
        return {
            "window_days": self.effective_window_days,
            "retention_days": self.retention_days,
            "max_distance": self.max_distance,
            "min_matching_frames": self.min_matching_frames,
        }


def parse_phash(value: str) -> int:
    """A manifest's 16-hex-digit hash as an integer; anything else is a pipeline bug."""
    if not isinstance(value, str) or len(value) != HASH_BITS // 4:
        raise ValueError(f"a perceptual hash is {HASH_BITS // 4} hex digits, got {value!r}")
    return int(value, 16)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def bands(phash: int) -> tuple[str, ...]:
    """The index keys of one frame hash: ``b<band>#<hex of its 16 bits>``, most significant first."""
    return tuple(
        f"b{i}#{(phash >> (HASH_BITS - BAND_BITS * (i + 1))) & _BAND_MASK:04x}" for i in range(BANDS)
    )


def index_time(received_at: str) -> str:
    """``received_at`` as a fixed-width UTC string, so the index's sort keys order by time."""
    return parse_utc(received_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def window_start(received_at: str, params: ReuseParams) -> str:
    """The oldest index time a lookup for a clip received at ``received_at`` reads."""
    start = parse_utc(received_at) - timedelta(days=params.effective_window_days)
    return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expires_at(received_at: str, params: ReuseParams) -> int:
    """Epoch seconds of the entries' TTL: the index keeps nothing longer than the raw video."""
    return int((parse_utc(received_at) + timedelta(days=params.retention_days)).timestamp())


@dataclass(frozen=True)
class IndexedFrame:
    """One frame of another submission, as a band lookup returned it."""

    submission_id: str
    frame_index: int
    phash: int
    indexed_at: str


@dataclass(frozen=True)
class ReuseMatch:
    """One earlier submission this clip matches, and how strongly."""

    submission_id: str
    kind: str  # "exact" (same SHA-256) | "perceptual"
    indexed_at: str
    frames_matched: int
    frames_compared: int
    distances: tuple[int, ...] = field(default=())  # per matched own frame, the nearest distance

    @property
    def strength(self) -> float:
        """Share of the clip's frames matched (1.0 for the same bytes)."""
        if self.kind == "exact":
            return 1.0
        return round(self.frames_matched / self.frames_compared, 4) if self.frames_compared else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "kind": self.kind,
            "indexed_at": self.indexed_at,
            "strength": self.strength,
            "frames_matched": self.frames_matched,
            "frames_compared": self.frames_compared,
            "max_distance": max(self.distances) if self.distances else None,
            "mean_distance": round(sum(self.distances) / len(self.distances), 3) if self.distances else None,
        }


def required_frames(own_frames: int, params: ReuseParams) -> int | None:
    """Frames that must match for a perceptual match; None when the clip has too few to say."""
    if own_frames < 2:  # a single frame could match by coincidence: never flag on one
        return None
    return min(params.min_matching_frames, own_frames)


def perceptual_matches(
    own: Sequence[int],
    candidates: Iterable[IndexedFrame],
    *,
    own_submission_id: str,
    params: ReuseParams,
) -> list[ReuseMatch]:
    """Earlier submissions with at least ``required_frames`` of ``own`` within ``max_distance``.

    Each own frame counts once per submission (its nearest frame there), so a clip whose frames
    all resemble one frame of another clip still needs several of its own frames to match.
    The clip's own submission never matches itself (a re-screening finds its own entries).
    """
    need = required_frames(len(own), params)
    if need is None:
        return []
    by_submission: dict[str, list[IndexedFrame]] = defaultdict(list)
    for frame in candidates:
        if frame.submission_id != own_submission_id:
            by_submission[frame.submission_id].append(frame)
    matches: list[ReuseMatch] = []
    for sid, frames in by_submission.items():
        unique = {f.frame_index: f for f in frames}.values()
        nearest = [min(hamming(h, f.phash) for f in unique) for h in own]
        close = [d for d in nearest if d <= params.max_distance]
        if len(close) >= need:
            matches.append(
                ReuseMatch(
                    submission_id=sid,
                    kind="perceptual",
                    indexed_at=min(f.indexed_at for f in frames),
                    frames_matched=len(close),
                    frames_compared=len(own),
                    distances=tuple(close),
                )
            )
    return matches


def exact_matches(entries: Iterable[Mapping[str, str]], *, own_submission_id: str) -> list[ReuseMatch]:
    """Other submissions indexed under the same SHA-256 (``{"submission_id", "indexed_at"}``)."""
    seen: dict[str, str] = {}
    for entry in entries:
        sid = entry["submission_id"]
        if sid != own_submission_id:
            seen[sid] = min(seen.get(sid, entry["indexed_at"]), entry["indexed_at"])
    return [ReuseMatch(sid, "exact", at, 0, 0) for sid, at in seen.items()]


def combine(exact: Sequence[ReuseMatch], perceptual: Sequence[ReuseMatch]) -> list[ReuseMatch]:
    """One match per earlier submission, the same bytes before a near-duplicate, strongest first,
    then the earliest (the submission the fake was first seen under)."""
    best: dict[str, ReuseMatch] = {}
    for match in [*exact, *perceptual]:
        current = best.get(match.submission_id)
        if current is None or (current.kind != "exact" and match.strength > current.strength):
            best[match.submission_id] = match
    return sorted(
        best.values(), key=lambda m: (m.kind != "exact", -m.strength, m.indexed_at, m.submission_id)
    )


def reuse_result(
    matches: Sequence[ReuseMatch],
    *,
    params: ReuseParams,
    frames_indexed: int,
    lookups: int,
    truncated: bool = False,
) -> dict[str, Any]:
    """The small result the state machine carries to the decision (and the lineage keeps).

    ``truncated``: a band bucket held more entries than a lookup reads, so a match may be missed.
    """
    return {
        "checked": True,
        "matched": bool(matches),
        "matches": [m.to_dict() for m in matches[:MAX_REPORTED_MATCHES]],
        "match_count": len(matches),
        "frames_indexed": frames_indexed,
        "lookups": lookups,
        "truncated": truncated,
        "params": params.to_dict(),
        "note": None,
    }


def not_checked(reason: str, params: ReuseParams) -> dict[str, Any]:
    """Nothing to compare (e.g. the extract stage refused the media): no finding either way."""
    return {
        "checked": False,
        "matched": False,
        "matches": [],
        "match_count": 0,
        "frames_indexed": 0,
        "lookups": 0,
        "truncated": False,
        "params": params.to_dict(),
        "note": reason,
    }


def reuse_findings(result: Mapping[str, Any] | None) -> list[Finding]:
    """A match bounds the decision at REVIEW (never PASS); a REJECT from the model stands."""
    if result and result.get("matched"):
        return [Finding(ReasonCode.MEDIA_REUSED, Effect.NO_PASS)]
    return []


def sheet_lines(result: Mapping[str, Any] | None) -> list[str]:
    """What a reviewer's contact sheet says about re-submitted media: the strongest earlier
    submission (its id's first 16 characters, exact or perceptual, the share of frames matched) and
    how many more there are; nothing when there was no match."""
    if not result or not result.get("matched"):
        return []
    matches = [m for m in result.get("matches") or [] if isinstance(m, Mapping)]
    if not matches:
        return ["reused: match details missing"]
    best = matches[0]
    line = (
        f"reused: {best.get('kind') or '?'} match of {str(best.get('submission_id') or '?')[:16]},"
        f" strength {best.get('strength')}"
    )
    more = int(result.get("match_count") or len(matches)) - 1
    return [line + (f", {more} more" if more > 0 else "")]


# --- the index's items (written and read by kyc.aws.dynamodb_reuse_index) -------------------------


def submission_key(sid: str) -> dict[str, str]:
    """The item that lists every index entry a submission wrote, so erasure can find them all."""
    return {"pk": f"sub#{sid}", "sk": "sub"}


def exact_key(sha256: str) -> str:
    return f"sha#{sha256}"


def index_entries(
    *,
    submission_id: str,
    received_at: str,
    sha256: str,
    frames: Sequence[tuple[int, int]],
    params: ReuseParams,
) -> list[dict[str, Any]]:
    """The items a submission adds to the index: one for its bytes, one per frame and band.

    Keys depend only on the submission (id, receipt time, content), so a retried or replayed
    stage writes the same items again and never a second set. Sort keys start with the receipt
    time, so a lookup reads only the window it needs.
    """
    at = index_time(received_at)
    ttl = expires_at(received_at, params)
    items: list[dict[str, Any]] = [
        {
            "pk": exact_key(sha256),
            "sk": f"{at}#{submission_id}",
            "submission_id": submission_id,
            "at": at,
            "expires_at": ttl,
        }
    ]
    for frame_index, phash in frames:
        for key in bands(phash):
            items.append(
                {
                    "pk": key,
                    "sk": f"{at}#{submission_id}#{frame_index:04d}",
                    "submission_id": submission_id,
                    "frame": frame_index,
                    "phash": f"{phash:016x}",
                    "at": at,
                    "expires_at": ttl,
                }
            )
    return items


def manifest_frames(manifest: Mapping[str, Any]) -> list[tuple[int, int]]:
    """``(frame index, hash)`` of every hashed frame in an extract manifest (flat frames have none)."""
    return [(int(f["index"]), parse_phash(f["phash"])) for f in manifest.get("frames", []) if f.get("phash")]
