"""Reuse detection: has this *recording* been screened under another submission?

Fraud rings reuse a fake: the same file, or a copy re-encoded, rescaled, trimmed, sped up, mirrored,
cropped, letterboxed, rotated or recoloured, comes back under other identities; or a genuine
recording is stolen and another face is swapped into it. Honest applicants, meanwhile, are filmed
in shared fixed scenes (a branch kiosk) that look alike from one applicant to the next. Signals:

- the same bytes: the upload's SHA-256 (validation already computes it);
- per sampled frame (``kyc.media.recording_hash``): mirror-invariant hashes of the *scene* around
  the face (face masked, window anchored to the face, so crops, resizes and letterboxes keep its
  content), of the *face* alone and of the *body* around it (hair, shoulders, clothes), and where
  the face is (centre and size, shares of the frame).

The index (``kyc.aws.dynamodb_reuse_index``) files every frame under the bands of its scene hash:
multi-index hashing with ``max_distance + 1`` bands, so by pigeonhole any frame within
``max_distance`` bits agrees exactly with the query on at least one band: the documented radius is
guaranteed, not hoped for. A clip meets an earlier submission when enough of its frames
(``min_matching_frames``; with face evidence also half of them, ``MIN_MATCH_SHARE``) lie within the
radius of that submission's scene hashes, compared order-free: since issue 22 each upload samples
its own secret moments, so frame i of a copy is never frame i of the original. ``classify`` then
says what the meeting means:

- a face clearly another on most frames (``CLEAR_SHARE``): a face swap over a reused recording
  (``REUSED_RECORDING_FACE_SWAPPED``) when the meeting frames are **in step** with the earlier clip
  (``frames_in_step``: one time alignment lines their moments up, as a stolen recording keeps the
  original's timeline); otherwise another person filmed in the same place who met by chance
  (``shared_scene``, no finding);
- otherwise, the body around the face (hair, shoulders, clothes) clearly another on most frames:
  **the same place, another recording**: no finding, ``shared_scene``; else **the same recording**:
  ``MEDIA_REUSED``;
- no face evidence on either side (the ``model`` face source, a faceless clip): the scene decides,
  as the whole-frame hash always did (``MEDIA_REUSED``).

Only an **earlier** submission (by receipt time, then id) counts: of two copies screened at the same
moment the first is never marked. So that the later one always is, whatever the timing, a check
that finds no earlier match waits until every earlier upload still unsettled (its admission record,
``admission_item``: received, queued or screening, not yet indexed or ended) has settled
(``unsettled_earlier``), then reads again. Pure Python: no AWS, no numpy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from kyc.domain.policy import Effect, Finding
from kyc.domain.reasons import ReasonCode
from kyc.domain.timestamps import parse_utc

HASH_BITS = 64
HASH_VERSION = "r2"  # kyc.media.recording_hash.HASH_VERSION: keys of unlike hashes never meet
MAX_REPORTED_MATCHES = 5  # the state and the lineage stay small; the strongest come first
# Time alignments tried between two clips' face paths: speed-ups and slow-downs a re-encoder offers.
SPEEDS = (0.5, 2 / 3, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0)
OFFSET_STEP_S = 0.1
SCALES = (0.6, 1.7)  # how much a crop, resize or letterbox may scale the face path between copies
STILL = 0.1  # a face path spreading less than this (face sizes) is "still": the path cannot tell
MIN_PATH_OVERLAP = 0.6  # share of the clip's positioned frames an alignment must cover
MIN_FACE_CONFIDENCE = 50.0  # a face stage's box below this (0..100) is not used to anchor or mask
MAX_ROLL = 90.0  # degrees: a recorded roll beyond this is not believed (the windows stay unturned)
BODY_RADIUS = 8  # bits: a body hash this close is the same body (benchmarks/reuse.py, docs/provenance.md)
# bits: a face hash this close is the same face. Hash r2 (faces turned upright by the clip's roll)
# brings a swapped face closer than r1 did: at 6 a swap read as MEDIA_REUSED on 29 of 30 32-frame
# draws; at 4 the seed sweep labels it again and still finds every transformed copy (docs/provenance.md)
FACE_RADIUS = 4
CLEAR_SHARE = 2 / 3  # of the compared frames: "another body" / "another face" must be this clear
# Clearly another face: "the same recording" then rests on time. A stolen recording keeps the
# original's moments in order (head path, body, light, camera shake), so the frames whose scene meets
# the earlier clip meet it at moments that line up under one time alignment (speed and offset), each
# within ``LOCKSTEP_TOLERANCE`` of the clip's own sampling interval; two strangers at one kiosk share
# only the static room and meet at scattered moments. More than ``LOCKSTEP_SHARE`` of the clip's
# frames in step is one recording. Measured on 9,000 kiosk draws at 8 frames and 1,200 at 32 (6
# people, every ordered pair): never more than half in step; face swaps more than half on 85 % of
# 8-frame draws and all 32-frame draws (benchmarks/reuse.py, docs/provenance.md).
LOCKSTEP_SHARE = 0.5
SWAP_BODY_SHARE = 0.5  # or more than this share of the body hashes within BODY_RADIUS: the same person
LOCKSTEP_TOLERANCE = 0.5
LOCKSTEP_SLACK = 2  # bits: the other clip's frames this close to a frame's nearest are "nearest" too
# With face evidence on both sides, at least this share of a clip's frames must meet an earlier
# submission's scenes (and at least ``min_matching_frames``): with a fixed 4, kiosk strangers met on
# 30 of 360 draws at 32 frames (benchmarks/reuse.py --frames 32, docs/provenance.md).
MIN_MATCH_SHARE = 0.5
FINDING_KINDS = ("exact", "perceptual", "face_swap")


class EarlierSubmissionsInFlightError(RuntimeError):
    """Earlier submissions were still being screened, unindexed, when the wait ran out: this check
    cannot say the clip is unique, so it does not answer (the state machine retries it, then
    records ERROR: never a PASS on a check that could not finish)."""


class ReuseParamsError(ValueError):
    """Reuse parameters out of range (a configuration error)."""


@dataclass(frozen=True)
class ReuseParams:
    """How far back to look, and how close a clip must be to count as the same one.

    ``window_days`` is capped by the index retention (entries older than it are gone anyway).
    ``max_distance`` (bits of 64) is the radius the index guarantees (``max_distance + 1`` bands);
    it and ``min_matching_frames`` were measured in benchmarks/reuse.py (docs/provenance.md).
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


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def band_layout(max_distance: int) -> tuple[tuple[int, int], ...]:
    """``(shift, width)`` of each of the ``max_distance + 1`` bands, most significant first.

    Multi-index hashing: split 64 bits into r + 1 contiguous bands; two hashes within r bits differ
    in at most r bands, so at least one band is equal (pigeonhole). Widths differ by at most one bit.
    """
    count = max_distance + 1
    widths = [HASH_BITS // count + (1 if i < HASH_BITS % count else 0) for i in range(count)]
    layout, shift = [], HASH_BITS
    for width in widths:
        shift -= width
        layout.append((shift, width))
    return tuple(layout)


def bands(scene: int, max_distance: int, version: str = HASH_VERSION) -> tuple[str, ...]:
    """The index keys of one frame's scene hash: ``<version>m<bands>b<band>#<hex value>``.

    The key names the hash version and the layout, so a change of either never compares unlike
    entries (old entries age out with their TTL; until then a lookup reads them with hashes of
    their own version, ``version``: functions/reuse/app.py).
    """
    layout = band_layout(max_distance)
    prefix = f"{version}m{len(layout)}"
    return tuple(
        f"{prefix}b{i}#{(scene >> shift) & ((1 << width) - 1):x}" for i, (shift, width) in enumerate(layout)
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
class FrameSignature:
    """What the index keeps of one sampled frame (``kyc.media.recording_hash``, plus where the face is).

    ``position``: the face box's centre x, centre y and size (the larger side), as shares of the
    frame; None without a face box.
    """

    index: int
    pts_s: float
    scene: int | None
    face: int | None = None
    position: tuple[float, float, float] | None = None
    body: int | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"frame": self.index, "pts": f"{self.pts_s:.6f}"}
        if self.scene is not None:
            item["scene"] = f"{self.scene:016x}"
        if self.face is not None:
            item["face"] = f"{self.face:016x}"
        if self.body is not None:
            item["body"] = f"{self.body:016x}"
        if self.position is not None:
            item["pos"] = ",".join(f"{v:.5f}" for v in self.position)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> FrameSignature:
        pos = item.get("pos")
        return cls(
            index=int(item["frame"]),
            pts_s=float(item["pts"]),
            scene=int(item["scene"], 16) if item.get("scene") else None,
            face=int(item["face"], 16) if item.get("face") else None,
            body=int(item["body"], 16) if item.get("body") else None,
            position=tuple(float(v) for v in pos.split(",")) if pos else None,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class IndexedFrame:
    """One frame of another submission, as a band lookup returned it."""

    submission_id: str
    indexed_at: str
    signature: FrameSignature


@dataclass(frozen=True)
class ReuseMatch:
    """One earlier submission this clip matches, how strongly, and what the match means.

    ``kind``: ``exact`` (same SHA-256), ``perceptual`` (the same recording, same face),
    ``face_swap`` (the same recording, another face) or ``shared_scene`` (the same place, another
    recording: recorded for reviewers and audits, never a finding).
    """

    submission_id: str
    kind: str
    indexed_at: str
    frames_matched: int
    frames_compared: int
    distances: tuple[int, ...] = field(default=())  # per matched own frame, the nearest scene distance
    path_correlation: float | None = None
    face_frames_same: int | None = None
    face_frames_compared: int | None = None
    body_frames_same: int | None = None
    body_frames_compared: int | None = None
    frames_in_step: int | None = None
    face_frames_same_in_step: int | None = None
    face_frames_in_step: int | None = None

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
            "path_correlation": self.path_correlation,
            "face_frames_same": self.face_frames_same,
            "face_frames_compared": self.face_frames_compared,
            "body_frames_same": self.body_frames_same,
            "body_frames_compared": self.body_frames_compared,
            "frames_in_step": self.frames_in_step,
            "face_frames_same_in_step": self.face_frames_same_in_step,
            "face_frames_in_step": self.face_frames_in_step,
        }


def required_frames(own_frames: int, params: ReuseParams, *, with_faces: bool = False) -> int | None:
    """Frames that must match for a perceptual match; None when the clip has too few to say.

    With face evidence on both sides, also ``MIN_MATCH_SHARE`` of the clip's frames: sample points
    are secret and drawn per upload (issue 22), so every extra frame is another chance for a kiosk
    stranger's frame to land near one of ours; the bar grows with them. Without faces the scene alone
    decides, as the whole-frame hash always did: a faceless clip that changes fast (a film, a screen
    recording) is sparsely sampled and needs the fixed count.
    """
    if own_frames < 2:  # a single frame could match by coincidence: never flag on one
        return None
    share = math.ceil(MIN_MATCH_SHARE * own_frames) if with_faces else 0
    return min(max(params.min_matching_frames, share), own_frames)


def is_earlier(other_at: str, other_sid: str, own_at: str, own_sid: str) -> bool:
    """Receipt time first, then the id: of two uploads one is always the earlier, never both."""
    return (other_at, other_sid) < (own_at, own_sid)


@dataclass(frozen=True)
class InFlight:
    """An upload received and not yet settled (its admission record, ``admission_item``): its
    submission and receipt time."""

    submission_id: str
    received_at: str


def unsettled_earlier(
    in_flight: Iterable[InFlight], indexed: Iterable[str], *, own_submission_id: str, own_received_at: str
) -> list[str]:
    """Submissions received before this one whose screening runs and has not yet indexed: any of them
    may be a copy this check could not see yet (sorted, earliest first).

    Why a check waits for them: each check writes its entries, then reads, and counts only earlier
    submissions. Of two copies E (earlier) and L (later), L may read before E has written, and E
    ignores L. If L, finding nothing, waits until E has indexed (or E's screening ended, after
    which it never writes), L's next read follows E's write and sees E: whatever the interleaving,
    L is marked and E is not. The wait is acyclic: a check only waits for earlier submissions, and
    an entry counts as indexed once written, before its writer waits for anything.
    """
    own_at, done = index_time(own_received_at), set(indexed)
    pending = {
        f.submission_id
        for f in in_flight
        if f.submission_id != own_submission_id
        and f.submission_id not in done
        and is_earlier(index_time(f.received_at), f.submission_id, own_at, own_submission_id)
    }
    return sorted(pending)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _correlation(a: Sequence[float], b: Sequence[float]) -> float:
    ma, mb = _mean(a), _mean(b)
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    if va <= 0 or vb <= 0:
        return 0.0
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / (va * vb) ** 0.5


def _interpolate(track: Sequence[tuple[float, float, float]], t: float) -> tuple[float, float] | None:
    """``(x, y)`` of a time-sorted ``(t, x, y)`` track at ``t``; None outside it."""
    if not track or t < track[0][0] or t > track[-1][0]:
        return None
    lo, hi = 0, len(track) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if track[mid][0] <= t:
            lo = mid
        else:
            hi = mid
    (t0, x0, y0), (t1, x1, y1) = track[lo], track[hi]
    w = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
    return x0 + w * (x1 - x0), y0 + w * (y1 - y0)


def _track(frames: Iterable[FrameSignature]) -> tuple[list[tuple[float, float, float]], float]:
    """The face path ``(t, x, y)`` sorted by time, and its spread in face sizes (0 when too short)."""
    positioned = sorted((f.pts_s, f.position) for f in frames if f.position is not None)
    track = [(t, p[0], p[1]) for t, p in positioned]
    if len(track) < 3:
        return track, 0.0
    size = _mean([p[2] for _, p in positioned]) or 1.0
    spread = max(_stdev([x for _, x, _ in track]), _stdev([y for _, _, y in track])) / size
    return track, spread


def _stdev(values: Sequence[float]) -> float:
    m = _mean(values)
    return (sum((v - m) ** 2 for v in values) / len(values)) ** 0.5


def _slope(a: Sequence[float], b: Sequence[float]) -> float:
    """Least-squares slope of ``b`` on ``a``."""
    ma, mb = _mean(a), _mean(b)
    va = sum((x - ma) ** 2 for x in a)
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / va if va > 0 else 0.0


def path_correlation(
    own: Sequence[FrameSignature], other: Sequence[FrameSignature], need: int
) -> float | None:
    """How well the face moves along the same path in both clips, under the best time alignment.

    For each speed in ``SPEEDS`` and offset (``OFFSET_STEP_S`` apart) the other clip's path is read at
    ``speed * t + offset`` for every own frame time ``t`` inside it; with enough frames overlapping
    (``need`` and ``MIN_PATH_OVERLAP`` of the own path), each axis along which the own face moves
    (spread at least ``STILL`` face sizes) is compared: the correlation (x in absolute value: a mirror
    negates it), and the scale between the two (a crop, resize or letterbox changes it by ``SCALES``
    at most). The alignment's score is its weakest axis; the best score is returned. None when the
    face is still or the paths too short (the caller falls back to the scene and the face).
    """
    mine, my_spread = _track(own)
    theirs, their_spread = _track(other)
    if my_spread < STILL or their_spread < STILL or len(mine) < need or len(theirs) < need:
        return None
    size = _mean([f.position[2] for f in own if f.position is not None]) or 1.0
    axes = [axis for axis in (1, 2) if _stdev([p[axis] for p in mine]) / size >= STILL]
    if not axes:
        return None
    overlap = max(need, math.ceil(MIN_PATH_OVERLAP * len(mine)))
    t_lo, t_hi = mine[0][0], mine[-1][0]
    u_lo, u_hi = theirs[0][0], theirs[-1][0]
    best = -1.0
    for speed in SPEEDS:
        first = u_lo - speed * t_hi
        steps = int((u_hi - speed * t_lo - first) / OFFSET_STEP_S) + 1
        for step in range(max(1, steps)):
            offset = first + step * OFFSET_STEP_S
            pairs = []
            for t, x, y in mine:
                at = _interpolate(theirs, speed * t + offset)
                if at is not None:
                    pairs.append(((t, x, y), (0.0, at[0], at[1])))
            if len(pairs) < overlap:
                continue
            score = 1.0
            for axis in axes:
                a, b = [p[0][axis] for p in pairs], [p[1][axis] for p in pairs]
                corr = _correlation(a, b)
                scale = abs(_slope(a, b))
                if not SCALES[0] <= scale <= SCALES[1]:
                    corr = 0.0
                score = min(score, abs(corr) if axis == 1 else corr)
            best = max(best, score)
    return round(best, 4) if best > -1.0 else None


def frames_in_step(own: Sequence[FrameSignature], other: Sequence[FrameSignature], radius: int) -> int:
    """How many own frames meet the other clip (a scene within ``radius`` bits) at a moment that one
    time alignment ``u = speed * t + offset`` lines up with all of them: the clip and the earlier one
    are one recording played in step, not one place filmed twice.

    Every sampled frame carries its time. A stolen recording with a face swapped in keeps the
    original's timeline (head path, body, hands, light, camera shake), so the frame of the earlier
    clip that a frame's scene meets sits where the alignment puts it, give or take the two uploads'
    different secret sample points (``LOCKSTEP_TOLERANCE`` of the own sampling interval). Only the
    frames nearest in scene count (within ``LOCKSTEP_SLACK`` bits of the nearest): the frame a stolen
    recording's frame resembles most is the one filmed at the same moment. A scene that does not
    change at all (every frame within ``LOCKSTEP_SLACK`` bits of every other) fits any alignment: the
    face-anchored scene moves with the person, so that takes a plain, static picture around a still
    face (docs/provenance.md lists it among the limits). Two strangers at
    one kiosk share only the static room; their scenes meet when their heads happen to pass the same
    spot, at moments no single alignment lines up. Alignments tried: each speed in
    ``SPEEDS`` (a re-encoder's speed-ups), anchored at each own frame's nearest meeting frame; the
    best count is returned. Compares times only: no face identity is involved.
    """
    return len(_lockstep(own, other, radius))


def _lockstep(
    own: Sequence[FrameSignature], other: Sequence[FrameSignature], radius: int
) -> list[tuple[FrameSignature, list[FrameSignature]]]:
    """The own frames in step under the best alignment (``frames_in_step``), each with the other
    clip's nearest frames at the moment the alignment gives."""
    mine = sorted((f for f in own if f.scene is not None), key=lambda f: f.pts_s)
    theirs = [f for f in other if f.scene is not None]
    if len(mine) < 2 or not theirs:
        return []
    interval = (mine[-1].pts_s - mine[0].pts_s) / (len(mine) - 1)
    tolerance = LOCKSTEP_TOLERANCE * interval + 1e-6
    meets: list[tuple[FrameSignature, list[FrameSignature]]] = []  # own frame, its nearest meeting frames
    anchors: list[tuple[float, float]] = []  # own frame time, time of its nearest meeting frame
    for f in mine:
        near = sorted(((hamming(f.scene, g.scene), g.pts_s, g) for g in theirs), key=lambda n: n[:2])  # type: ignore[arg-type]
        if near[0][0] <= radius:
            limit = min(radius, near[0][0] + LOCKSTEP_SLACK)
            meets.append((f, [g for d, _, g in near if d <= limit]))
            anchors.append((f.pts_s, near[0][1]))
    best: list[tuple[FrameSignature, list[FrameSignature]]] = []
    for speed in SPEEDS:
        for t0, u0 in anchors:
            offset = u0 - speed * t0
            aligned = [
                (f, at)
                for f, gs in meets
                if (at := [g for g in gs if abs(g.pts_s - speed * f.pts_s - offset) <= tolerance])
            ]
            if len(aligned) > len(best):
                best = aligned
    return best


def _aligned_faces(in_step: Sequence[tuple[FrameSignature, list[FrameSignature]]]) -> tuple[int, int]:
    """In-step own frames with a face hash (and a face at the aligned moment), and how many of them
    lie within ``FACE_RADIUS`` of a face filmed at that moment."""
    pairs = [(f.face, [g.face for g in at if g.face is not None]) for f, at in in_step if f.face is not None]
    pairs = [(face, theirs) for face, theirs in pairs if theirs]
    return sum(1 for face, theirs in pairs if min(hamming(face, o) for o in theirs) <= FACE_RADIUS), len(
        pairs
    )


def _clearly_another(same: int, compared: int, need: int) -> bool:
    """Enough frames compared (``need``) and at least ``CLEAR_SHARE`` of them another."""
    return compared >= need and compared - same >= CLEAR_SHARE * compared


def _agreement(
    own: Sequence[FrameSignature], other: Sequence[FrameSignature], part: str, radius: int
) -> tuple[int, int]:
    """Own frames with a ``part`` hash (``face`` or ``body``), and how many lie within ``radius``
    of some frame of the other clip; (0, 0) when the other clip has none."""
    theirs = [getattr(f, part) for f in other if getattr(f, part) is not None]
    mine = [getattr(f, part) for f in own if getattr(f, part) is not None]
    if not theirs:
        return 0, 0
    return sum(1 for h in mine if min(hamming(h, o) for o in theirs) <= radius), len(mine)


def classify(
    own: Sequence[FrameSignature],
    other: Sequence[FrameSignature],
    *,
    submission_id: str,
    indexed_at: str,
    params: ReuseParams,
) -> ReuseMatch | None:
    """What an earlier submission's frames mean for this clip; None: unrelated.

    The scene around the face must match on ``required_frames`` frames (it is anchored to the face,
    so people standing in different places at one kiosk rarely get this far). Then, with face
    evidence on both sides: a face clearly another on most frames (``CLEAR_SHARE``) is ``face_swap``
    when more than ``LOCKSTEP_SHARE`` of the clip's frames meet in step (``frames_in_step``; or the
    same body with the required frames in step), else another person who met by chance in the same
    place (``shared_scene``); a clip in step whose face is clearly another only against the faces
    filmed at the aligned moments is ``face_swap`` too (never a reason for no finding); otherwise a
    body around the face clearly another on most frames is another recording in the same place
    (``shared_scene``), and anything else is ``perceptual`` (MEDIA_REUSED): in doubt, a fraud signal
    is kept. Without face evidence the scene decides (``perceptual``), as the whole-frame hash always
    did. ``path_correlation`` is recorded for reviewers, not decided on: two slow smooth paths
    correlate by chance under some alignment (the meeting times are what ``frames_in_step`` aligns).
    """
    with_faces = any(f.position for f in own) and any(f.position for f in other)
    need = required_frames(sum(1 for f in own if f.scene is not None), params, with_faces=with_faces)
    scenes = [f.scene for f in other if f.scene is not None]
    if need is None or not scenes:
        return None
    nearest = [min(hamming(f.scene, o) for o in scenes) for f in own if f.scene is not None]
    close = tuple(d for d in nearest if d <= params.max_distance)
    if len(close) < need:
        return None
    correlation = path_correlation(own, other, need)
    same_bodies, bodies = _agreement(own, other, "body", BODY_RADIUS)
    same_faces, faces = _agreement(own, other, "face", FACE_RADIUS)
    lockstep = _lockstep(own, other, params.max_distance) if with_faces else []
    in_step = len(lockstep) if with_faces else None
    aligned_same, aligned_faces = _aligned_faces(lockstep)
    assert in_step is not None or not faces  # face hashes exist only with face boxes
    # one recording in step with the earlier clip: more than half the frames, or the same body
    # around the face with the required frames in step (a swapped face of another size moves the
    # body's window, so the body alone never decides)
    in_time = in_step is not None and in_step >= need and in_step > LOCKSTEP_SHARE * len(nearest)
    one_recording = in_time or (
        in_step is not None and in_step >= need and same_bodies > SWAP_BODY_SHARE * bodies
    )
    if _clearly_another(same_faces, faces, need):
        # clearly another face against every face of the other clip: a swap over this recording,
        # or another person filmed in the same place who met by chance (no finding)
        kind = "face_swap" if one_recording else "shared_scene"
    elif in_time and same_faces <= faces / 2 and _clearly_another(aligned_same, aligned_faces, need):
        # not a majority of the same face order-free, and clearly another at the moments the clips
        # are in step: a pasted face that resembles the original only in other poses. Never a
        # reason to drop a finding: without this the clip stays MEDIA_REUSED
        kind = "face_swap"
    elif _clearly_another(same_bodies, bodies, need):
        kind = "shared_scene"  # clearly another person around the face: another recording there
    else:
        kind = "perceptual"
    return ReuseMatch(
        submission_id=submission_id,
        kind=kind,
        indexed_at=indexed_at,
        frames_matched=len(close),
        frames_compared=len(nearest),
        distances=close,
        path_correlation=correlation,
        face_frames_same=same_faces if faces else None,
        face_frames_compared=faces or None,
        body_frames_same=same_bodies if bodies else None,
        body_frames_compared=bodies or None,
        frames_in_step=in_step,
        face_frames_same_in_step=aligned_same if aligned_faces else None,
        face_frames_in_step=aligned_faces or None,
    )


def perceptual_matches(
    own: Sequence[FrameSignature],
    candidates: Iterable[IndexedFrame],
    *,
    own_submission_id: str,
    own_indexed_at: str,
    params: ReuseParams,
) -> list[ReuseMatch]:
    """Every earlier submission among the candidates, classified (``classify``).

    Only submissions received before this one count (``is_earlier``); a clip's own entries (a
    re-screening) never match it.
    """
    by_submission: dict[str, dict[int, FrameSignature]] = defaultdict(dict)
    first_at: dict[str, str] = {}
    for frame in candidates:
        sid = frame.submission_id
        if sid == own_submission_id or not is_earlier(
            frame.indexed_at, sid, own_indexed_at, own_submission_id
        ):
            continue
        by_submission[sid][frame.signature.index] = frame.signature
        first_at[sid] = min(first_at.get(sid, frame.indexed_at), frame.indexed_at)
    matches = []
    for sid, frames in by_submission.items():
        found = classify(
            own, list(frames.values()), submission_id=sid, indexed_at=first_at[sid], params=params
        )
        if found is not None:
            matches.append(found)
    return matches


def exact_matches(
    entries: Iterable[Mapping[str, str]], *, own_submission_id: str, own_indexed_at: str
) -> list[ReuseMatch]:
    """Earlier submissions indexed under the same SHA-256 (``{"submission_id", "indexed_at"}``)."""
    seen: dict[str, str] = {}
    for entry in entries:
        sid, at = entry["submission_id"], entry["indexed_at"]
        if sid != own_submission_id and is_earlier(at, sid, own_indexed_at, own_submission_id):
            seen[sid] = min(seen.get(sid, at), at)
    return [ReuseMatch(sid, "exact", at, 0, 0) for sid, at in seen.items()]


_RANK = {"exact": 0, "perceptual": 1, "face_swap": 2, "shared_scene": 3}


def combine(exact: Sequence[ReuseMatch], perceptual: Sequence[ReuseMatch]) -> list[ReuseMatch]:
    """One match per earlier submission (the same bytes first), findings before shared scenes,
    strongest first, then the earliest (the submission the recording was first seen under)."""
    best: dict[str, ReuseMatch] = {}
    for match in [*exact, *perceptual]:
        current = best.get(match.submission_id)
        if current is None or _RANK[match.kind] < _RANK[current.kind]:
            best[match.submission_id] = match
    return sorted(best.values(), key=lambda m: (_RANK[m.kind], -m.strength, m.indexed_at, m.submission_id))


def reuse_result(
    matches: Sequence[ReuseMatch],
    *,
    params: ReuseParams,
    frames_indexed: int,
    lookups: int,
    items_read: int = 0,
    truncated: bool = False,
) -> dict[str, Any]:
    """The small result the state machine carries to the decision (and the lineage keeps).

    ``matched``: a match that is a finding (the same bytes, the same recording, a face swap over
    it); shared scenes are listed after them but never set it. ``truncated``: a band bucket held
    more entries than a lookup reads, so a match may be missed.
    """
    findings = [m for m in matches if m.kind in FINDING_KINDS]
    return {
        "checked": True,
        "matched": bool(findings),
        "matches": [m.to_dict() for m in matches[:MAX_REPORTED_MATCHES]],
        "match_count": len(findings),
        "shared_scene_count": len(matches) - len(findings),
        "frames_indexed": frames_indexed,
        "lookups": lookups,
        "items_read": items_read,
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
        "shared_scene_count": 0,
        "frames_indexed": 0,
        "lookups": 0,
        "items_read": 0,
        "truncated": False,
        "params": params.to_dict(),
        "note": reason,
    }


def reuse_findings(result: Mapping[str, Any] | None) -> list[Finding]:
    """A match bounds the decision at REVIEW (never PASS); a REJECT from the model stands.

    The same bytes or the same recording: ``MEDIA_REUSED``. The same recording with another face:
    ``REUSED_RECORDING_FACE_SWAPPED``. A shared scene: nothing. A result from before the kinds were
    told apart (``matched`` without kinds) stays ``MEDIA_REUSED``.
    """
    if not result or not result.get("matched"):
        return []
    kinds = {m.get("kind") for m in result.get("matches") or [] if isinstance(m, Mapping)}
    found = []
    if kinds & {"exact", "perceptual"} or not kinds & set(FINDING_KINDS):
        found.append(Finding(ReasonCode.MEDIA_REUSED, Effect.NO_PASS))
    if "face_swap" in kinds:
        found.append(Finding(ReasonCode.REUSED_RECORDING_FACE_SWAPPED, Effect.NO_PASS))
    return found


def sheet_lines(result: Mapping[str, Any] | None) -> list[str]:
    """What a reviewer's contact sheet says about re-submitted media: the strongest earlier
    submission (its id's first 16 characters, exact or perceptual, the share of frames matched) and
    how many more there are; nothing when there was no match.

    A face swap adds a second line naming the earlier submission whose recording carries another
    face here, and when it was screened: the reviewer opens both. The earlier recording is most
    likely another applicant's (stolen, or that applicant's own accomplice's): the machine cannot
    tell victim from fraudster, so the swap is REVIEW (``reuse_findings``), never decided here.
    """
    if not result or not result.get("matched"):
        return []
    matches = [
        m for m in result.get("matches") or [] if isinstance(m, Mapping) and m.get("kind") != "shared_scene"
    ]
    if not matches:
        return ["reused: match details missing"]
    best = matches[0]
    line = (
        f"reused: {best.get('kind') or '?'} match of {str(best.get('submission_id') or '?')[:16]},"
        f" strength {best.get('strength')}"
    )
    more = int(result.get("match_count") or len(matches)) - 1
    lines = [line + (f", {more} more" if more > 0 else "")]
    swap = next((m for m in matches if m.get("kind") == "face_swap"), None)
    if swap is not None:
        in_step = f", in step {swap.get('frames_in_step')}/{swap.get('frames_compared')} frames"
        lines.append(
            f"face swap over the recording of {str(swap.get('submission_id') or '?')[:16]}"
            f" (screened {str(swap.get('indexed_at') or '?')[:10]})"
            + (in_step if swap.get("frames_in_step") is not None else "")
            + ": review both submissions"
        )
    return lines


# --- the index's items (written and read by kyc.aws.dynamodb_reuse_index) -------------------------


# --- admission records (written by the start function, read by the reuse check) -------------------
# One small item per received upload, keys only: written ``queued`` when the admission queue's consumer
# first receives the upload (before the admission gate, so an upload still held in the queue counts),
# ``started`` once its screening is let through the gate, ``settled`` once the upload's reuse entries
# are indexed or its screening ends in any terminal state. While unsettled it carries
# ``admitted_bucket``/``admitted_at``, the keys of the sparse index ``ADMISSIONS_INDEX``; a queued
# record's bucket has the ``QUEUED_PREFIX``, so the queued and the started uploads are read apart
# (one Query per bucket and state, benchmarks/reuse_wait.py).
#
# Why "queued" and "started" are told apart (issue 24 item 5): the gate admits uploads in receipt
# order (``admission_verdict``), so a running screening's check only ever waits for uploads that are
# running themselves (or are admitted as soon as they are received): no check waits for an upload
# that cannot get a slot because the checks hold them all.
ADMISSIONS_INDEX = "Admissions"
QUEUED, STARTED, SETTLED = "queued", "started", "settled"
ADMITTED = "admitted"  # records written before the queued/started split: read as started
QUEUED_PREFIX = "queued#"
ADMISSION_BUCKET_HOURS = 6  # one index partition per 6 h of receipt times
# How far back a check looks for started, unsettled uploads: longer than an upload can wait in the
# admission queue (AdmissionMaxReceives 60 x 180 s visibility = 3 h) plus a screening's run. An older
# row is a screening that died without settling: never waited for (and gone at its TTL).
ADMISSION_HORIZON = timedelta(hours=6)
# How far back a queued upload holds later ones at the gate, and is waited for by a check: an upload
# still queued while this much later traffic was admitted is one whose message died (a crash on its
# last receive, a purged queue): it blocks nothing longer than this (docs/provenance.md).
ORDER_HORIZON = timedelta(minutes=15)
ADMISSION_TTL = ADMISSION_HORIZON + timedelta(days=1)


class AdmissionVerdict(StrEnum):
    """What the gate does with a received upload (``admission_verdict``)."""

    START = "START"  # a slot is free and no earlier upload is still queued
    START_OWED = "START_OWED"  # a later upload already runs and may wait for this one: over the limit
    START_LAST = "START_LAST"  # its last receive: deferring it once more would send it to the DLQ
    STARTED_BEFORE = "STARTED_BEFORE"  # let through before (a redelivery): StartExecution again, idempotent
    DEFER_FULL = "DEFER_FULL"  # every slot is taken: back to the queue (its visibility timeout)
    DEFER_ORDER = "DEFER_ORDER"  # an earlier upload is still queued: back to the queue, briefly


def admission_verdict(
    *,
    state: str | None,
    last_receive: bool,
    owed: Callable[[], bool],
    slot_free: Callable[[], bool],
    earlier_queued: Callable[[], bool],
) -> AdmissionVerdict:
    """The gate, in receipt order. The callables are asked lazily, in this order, only as needed.

    Why no check deadlocks: a check waits only for earlier unsettled uploads. An upload is let through
    only when no earlier one is queued (within ``ORDER_HORIZON``), so an earlier upload is queued while
    a later one runs only when its record was written after the later one passed the gate; such an
    upload is owed: admitted when received, over the limit. Every upload a check waits for therefore
    runs, or starts on its next receive, and never waits for a slot a check holds.
    """
    if state in (STARTED, ADMITTED, SETTLED):
        return AdmissionVerdict.STARTED_BEFORE
    if owed():
        return AdmissionVerdict.START_OWED
    if last_receive:
        return AdmissionVerdict.START_LAST
    if not slot_free():
        return AdmissionVerdict.DEFER_FULL
    if earlier_queued():
        return AdmissionVerdict.DEFER_ORDER
    return AdmissionVerdict.START


def admission_key(sid: str) -> dict[str, str]:
    """The admission record's key: from the submission id alone, so settling and erasure need nothing else."""
    return {"pk": f"adm#{sid}", "sk": "adm"}


def admission_bucket(received_at: str, *, queued: bool = False) -> str:
    """The index partition of a receipt time: its UTC date and hour rounded down to the bucket
    (``QUEUED_PREFIX`` first for a queued record)."""
    at = parse_utc(received_at).astimezone(UTC)
    bucket = f"{at:%Y-%m-%d}T{at.hour - at.hour % ADMISSION_BUCKET_HOURS:02d}"
    return f"{QUEUED_PREFIX}{bucket}" if queued else bucket


def admission_sort_key(sid: str, received_at: str) -> str:
    """The record's place in receipt order (the index's sort key; ties: the id)."""
    return f"{index_time(received_at)}#{sid}"


def ordered_at(received_at: str, sent_timestamp_ms: Any = None) -> str:
    """The instant that orders an upload among the others (which of two copies is the earlier).

    S3's event time (``received_at``) has whole seconds: two copies uploaded in one second would be
    ordered by their keyed id, i.e. at random. The admission queue message's ``SentTimestamp`` (ms,
    set by SQS when EventBridge delivered the event) is finer, and no applicant sets it. The start
    function writes it into the admission record once (conditional put); the reuse check reads it
    back from the record, so a redelivered event never changes an upload's place. Without a usable
    SentTimestamp the receipt time orders, as before. Equal instants still fall to the id.
    """
    try:
        ms = int(sent_timestamp_ms)
    except (TypeError, ValueError):
        return received_at
    if ms <= 0:
        return received_at
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def admission_item(sid: str, received_at: str, order: str | None = None) -> dict[str, Any]:
    """What the start function writes for an upload it has received (state ``queued``); ``order``:
    its ``ordered_at`` (the receipt time when None), the place every gate and check reads."""
    order = order or received_at
    return {
        **admission_key(sid),
        "state": QUEUED,
        "ordered_at": order,
        "admitted_bucket": admission_bucket(order, queued=True),
        "admitted_at": admission_sort_key(sid, order),
        "expires_at": int((parse_utc(received_at) + ADMISSION_TTL).timestamp()),
    }


def _buckets(since: datetime, until: datetime, *, queued: bool) -> tuple[str, ...]:
    buckets, step = [], since
    while step <= until:
        buckets.append(admission_bucket(step.isoformat(), queued=queued))
        step += timedelta(hours=ADMISSION_BUCKET_HOURS)
    buckets.append(admission_bucket(until.isoformat(), queued=queued))
    return tuple(dict.fromkeys(buckets))


def admission_window(received_at: str, sid: str, *, queued: bool = False) -> tuple[tuple[str, ...], str, str]:
    """Where to read the uploads received before (``sid``, ``received_at``): the buckets (queued or
    started ones), and the sort-key bounds ``[since, before]`` (``before``, the upload's own key, is
    excluded by the reader). Started ones within ``ADMISSION_HORIZON``, queued ones ``ORDER_HORIZON``."""
    at = parse_utc(received_at).astimezone(UTC)
    since = at - (ORDER_HORIZON if queued else ADMISSION_HORIZON)
    return (
        _buckets(since, at, queued=queued),
        index_time(since.isoformat()),
        admission_sort_key(sid, received_at),
    )


def admission_window_after(received_at: str, sid: str) -> tuple[tuple[str, ...], str, str]:
    """Where to read the started uploads received after this one (within ``ADMISSION_HORIZON``): any
    of them may be a check waiting for this upload. Bounds ``[after, until]`` (``after`` excluded)."""
    at = parse_utc(received_at).astimezone(UTC)
    until = at + ADMISSION_HORIZON
    return (
        _buckets(at, until, queued=False),
        admission_sort_key(sid, received_at),
        index_time(until.isoformat()),
    )


def admitted_from_index(admitted_at: str) -> InFlight | None:
    """An ``admitted_at`` sort key back to the upload it names (None when malformed)."""
    at, _, sid = admitted_at.partition("#")
    return InFlight(sid, at) if sid and at else None


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
    frames: Sequence[FrameSignature],
    params: ReuseParams,
) -> list[dict[str, Any]]:
    """The items a submission adds to the index: one for its bytes, one per frame and scene band.

    Keys depend only on the submission (id, receipt time, content), so a retried or replayed
    stage writes the same items again and never a second set. Sort keys start with the receipt
    time, so a lookup reads only the window it needs. A frame without a scene hash is not filed.
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
    for frame in frames:
        if frame.scene is None:
            continue
        for key in bands(frame.scene, params.max_distance):
            items.append(
                {
                    "pk": key,
                    "sk": f"{at}#{submission_id}#{frame.index:04d}",
                    "submission_id": submission_id,
                    "at": at,
                    "expires_at": ttl,
                    **frame.to_item(),
                }
            )
    return items


def _nearest_faces(
    evidence_frames: Sequence[Mapping[str, Any]], frame_indices: Sequence[int]
) -> list[Mapping[str, Any] | None]:
    """The face record each sampled frame is anchored to: its largest confident face, else the
    nearest frame's (faces move little between samples, and every frame must be anchored alike)."""
    seen: dict[int, Mapping[str, Any]] = {}
    for frame in evidence_frames:
        faces = [
            f
            for f in frame.get("faces") or []
            if isinstance(f, Mapping)
            and f.get("box")
            and float(f.get("confidence", 100.0)) >= MIN_FACE_CONFIDENCE
        ]
        if frame.get("error") or not faces:
            continue
        seen[int(frame["index"])] = max(
            faces, key=lambda f: float(f["box"]["width"]) * float(f["box"]["height"])
        )
    if not seen:
        return [None] * len(frame_indices)
    known = sorted(seen)
    return [seen[min(known, key=lambda k: (abs(k - i), k))] for i in frame_indices]


def face_boxes(
    evidence_frames: Sequence[Mapping[str, Any]], frame_indices: Sequence[int]
) -> list[tuple[float, float, float, float] | None]:
    """One face box per sampled frame (``left, top, width, height`` as shares), from the face stage.

    A frame the stage checked takes its largest face; a frame it did not check, or saw no face in,
    takes the box of the nearest frame where a face was seen (faces move little between samples,
    and the scene must be masked the same way on every frame). None on every frame without any.
    """
    return [
        None if face is None else tuple(float(face["box"][k]) for k in ("left", "top", "width", "height"))  # type: ignore[misc]
        for face in _nearest_faces(evidence_frames, frame_indices)
    ]


def face_rolls(evidence_frames: Sequence[Mapping[str, Any]], frame_indices: Sequence[int]) -> list[float]:
    """The roll (degrees) of the face each sampled frame is anchored to (``face_boxes``' face); 0
    where the face stage recorded no pose or saw no face. The hashes turn their windows upright by
    it, so a rotated copy hashes like the original (kyc.media.recording_hash)."""
    rolls = []
    for face in _nearest_faces(evidence_frames, frame_indices):
        pose = face.get("pose") if face is not None else None
        roll = pose.get("roll") if isinstance(pose, Mapping) else None
        rolls.append(float(roll) if isinstance(roll, int | float) and abs(roll) <= MAX_ROLL else 0.0)
    return rolls


def position(box: tuple[float, float, float, float] | None) -> tuple[float, float, float] | None:
    """A face box's centre and size (its larger side), shares of the frame."""
    if box is None:
        return None
    left, top, width, height = box
    return (left + width / 2, top + height / 2, max(width, height))
