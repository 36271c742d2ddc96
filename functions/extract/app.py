"""ExtractFrames: decode the validated bytes, sample frames, store them; return pointers only."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
from aws_lambda_powertools.utilities.typing import LambdaContext

from kyc import settings
from kyc.aws.errors import SourceChangedError
from kyc.aws.s3_object_store import S3ObjectStore, canonical_json
from kyc.domain.lineage import sha256_hex
from kyc.media.errors import MediaRefusedError
from kyc.media.framestore import BATCH_CONTENT_TYPE, batch_objects, frame_manifest
from kyc.media.isolated import sample_isolated
from kyc.media.sampling import SampleSet, SamplingParams
from kyc.media.sandbox import sandbox_for_invocation
from kyc.observability import count, log_lineage, logger, metrics, stage_duration, tracer

LIMITS = settings.media_limits()
MEMORY_FRACTION = settings.sandbox_memory_fraction()
PARAMS = SamplingParams(**settings.sampling_overrides())
RESOURCES = settings.stack_resources()
STORE = S3ObjectStore(kms_key_id=RESOURCES.kms_key_id)


@logger.inject_lambda_context(correlation_id_path="submission.submission_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)  # issue 23: no results in traces
@metrics.log_metrics
@stage_duration("extract")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    submission, validation = event["submission"], event["validation"]
    sid = submission["submission_id"]
    with tempfile.TemporaryDirectory(prefix="kyc-extract-") as tmp:
        upload = STORE.download(
            submission["bucket"],
            submission["key"],
            submission.get("version_id"),
            Path(tmp) / "upload",
            max_bytes=LIMITS.max_bytes,
        )
        if upload.sha256 != validation["sha256"]:
            raise SourceChangedError("the stored bytes differ from the validated bytes")
        sandbox = sandbox_for_invocation(context, LIMITS.decode_budget_s, MEMORY_FRACTION)
        try:
            sample, usage = sample_isolated(upload.path, PARAMS, LIMITS, sandbox)
        except MediaRefusedError as exc:
            count("UploadsRefused", reason_code=str(exc.reason))
            return _refused(sid, exc, event.get("execution_arn"))
    result = _store(sid, sample, upload.sha256)
    count("FramesExtracted", value=result["frames_sampled"])
    log_lineage(
        "extract",
        sid,
        execution_arn=event.get("execution_arn"),
        decoder={"pyav": av.__version__, "ffmpeg": av.ffmpeg_version_info},
        inputs={"sha256": upload.sha256},
        outputs={
            "manifest_key": result["manifest_key"],
            "manifest_sha256": result["manifest_sha256"],
            "frames": [f.sha256 for f in sample.frames],
            "duration_s": sample.duration_s,
            "header_duration_s": sample.header_duration_s,
            "sandbox": usage.to_dict(),
            "briefly_shown": list(sample.briefly_shown),
        },
        parameters={
            "frame_count": PARAMS.frame_count,
            "max_side": PARAMS.max_side,
            "image_format": PARAMS.image_format,
            "sampling_seed": sample.sampling_seed,  # with the upload's bytes, reproduces the sample
        },
    )
    return result


def _store(sid: str, sample: SampleSet, source_sha256: str) -> dict[str, Any]:
    """One object per scoring batch plus the manifest (kyc.media.framestore): nothing per frame."""
    prefix = f"frames/{sid}/"
    manifest = frame_manifest(sample, source_sha256=source_sha256, prefix=prefix)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda pair: STORE.put_bytes(
                    RESOURCES.work_bucket, prefix + pair[0], pair[1], BATCH_CONTENT_TYPE
                ),
                batch_objects(sample, manifest),
            )
        )
    body = canonical_json(manifest)
    manifest_key = prefix + "manifest.json"
    STORE.put_bytes(RESOURCES.work_bucket, manifest_key, body, "application/json")
    return {
        "manifest_key": manifest_key,
        "manifest_sha256": sha256_hex(body),
        "frames_sampled": len(sample.frames),
        "briefly_shown": len(sample.briefly_shown),
        "batches": [{"batch_index": b["batch_index"]} for b in manifest["batches"]],
        "refusal": None,
    }


def _refused(sid: str, exc: MediaRefusedError, execution_arn: str | None) -> dict[str, Any]:
    """Media that passed validation but cannot be sampled is still INVALID, never scored."""
    log_lineage("extract", sid, execution_arn=execution_arn, outputs={"refused": str(exc.reason)})
    return {
        "manifest_key": None,
        "manifest_sha256": None,
        "frames_sampled": 0,
        "briefly_shown": 0,
        "batches": [],
        "refusal": {"reason": str(exc.reason), "message": exc.message},
    }
