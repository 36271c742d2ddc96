"""The entry points the handlers call: validation and sampling, each inside the sandbox.

The parent hashes nothing and decodes nothing; it forks, waits and rebuilds the answer from
JSON. A child stopped by a limit or killed by a signal becomes an INVALID answer with its own
reason code, recorded like any other refusal; the parent carries on.
"""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from typing import Any

from kyc.domain.reasons import ReasonCode
from kyc.media.c2pa_manifest import C2paConfig, C2paSummary, read_c2pa, summary_from_dict, unreadable
from kyc.media.errors import MediaRefusedError
from kyc.media.limits import MediaLimits
from kyc.media.sampling import SampledFrame, SampleSet, SamplingParams, sample_frames
from kyc.media.sandbox import SandboxLimits, SandboxUsage, memory_aware_reason, run_sandboxed
from kyc.media.validation import MediaSummary, ValidationReport, file_digest, validate_upload


def validate_isolated(
    path: str | os.PathLike[str], limits: MediaLimits, sandbox: SandboxLimits, *, sha256: str | None = None
) -> tuple[ValidationReport, SandboxUsage | None]:
    """``validate_upload`` in a sandbox; a limit or a crash is a refusal with the file's digest."""
    size = os.stat(path).st_size
    if size == 0 or size > limits.max_bytes:  # refused without opening: nothing to isolate
        return validate_upload(path, limits, sha256=sha256), None
    digest = sha256 or file_digest(path)
    try:
        result = run_sandboxed(
            lambda: validate_upload(path, limits, sha256=digest),
            sandbox,
            encode=_report_in_child,
            decode=report_from_dict,
        )
    except MediaRefusedError as exc:
        return ValidationReport(False, exc.reason, exc.message, digest, size, None), None
    return result.value, result.usage


def sample_isolated(
    path: str | os.PathLike[str],
    params: SamplingParams,
    limits: MediaLimits,
    sandbox: SandboxLimits,
    *,
    seed: str | None = None,
) -> tuple[SampleSet, SandboxUsage]:
    """``sample_frames`` in a sandbox. Raises MediaRefusedError like ``sample_frames`` does."""
    result = run_sandboxed(
        lambda: sample_frames(path, params, limits, seed=seed),
        sandbox,
        encode=sample_to_dict,
        decode=sample_from_dict,
    )
    return result.value, result.usage


def read_c2pa_isolated(
    path: str | os.PathLike[str], config: C2paConfig, sandbox: SandboxLimits
) -> tuple[C2paSummary, SandboxUsage | None]:
    """``read_c2pa`` in a sandbox child of its own, so a hostile manifest that crashes or stalls the
    native reader costs the manifest (``unreadable``, with the reason) and never the validation."""
    try:
        result = run_sandboxed(
            lambda: read_c2pa(path, config), sandbox, encode=C2paSummary.to_dict, decode=summary_from_dict
        )
    except MediaRefusedError as exc:
        return unreadable(f"{exc.reason}: {exc.message}"), None
    return result.value, result.usage


def _report_in_child(report: ValidationReport) -> dict[str, Any]:
    """The report as JSON, with a refusal caused by the memory limit named as such."""
    if report.reason is not None:
        report = replace(report, reason=memory_aware_reason(report.reason))
    return report.to_dict()


def report_from_dict(data: Any) -> ValidationReport:
    media = data["media"]
    return ValidationReport(
        accepted=bool(data["accepted"]),
        reason=None if data["reason"] is None else ReasonCode(data["reason"]),
        message=str(data["message"]),
        sha256=str(data["sha256"]),
        size_bytes=int(data["size"]),
        media=None if media is None else MediaSummary(**media),
        forensics=data.get("forensics"),
    )


def sample_to_dict(sample: SampleSet) -> dict[str, Any]:
    return {
        "frames": [
            {**{k: getattr(f, k) for k in _FRAME_FIELDS}, "data": base64.b64encode(f.data).decode("ascii")}
            for f in sample.frames
        ],
        "params": sample.params.__dict__,
        "briefly_shown": list(sample.briefly_shown),
        **{k: getattr(sample, k) for k in _SAMPLE_FIELDS},
    }


def sample_from_dict(data: Any) -> SampleSet:
    frames = tuple(
        SampledFrame(**{k: f[k] for k in _FRAME_FIELDS}, data=base64.b64decode(f["data"], validate=True))
        for f in data["frames"]
    )
    params = replace(SamplingParams(), **data["params"])
    return SampleSet(
        frames=frames,
        params=params,
        briefly_shown=tuple(data["briefly_shown"]),
        **{k: data[k] for k in _SAMPLE_FIELDS},
    )


_FRAME_FIELDS = ("index", "pts_s", "keyframe", "width", "height", "content_type", "sha256")
_SAMPLE_FIELDS = (
    "requested", "duration_s", "start_s", "header_duration_s", "short_clip", "decoded_frames", "rotation",
    "sampling_seed", "typical_frame_s", "mirrored",
)  # fmt: skip
