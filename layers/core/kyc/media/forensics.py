"""Container forensics: what the file says about who wrote it, and when. Evidence, never a verdict.

Read in the validation child from the container FFmpeg already opened and the box walk already
done: brand, encoder and handler tags, device make and model, creation and modification times.
Every value is the applicant's and can be set to anything; the rules that read these facts
(``kyc.domain.provenance``) are weak signals, off by default (docs/provenance.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import av

from kyc.media.probe import IsoLayout

MAX_TEXT = 120
_MAC_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)
# Tags naming the device, as Apple, Android and generic muxers write them (lower-cased keys).
_MAKE_KEYS = ("com.apple.quicktime.make", "com.android.manufacturer", "make")
_MODEL_KEYS = ("com.apple.quicktime.model", "com.android.model", "model")
_SOFTWARE_KEYS = ("com.apple.quicktime.software", "software")
_ENCODER_KEYS = ("encoder", "writing_app", "muxing_app", "software")


def container_facts(
    container: av.container.InputContainer, stream: av.VideoStream, codec: str, layout: IsoLayout | None
) -> dict[str, Any]:
    """The container's self-description, bounded and JSON-safe (it travels in Step Functions state)."""
    tags = _lower(container.metadata)
    video = _lower(stream.metadata)
    facts: dict[str, Any] = {
        "format": clip_text(container.format.name),
        "major_brand": clip_text(tags.get("major_brand")),
        "compatible_brands": clip_text(tags.get("compatible_brands")),
        "encoder": _first(tags, _ENCODER_KEYS),
        "video_encoder": clip_text(video.get("encoder")),
        "handler": clip_text(video.get("handler_name")),
        "vendor_id": clip_text(video.get("vendor_id")),
        "codec": codec,
        "make": _first(tags, _MAKE_KEYS),
        "model": _first(tags, _MODEL_KEYS),
        "software": _first(tags, _SOFTWARE_KEYS),
        "android_version": clip_text(tags.get("com.android.version")),
        "creation_time": clip_text(tags.get("creation_time") or video.get("creation_time")),
        "device_creation_time": clip_text(tags.get("com.apple.quicktime.creationdate")),
        "movie_created": None,
        "movie_modified": None,
    }
    if layout is not None and layout.movie_times is not None:
        created, modified = layout.movie_times
        facts["movie_created"] = _mac_time(created)
        facts["movie_modified"] = _mac_time(modified)
    return facts


def _lower(metadata: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): v for k, v in dict(metadata).items()}


def _first(tags: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    return next((clip_text(tags[k]) for k in keys if tags.get(k)), None)


def _mac_time(seconds: int) -> str | None:
    """A QuickTime time (seconds since 1904) as ISO 8601 UTC; 0 means "not set"."""
    if seconds <= 0:
        return None
    try:
        return (_MAC_EPOCH + timedelta(seconds=seconds)).isoformat()
    except OverflowError:
        return None


def clip_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A printable, bounded string: container and manifest text is the applicant's, and goes into
    logs, records and a reviewer's sheet."""
    if value is None or value == "":
        return None
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return text[:limit]
