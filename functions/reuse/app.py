"""CheckReuse: has this recording been screened under another submission (docs/provenance.md)?

Reads the sampled frames (checked against the manifest) and the face stage's evidence (checked
against its hash), hashes each frame's scene and face (kyc.media.recording_hash), writes this
submission's entries to the reuse index first, then looks up the others: of two copies screened at
the same moment, whichever looks up second sees the first, and only the later one is marked (the
domain ignores submissions received after this one). Since the later copy may read first, a check
that finds no earlier match waits until every upload received before it and still unsettled (its
admission record, written when the admission queue's consumer received it: queued uploads count)
has settled, then reads again (kyc.domain.reuse.unsettled_earlier): the later copy is marked
whatever the timing. This check settles its own record once its entries are indexed. A timed-out
wait raises; the state machine retries it (``ReuseWaits`` counts each: RETRIED is not an alarm,
FAILED, the last attempt's, is). A retry writes the same keys again. The
result is small: the strongest matches, with the earlier submission's id and what the match means;
the decision turns it into REVIEW at most (kyc.domain.reuse.reuse_findings).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.dynamodb_admissions import DynamoDBAdmissions
from kyc.aws.dynamodb_reuse_index import DynamoDBReuseIndex
from kyc.aws.errors import SourceChangedError
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.domain.lineage import sha256_hex
from kyc.domain.reuse import (
    FINDING_KINDS,
    EarlierSubmissionsInFlightError,
    FrameSignature,
    ReuseParams,
    bands,
    combine,
    exact_matches,
    expires_at,
    index_entries,
    index_time,
    not_checked,
    perceptual_matches,
    reuse_result,
    unsettled_earlier,
    window_start,
)
from kyc.media import recording_hash_r1
from kyc.media.contact_sheet import decode_image
from kyc.media.framestore import FrameReader
from kyc.media.recording_hash import frame_signatures
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

RESOURCES = settings.stack_resources()
PARAMS = ReuseParams(**settings.reuse_params())
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
INDEX = DynamoDBReuseIndex(settings.reuse_table())
ADMISSIONS = DynamoDBAdmissions(settings.reuse_table())
PARALLEL_READS = 8
# Hash constructions an index written before this one may still hold within the window: read with
# hashes of their own construction, never written (kyc.media.recording_hash_r1). Drop r1 once every
# deployment has run r2 for longer than its ReuseWindowDays.
LEGACY_HASHERS = {recording_hash_r1.HASH_VERSION: recording_hash_r1.recording_hashes}
WAIT_S = 40.0  # at most, for earlier submissions still in flight to index (the function's timeout: 60 s)
WAIT_MARGIN_S = 10.0  # left of the invocation after waiting, to read again and answer
POLL_S = (0.5, 1.0, 2.0)  # between looks at the unsettled uploads (the last repeats)
# Retries of EarlierSubmissionsInFlightError in statemachines/screening.asl.json (CheckReuse); the
# attempt after the last of them is the final one (tests/unit/iac asserts the two agree).
WAIT_RETRIES = 2


@logger.inject_lambda_context(correlation_id_path="submission.submission_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("reuse")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return check_reuse(
        event, wait_s=min(WAIT_S, context.get_remaining_time_in_millis() / 1000 - WAIT_MARGIN_S)
    )


def _verified(key: str, expected: str | None, what: str) -> bytes:
    body = STORE.get_bytes(RESOURCES.work_bucket, key)
    if sha256_hex(body) != expected:
        raise SourceChangedError(f"{what} differs from the one its stage wrote")
    return body


def signatures(
    manifest: dict[str, Any], faces: dict[str, Any] | None
) -> tuple[list[FrameSignature], dict[str, list[FrameSignature]]]:
    """Every sampled frame's signature: the frames read and decoded, the face stage's boxes applied;
    and the same frames hashed by each legacy construction (``LEGACY_HASHERS``), to read its entries."""
    entries = sorted(manifest.get("frames", []), key=lambda f: f["index"])
    reader = FrameReader(manifest, lambda key: STORE.get_bytes(RESOURCES.work_bucket, key))

    def rgb(entry: dict[str, Any]) -> Any:
        data = reader.read(entry)  # one GET per batch object (kyc.media.framestore)
        if sha256_hex(data) != entry["sha256"]:
            raise SourceChangedError(f"frame {entry['index']} differs from the one its stage wrote")
        return decode_image(data).to_ndarray(format="rgb24")

    with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
        pixels = list(pool.map(rgb, entries))
    frames = [
        (int(e["index"]), float(e.get("pts_s") or 0.0), p) for e, p in zip(entries, pixels, strict=True)
    ]
    evidence = (faces or {}).get("frames") or []
    legacy = {
        version: frame_signatures(frames, evidence, hasher) for version, hasher in LEGACY_HASHERS.items()
    }
    return frame_signatures(frames, evidence), legacy


def check_reuse(event: dict[str, Any], wait_s: float = WAIT_S) -> dict[str, Any]:
    """Write this submission's entries, then look up the others; with no earlier match, wait for the
    earlier submissions in flight to index and look again (the order is the guarantee)."""
    submission, validation = event["submission"], event["validation"]
    extraction = event.get("extraction") or {}
    sid = submission["submission_id"]
    if extraction.get("refusal") or not extraction.get("manifest_key"):
        return not_checked("no frames were sampled", PARAMS)
    manifest = json.loads(
        _verified(extraction["manifest_key"], extraction.get("manifest_sha256"), "the frame manifest")
    )
    face_stage = event.get("faces") or {}
    faces = None
    if face_stage.get("evidence_key"):
        faces = json.loads(
            _verified(face_stage["evidence_key"], face_stage.get("evidence_sha256"), "the face evidence")
        )
    frames, legacy = signatures(manifest, faces)
    # the upload's place among the others: as the start function recorded it (the message's
    # SentTimestamp, ms), the receipt time when there is none (kyc.domain.reuse.ordered_at)
    # (the entries' TTL follows it too: later than the receipt time by SQS's delivery delay only)
    order = ADMISSIONS.ordered_at(sid) or submission["received_at"]
    INDEX.record(
        sid,
        index_entries(
            submission_id=sid,
            received_at=order,
            sha256=validation["sha256"],
            frames=frames,
            params=PARAMS,
        ),
        expires_at(order, PARAMS),
    )
    ADMISSIONS.settle(sid)  # after the entries: a later copy waiting for this one reads them next
    since, at = window_start(order, PARAMS), index_time(order)
    # each construction's frames with their own keys: r2's, and each legacy one's (read only)
    versions = [(frames, _band_keys(frames, None))]
    versions += [(old, _band_keys(old, version)) for version, old in legacy.items()]
    band_keys = set().union(*(keys for _, keys in versions))

    items_read = [0]

    def look_up() -> tuple[list[Any], bool]:
        exact = exact_matches(
            INDEX.exact(validation["sha256"], since), own_submission_id=sid, own_indexed_at=at
        )
        near, truncated = [], False
        items_read[0] = 0
        for own, keys in versions:
            candidates, cut = INDEX.frames(keys, since)
            items_read[0] += INDEX.items_read
            near += perceptual_matches(
                own, candidates, own_submission_id=sid, own_indexed_at=at, params=PARAMS
            )
            truncated = truncated or cut
        return combine(exact, near), truncated

    matches, truncated = look_up()
    waited_for = None
    if not any(m.kind in FINDING_KINDS for m in matches):
        final = int(event.get("retry_count") or 0) >= WAIT_RETRIES
        waited_for = _wait_for_earlier(sid, order, wait_s, final=final)
        matches, truncated = look_up()  # after every earlier upload has settled
    result = reuse_result(
        matches,
        params=PARAMS,
        frames_indexed=sum(1 for f in frames if f.scene is not None),
        lookups=1 + len(band_keys),
        items_read=items_read[0],
        truncated=truncated,
    )
    result["waited_for_earlier"] = waited_for  # None: no wait needed (a match)
    count("ReuseChecks", outcome=_outcome(result))
    log_lineage(
        "reuse",
        sid,
        execution_arn=event.get("execution_arn"),
        inputs={
            "source_sha256": validation["sha256"],
            "manifest_sha256": extraction["manifest_sha256"],
            "face_evidence_sha256": face_stage.get("evidence_sha256"),
        },
        outputs=result,
    )
    return result


def _band_keys(frames: list[FrameSignature], version: str | None) -> set[str]:
    """The index keys of the frames' scene hashes (``version``: a legacy construction's; None: this one's)."""
    extra = {} if version is None else {"version": version}
    return {
        key for f in frames if f.scene is not None for key in bands(f.scene, PARAMS.max_distance, **extra)
    }


def _wait_for_earlier(sid: str, received_at: str, wait_s: float, *, final: bool = True) -> list[str]:
    """Return once no upload received before this one is unsettled (the ones waited for); raise
    EarlierSubmissionsInFlightError when ``wait_s`` runs out first. ``final``: no retry follows."""
    deadline, waited = time.monotonic() + max(0.0, wait_s), set()
    for attempt in range(10_000):
        unsettled = ADMISSIONS.unsettled_before(sid, received_at)
        pending = unsettled_earlier(unsettled, (), own_submission_id=sid, own_received_at=received_at)
        if not pending:
            if waited:
                count("ReuseWaits", outcome="WAITED")
                logger.info("reuse check waited for earlier uploads", extra={"waited_for": len(waited)})
            return sorted(waited)
        waited.update(pending)
        pause = POLL_S[min(attempt, len(POLL_S) - 1)]
        if time.monotonic() + pause > deadline:
            # RETRIED: the state machine runs the check again (no page); FAILED: the screening ends
            # in ERROR, and CheckReuseErrorsAlarm fires (docs/runbook.md)
            count("ReuseWaits", outcome="FAILED" if final else "RETRIED")
            raise EarlierSubmissionsInFlightError(
                f"{len(pending)} earlier upload(s) still unsettled after {wait_s:.0f} s"
            )
        time.sleep(pause)
    raise EarlierSubmissionsInFlightError("too many polls")  # unreachable with a finite wait_s


def _outcome(result: dict[str, Any]) -> str:
    kinds = {m["kind"] for m in result["matches"]}
    if "face_swap" in kinds:
        return "FACE_SWAPPED"
    if result["matched"]:
        return "MATCHED"
    return "SHARED_SCENE" if result["shared_scene_count"] else "UNIQUE"
