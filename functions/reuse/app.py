"""CheckReuse: has this clip, or a near-duplicate, been screened under another submission?

Writes this submission's entries to the reuse index first, then looks up the others: two copies
screened at the same moment cannot both miss each other (whichever looks up second sees the
first). A retry writes the same keys again. The result is small (the strongest matches, with the
earlier submission's id and how strongly it matched); the decision turns a match into REVIEW
``MEDIA_REUSED`` at most (kyc.domain.reuse.reuse_findings).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.dynamodb_reuse_index import DynamoDBReuseIndex
from kyc.aws.errors import SourceChangedError
from kyc.aws.s3_object_store import S3ObjectStore
from kyc.domain.lineage import sha256_hex
from kyc.domain.reuse import (
    ReuseParams,
    bands,
    combine,
    exact_matches,
    expires_at,
    index_entries,
    manifest_frames,
    not_checked,
    perceptual_matches,
    reuse_result,
    window_start,
)
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

RESOURCES = settings.stack_resources()
PARAMS = ReuseParams(**settings.reuse_params())
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)
INDEX = DynamoDBReuseIndex(settings.reuse_table())


@logger.inject_lambda_context(correlation_id_path="submission.submission_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("reuse")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return check_reuse(event)


def check_reuse(event: dict[str, Any]) -> dict[str, Any]:
    """Write this submission's entries, then look up the others (the order is the guarantee)."""
    submission, validation = event["submission"], event["validation"]
    extraction = event.get("extraction") or {}
    sid = submission["submission_id"]
    if extraction.get("refusal") or not extraction.get("manifest_key"):
        return not_checked("no frames were sampled", PARAMS)
    body = STORE.get_bytes(RESOURCES.work_bucket, extraction["manifest_key"])
    if sha256_hex(body) != extraction.get("manifest_sha256"):
        raise SourceChangedError("the frame manifest differs from the one the extract stage wrote")
    frames = manifest_frames(json.loads(body))
    received_at = submission["received_at"]
    INDEX.record(
        sid,
        index_entries(
            submission_id=sid,
            received_at=received_at,
            sha256=validation["sha256"],
            frames=frames,
            params=PARAMS,
        ),
        expires_at(received_at, PARAMS),
    )
    since = window_start(received_at, PARAMS)
    exact = exact_matches(INDEX.exact(validation["sha256"], since), own_submission_id=sid)
    band_keys = {key for _, phash in frames for key in bands(phash)}
    candidates, truncated = INDEX.frames(band_keys, since)
    own = [phash for _, phash in frames]
    near = perceptual_matches(own, candidates, own_submission_id=sid, params=PARAMS)
    matches = combine(exact, near)
    result = reuse_result(
        matches, params=PARAMS, frames_indexed=len(frames), lookups=1 + len(band_keys), truncated=truncated
    )
    count("ReuseChecks", outcome="MATCHED" if matches else "UNIQUE")
    log_lineage(
        "reuse",
        sid,
        execution_arn=event.get("execution_arn"),
        inputs={"source_sha256": validation["sha256"], "manifest_sha256": extraction["manifest_sha256"]},
        outputs=result,
    )
    return result
