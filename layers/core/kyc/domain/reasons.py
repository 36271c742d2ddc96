"""Stable, machine-readable reason codes (documented in docs/reason-codes.md).

Codes are added, never renamed: downstream systems switch on them.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    # --- media refused by validation (decision INVALID) ---
    EMPTY_FILE = "EMPTY_FILE"
    TOO_LARGE = "TOO_LARGE"
    UNRECOGNISED_FORMAT = "UNRECOGNISED_FORMAT"
    PLAYLIST_OR_SCRIPT = "PLAYLIST_OR_SCRIPT"
    IMAGE_NOT_VIDEO = "IMAGE_NOT_VIDEO"
    UNSUPPORTED_CONTAINER = "UNSUPPORTED_CONTAINER"
    UNSUPPORTED_CODEC = "UNSUPPORTED_CODEC"
    NO_VIDEO_STREAM = "NO_VIDEO_STREAM"
    MULTIPLE_VIDEO_STREAMS = "MULTIPLE_VIDEO_STREAMS"
    TOO_MANY_STREAMS = "TOO_MANY_STREAMS"
    RESOLUTION_TOO_LARGE = "RESOLUTION_TOO_LARGE"
    RESOLUTION_TOO_SMALL = "RESOLUTION_TOO_SMALL"
    DURATION_TOO_LONG = "DURATION_TOO_LONG"
    DURATION_TOO_SHORT = "DURATION_TOO_SHORT"
    DURATION_UNKNOWN = "DURATION_UNKNOWN"
    FRAME_RATE_INVALID = "FRAME_RATE_INVALID"
    ENCRYPTED_MEDIA = "ENCRYPTED_MEDIA"
    CORRUPT_MEDIA = "CORRUPT_MEDIA"
    DECODE_BUDGET_EXCEEDED = "DECODE_BUDGET_EXCEEDED"
    # --- evidence gates (decision REVIEW) ---
    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    INSUFFICIENT_FRAMES = "INSUFFICIENT_FRAMES"
    PARTIAL_SCORING = "PARTIAL_SCORING"
    MODEL_UNCERTAIN = "MODEL_UNCERTAIN"
    # --- scored outcomes ---
    LOW_FAKE_SCORE = "LOW_FAKE_SCORE"
    HIGH_FAKE_SCORE = "HIGH_FAKE_SCORE"
    # --- pipeline failures (decision ERROR) ---
    ENDPOINT_UNAVAILABLE = "ENDPOINT_UNAVAILABLE"
    ENDPOINT_THROTTLED = "ENDPOINT_THROTTLED"
    ENDPOINT_TIMEOUT = "ENDPOINT_TIMEOUT"
    MODEL_ERROR = "MODEL_ERROR"
    CONTRACT_VIOLATION = "CONTRACT_VIOLATION"
    SOURCE_CHANGED = "SOURCE_CHANGED"
    SOURCE_MISSING = "SOURCE_MISSING"
    PIPELINE_ERROR = "PIPELINE_ERROR"
    EXECUTION_FAILED = "EXECUTION_FAILED"
    # --- decision policy (appended) ---
    UNUSABLE_SCORES = "UNUSABLE_SCORES"  # the model returned NaN or out-of-range p_fake for some frames
    # --- media refused by validation (appended) ---
    EXTERNAL_REFERENCE = "EXTERNAL_REFERENCE"  # a MOV/MP4 data reference (dref) points outside the file
    INCONSISTENT_TIMING = "INCONSISTENT_TIMING"  # the header duration disagrees with what the frames span
    DECODER_CRASHED = "DECODER_CRASHED"  # the sandboxed decoder died on a signal (a crash, not a limit)
    # --- evidence gates (appended) ---
    NO_FACE_EVIDENCE = "NO_FACE_EVIDENCE"  # too few scored frames with a seen face to support a PASS
    # --- calibration ---
    MODEL_NOT_CALIBRATED = "MODEL_NOT_CALIBRATED"  # thresholds not measured for the model that scored
    # --- provenance ---
    DECLARED_SYNTHETIC = "DECLARED_SYNTHETIC"  # a C2PA manifest declares an AI-generated/synthetic source
    PROVENANCE_INVALID = "PROVENANCE_INVALID"  # a C2PA manifest fails validation or cannot be read
    # container forensics, weak signals whose rules are off by default (docs/provenance.md):
    EDITING_SOFTWARE = "EDITING_SOFTWARE"  # an editor or transcoder wrote the file
    TIMESTAMP_ANOMALY = "TIMESTAMP_ANOMALY"  # creation/modification times disagree with the upload
    DEVICE_MISMATCH = "DEVICE_MISMATCH"  # brand, handler or codec not what the claimed device writes
    # --- reuse ---
    MEDIA_REUSED = "MEDIA_REUSED"  # the same bytes or a near-duplicate was screened under another submission
    # --- face stage ---
    FACE_TOO_SMALL = "FACE_TOO_SMALL"  # the face stage's face spans too little of the frame to judge
    FACE_POSE = "FACE_POSE"  # the face is turned (yaw, pitch or roll) beyond the policy's limit
    FACE_TOO_DARK = "FACE_TOO_DARK"  # the face is too dark (face stage brightness below the limit)
    FACE_BLURRED = "FACE_BLURRED"  # the face is blurred (face stage sharpness below the limit)
    # --- face stage: one person throughout (issue 25, appended) ---
    IDENTITY_CHANGED = "IDENTITY_CHANGED"  # the face on some evidence frames is not the person on the others
    # --- media timing and geometry (issue 22, appended) ---
    UNTIMED_FRAMES = "UNTIMED_FRAMES"  # some shown frames carry no presentation time (laced, no durations)
    SHORT_FRAME_SAMPLED = "SHORT_FRAME_SAMPLED"  # a sampled frame is shown for under half a typical frame
    ASPECT_RATIO_INVALID = (
        "ASPECT_RATIO_INVALID"  # wider or taller than 4:1 on screen once SAR squares the pixels
    )
    # --- reuse (appended, issue 24) ---
    REUSED_RECORDING_FACE_SWAPPED = (
        "REUSED_RECORDING_FACE_SWAPPED"  # an earlier recording, frame for frame, with another face
    )
    # --- aggregation (issue 24, appended) ---
    SUSTAINED_FAKE_FRAMES = "SUSTAINED_FAKE_FRAMES"  # a run or share of frames called fake, whatever the mean
    # --- provenance (issue 24, appended) ---
    DECLARED_AI_ENHANCED = "DECLARED_AI_ENHANCED"  # C2PA declares algorithmicallyEnhanced retouching
