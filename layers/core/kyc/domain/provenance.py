"""Provenance rules: what C2PA Content Credentials and container forensics do to a decision.

Pure Python over the small summaries the validate stage records (``kyc.media.c2pa_manifest``,
``kyc.media.forensics``). The rules, each a template parameter (docs/provenance.md):

- a manifest that declares a synthetic source (IPTC ``trainedAlgorithmicMedia`` and the like, in
  the active manifest or any ingredient) -> REJECT ``DECLARED_SYNTHETIC``, whatever the model says:
  a declaration that incriminates its own file needs no trust in whoever signed it;
- a manifest that no longer matches the content (edited after signing), or that is there but cannot
  be read -> at most REVIEW ``PROVENANCE_INVALID``;
- a valid capture manifest is recorded as evidence and never makes a PASS by itself; no manifest is
  neutral (stripping one is trivial);
- container forensics (editing software, timestamps, device consistency) are recorded for every
  decision; each can be turned into a NO_PASS finding, and none is by default: they are weak signals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kyc.domain.policy import Effect, Finding, PolicyError
from kyc.domain.reasons import ReasonCode
from kyc.domain.timestamps import parse_utc

# IPTC Digital Source Type vocabulary (cv.iptc.org/newscodes/digitalsourcetype, 2024-10) and C2PA's
# own term: media that was not captured from a real scene by a camera. Retired synonyms included.
DEFAULT_SYNTHETIC_SOURCE_TYPES = frozenset(
    {
        "trainedAlgorithmicMedia",
        "compositeWithTrainedAlgorithmicMedia",
        "algorithmicMedia",
        "compositeSynthetic",
        "dataDrivenMedia",
        "virtualRecording",
        "digitalArt",
        "digitalCreation",  # retired, now digitalArt
        "softwareImage",  # retired, now algorithmicMedia
        "trainedAlgorithmicData",  # C2PA's term
    }
)
CAPTURE_SOURCE_TYPES = frozenset({"digitalCapture", "computationalCapture"})
# Declared generative retouching (which can be a generated face on a real capture): never a PASS.
DEFAULT_ENHANCED_SOURCE_TYPES = frozenset({"algorithmicallyEnhanced"})
# The rest of the IPTC vocabulary, so that every term normalises to its canonical spelling.
_OTHER_SOURCE_TYPES = frozenset(
    {
        "negativeFilm",
        "positiveFilm",
        "print",
        "minorHumanEdits",
        "compositeCapture",
        "composite",
        "screenCapture",
        "multiFrameComputationalCapture",
        "humanEdits",
    }
)
_CANONICAL_TERMS = {
    t.lower(): t
    for t in DEFAULT_SYNTHETIC_SOURCE_TYPES
    | CAPTURE_SOURCE_TYPES
    | DEFAULT_ENHANCED_SOURCE_TYPES
    | _OTHER_SOURCE_TYPES
}
_SCHEMA_ORG_SUFFIX = (
    "digitalsource"  # schema.org's IPTCDigitalSourceEnumeration: TrainedAlgorithmicMediaDigitalSource
)


def source_type_term(value: object) -> str:
    """The IPTC term a declared source type names, however it is written: any scheme or case, a
    trailing ``/`` or ``#``, the term after the last ``/``, ``#`` or ``:`` (IPTC URIs, ``Iptc4xmpExt``
    prefixes, fragment forms), and schema.org's names (``https://schema.org/TrainedAlgorithmicMediaDigitalSource``).
    Known terms come back in their canonical spelling; anything else as written after the separator."""
    text = str(value).strip().rstrip("/#").strip()
    last = text
    for separator in ("/", "#", ":"):
        last = last.rsplit(separator, 1)[-1]
    lower = last.lower()
    if lower in _CANONICAL_TERMS:
        return _CANONICAL_TERMS[lower]
    if lower.endswith(_SCHEMA_ORG_SUFFIX) and lower[: -len(_SCHEMA_ORG_SUFFIX)] in _CANONICAL_TERMS:
        return _CANONICAL_TERMS[lower[: -len(_SCHEMA_ORG_SUFFIX)]]
    return last or "?"


def is_known_source_type(term: str) -> bool:
    """A term of the IPTC/C2PA vocabulary (after ``source_type_term``)."""
    return term.lower() in _CANONICAL_TERMS


# Validation failures about who signed, not about whether the content still matches the claim: with
# no trust list configured every signer is untrusted, and that is recorded as the signer's trust.
TRUST_ONLY_FAILURES = frozenset({"signingCredential.untrusted", "timeStamp.untrusted"})
# The reader saw a manifest store it could not use: fail closed, as for a failed validation.
UNUSABLE_STATES = frozenset({"unreadable", "oversized"})

# Forensic signals and the reason code each becomes when its rule is turned on.
FORENSIC_REASONS: Mapping[str, ReasonCode] = {
    "editing_software": ReasonCode.EDITING_SOFTWARE,
    "created_after_upload": ReasonCode.TIMESTAMP_ANOMALY,
    "created_long_before_upload": ReasonCode.TIMESTAMP_ANOMALY,
    "modified_after_creation": ReasonCode.TIMESTAMP_ANOMALY,
    "device_mismatch": ReasonCode.DEVICE_MISMATCH,
}
# Markers of editors, transcoders and muxers that are not a camera app (lower case, substring match).
EDITING_MARKERS: Mapping[str, str] = {
    "lavf": "FFmpeg (libavformat)",
    "lavc": "FFmpeg (libavcodec)",
    "ffmpeg": "FFmpeg",
    "handbrake": "HandBrake",
    "premiere": "Adobe Premiere",
    "after effects": "Adobe After Effects",
    "adobe": "Adobe",
    "davinci": "DaVinci Resolve",
    "resolve": "DaVinci Resolve",
    "capcut": "CapCut",
    "imovie": "iMovie",
    "final cut": "Final Cut",
    "shotcut": "Shotcut",
    "openshot": "OpenShot",
    "kdenlive": "Kdenlive",
    "filmora": "Filmora",
    "inshot": "InShot",
    "vegas": "Vegas",
    "avidemux": "Avidemux",
    "mkvmerge": "mkvmerge",
    "gpac": "GPAC / MP4Box",
    "mp4box": "GPAC / MP4Box",
    "mediabunny": "Mediabunny",
}


@dataclass(frozen=True)
class DeviceProfile:
    """What a family of devices writes when its own camera app records (docs/provenance.md)."""

    name: str
    brands: frozenset[str]
    handlers: tuple[str, ...]  # handler name prefixes
    codecs: frozenset[str]


DEVICE_PROFILES: Mapping[str, DeviceProfile] = {
    "apple": DeviceProfile("Apple camera", frozenset({"qt"}), ("core media",), frozenset({"h264", "hevc"})),
    "android": DeviceProfile(
        "Android camera",
        frozenset({"mp42", "isom", "3gp4", "3gp5", "3gp6"}),
        ("videohandle", "video"),
        frozenset({"h264", "hevc", "av1", "vp8", "vp9"}),
    ),
}


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{name} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class ProvenancePolicy:
    """The provenance and forensics rules in force; recorded with every decision they bound."""

    reject_declared_synthetic: bool = True
    synthetic_source_types: frozenset[str] = DEFAULT_SYNTHETIC_SOURCE_TYPES
    review_invalid_manifest: bool = True
    enhanced_source_types: frozenset[str] = DEFAULT_ENHANCED_SOURCE_TYPES  # issue 24: at least REVIEW
    forensic_rules: frozenset[str] = frozenset()
    max_age_days: float = 30.0
    clock_skew_s: float = 300.0
    modified_after_s: float = 60.0

    def __post_init__(self) -> None:
        _flag("reject_declared_synthetic", self.reject_declared_synthetic)
        _flag("review_invalid_manifest", self.review_invalid_manifest)
        object.__setattr__(self, "synthetic_source_types", frozenset(self.synthetic_source_types))
        object.__setattr__(self, "enhanced_source_types", frozenset(self.enhanced_source_types))
        object.__setattr__(self, "forensic_rules", frozenset(self.forensic_rules))
        unknown = sorted(self.forensic_rules - FORENSIC_REASONS.keys())
        if unknown:
            raise PolicyError(f"unknown forensic rules {unknown}; known: {sorted(FORENSIC_REASONS)}")
        for name in ("max_age_days", "clock_skew_s", "modified_after_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise PolicyError(f"{name} must be a number >= 0, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "reject_declared_synthetic": self.reject_declared_synthetic,
            "synthetic_source_types": sorted(self.synthetic_source_types),
            "review_invalid_manifest": self.review_invalid_manifest,
            "enhanced_source_types": sorted(self.enhanced_source_types),
            "forensic_rules": sorted(self.forensic_rules),
            "max_age_days": self.max_age_days,
            "clock_skew_s": self.clock_skew_s,
            "modified_after_s": self.modified_after_s,
        }


@dataclass(frozen=True)
class Signal:
    """One forensic observation: its name (a key of FORENSIC_REASONS) and what was seen."""

    name: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "detail": self.detail}


@dataclass(frozen=True)
class ProvenanceAssessment:
    """The evidence as the policy read it, and the findings it bounds the decision with."""

    c2pa: Mapping[str, Any] | None
    container: Mapping[str, Any] | None
    synthetic_sources: tuple[str, ...] = ()
    capture_declared: bool = False
    manifest_problems: tuple[str, ...] = ()
    signals: tuple[Signal, ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Everything, for the decision record (which an erasure drops: it is not on its keep list)."""
        return {
            "c2pa": dict(self.c2pa) if self.c2pa is not None else None,
            "container": dict(self.container) if self.container is not None else None,
            "synthetic_sources": list(self.synthetic_sources),
            "capture_declared": self.capture_declared,
            "manifest_problems": list(self.manifest_problems),
            "signals": [s.to_dict() for s in self.signals],
            "findings": [{"reason": str(f.reason), "effect": str(f.effect)} for f in self.findings],
        }

    def audit_dict(self) -> dict[str, Any]:
        """What the kept audit trail (lineage.json, logs) records: enough to explain the decision,
        nothing that narrows down the applicant (no device model, no capture times, no signer's name;
        docs/provenance.md, docs/erasure.md)."""
        full = self.to_dict()
        return full | {
            **audit_view(self.c2pa, self.container),
            "signals": [{"name": s.name} for s in self.signals],
        }


def assess(
    c2pa: Mapping[str, Any] | None,
    container: Mapping[str, Any] | None,
    *,
    received_at: str | datetime | None,
    policy: ProvenancePolicy,
) -> ProvenanceAssessment:
    """Read the recorded evidence under ``policy``. ``None`` evidence (not read) is neutral."""
    synthetic, capture, problems = _read_c2pa(c2pa, policy)
    enhanced = _declared(c2pa, policy.enhanced_source_types)
    signals = forensic_signals(container, received_at=received_at, policy=policy)
    findings: list[Finding] = []
    if synthetic and policy.reject_declared_synthetic:
        findings.append(Finding(ReasonCode.DECLARED_SYNTHETIC, Effect.REJECT))
    if enhanced:  # generative retouching declared: never a PASS, whatever the model says
        findings.append(Finding(ReasonCode.DECLARED_AI_ENHANCED, Effect.NO_PASS))
    if problems and policy.review_invalid_manifest:
        findings.append(Finding(ReasonCode.PROVENANCE_INVALID, Effect.NO_PASS))
    for reason in dict.fromkeys(FORENSIC_REASONS[s.name] for s in signals if s.name in policy.forensic_rules):
        findings.append(Finding(reason, Effect.NO_PASS))
    return ProvenanceAssessment(
        c2pa=c2pa,
        container=container,
        synthetic_sources=synthetic,
        capture_declared=capture,
        manifest_problems=problems,
        signals=signals,
        findings=tuple(findings),
    )


def _read_c2pa(
    c2pa: Mapping[str, Any] | None, policy: ProvenancePolicy
) -> tuple[tuple[str, ...], bool, tuple[str, ...]]:
    if not c2pa:
        return (), False, ()
    state = c2pa.get("state")
    synthetic = _declared(c2pa, policy.synthetic_source_types)
    capture = bool(_declared(c2pa, CAPTURE_SOURCE_TYPES))
    problems: list[str] = []
    if c2pa.get("source_types_complete") is False:  # the reader's work bound cut the walk short
        problems.append("declared source types not fully read (the manifest exceeds the reader's work bound)")
    if state in UNUSABLE_STATES:
        problems.append(f"{state}: {c2pa.get('detail') or 'the manifest store could not be used'}")
    elif state == "present":
        failures = [f for f in c2pa.get("failures") or [] if f not in TRUST_ONLY_FAILURES]
        failures += [f for f in c2pa.get("ingredient_failures") or [] if f not in TRUST_ONLY_FAILURES]
        problems += [f"validation failure: {f}" for f in dict.fromkeys(failures)]
        if c2pa.get("validation_state") == "Invalid" and not problems:
            problems.append("validation state Invalid")
    return synthetic, capture, tuple(problems)


def _declared(c2pa: Mapping[str, Any] | None, terms: Iterable[str]) -> tuple[str, ...]:
    """The declared source types (every one the reader recorded, normalised) that are in ``terms``."""
    if not c2pa:
        return ()
    wanted = {source_type_term(t).lower() for t in terms}
    declared = [
        source_type_term(s.get("uri") or s.get("type"))
        for s in c2pa.get("source_types") or []
        if isinstance(s, Mapping)
    ]
    return tuple(dict.fromkeys(t for t in declared if t.lower() in wanted))


def forensic_signals(
    container: Mapping[str, Any] | None, *, received_at: str | datetime | None, policy: ProvenancePolicy
) -> tuple[Signal, ...]:
    """Every forensic observation the container facts support; the policy decides which count."""
    if not container:
        return ()
    signals: list[Signal] = []
    editors = editing_software(container)
    if editors:
        signals.append(Signal("editing_software", ", ".join(editors)))
    signals += _time_signals(container, received_at, policy)
    mismatch = device_mismatch(container)
    if mismatch:
        signals.append(Signal("device_mismatch", mismatch))
    return tuple(signals)


def editing_software(container: Mapping[str, Any]) -> list[str]:
    text = " ".join(
        str(container.get(k) or "") for k in ("encoder", "video_encoder", "handler", "software")
    ).lower()
    return list(dict.fromkeys(name for marker, name in EDITING_MARKERS.items() if marker in text))


def claimed_device(container: Mapping[str, Any]) -> str | None:
    """Which device family the tags claim: Apple's QuickTime keys, or Android's version tag."""
    make = str(container.get("make") or "").lower()
    if make == "apple" or (container.get("model") or "").lower().startswith("iphone"):
        return "apple"
    if container.get("android_version"):
        return "android"
    return None


def device_mismatch(container: Mapping[str, Any]) -> str | None:
    """The claimed device family's camera would not have written this brand, handler or codec."""
    family = claimed_device(container)
    if family is None:
        return None
    profile = DEVICE_PROFILES[family]
    problems = []
    brand = str(container.get("major_brand") or "").strip().lower()
    if brand and brand not in profile.brands:
        problems.append(f"brand {brand!r}")
    handler = str(container.get("handler") or "").strip().lower()
    if handler and not handler.startswith(profile.handlers):
        problems.append(f"handler {container.get('handler')!r}")
    codec = str(container.get("codec") or "").lower()
    if codec and codec not in profile.codecs:
        problems.append(f"codec {codec!r}")
    if not problems:
        return None
    device = container.get("model") or container.get("make") or family
    return f"claims {profile.name} ({device}) but " + ", ".join(problems)


def _time_signals(
    container: Mapping[str, Any], received_at: str | datetime | None, policy: ProvenancePolicy
) -> list[Signal]:
    signals: list[Signal] = []
    created = _time(container.get("movie_created")) or _time(container.get("creation_time"))
    modified = _time(container.get("movie_modified"))
    upload = received_at if isinstance(received_at, datetime) else _time(received_at)
    skew = timedelta(seconds=policy.clock_skew_s)
    if created and upload and created > upload + skew:
        detail = f"created {created.isoformat()}, uploaded {upload.isoformat()}"
        signals.append(Signal("created_after_upload", detail))
    if created and upload and upload - created > timedelta(days=policy.max_age_days):
        age = (upload - created).total_seconds() / 86400
        signals.append(Signal("created_long_before_upload", f"created {age:.1f} days before the upload"))
    if created and modified and (modified - created).total_seconds() > policy.modified_after_s:
        gap = (modified - created).total_seconds()
        signals.append(Signal("modified_after_creation", f"modified {gap:.0f} s after it was created"))
    return signals


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None


def reason_codes(signals: Iterable[Signal]) -> list[str]:
    return list(dict.fromkeys(str(FORENSIC_REASONS[s.name]) for s in signals))


def evidence_counts(
    labels: Iterable[str], records: Iterable[Mapping[str, Any] | None]
) -> dict[str, dict[str, int]]:
    """Per label class, how many decisions showed each piece of provenance evidence (for
    ``kycscreen evaluate``): ``c2pa:<state>``, ``source:<type>``, ``signal:<name>``, ``finding:<reason>``.
    Read them before turning a forensic rule on: a signal as common among genuine videos as among
    attacks only sends honest applicants to review."""
    counts: dict[str, dict[str, int]] = {}
    for label, record in zip(labels, records, strict=True):
        bucket = counts.setdefault(label, {})
        keys: list[str] = []
        if record:
            c2pa = record.get("c2pa") or {}
            keys.append(f"c2pa:{c2pa.get('state') or 'not read'}")
            keys += [f"source:{s.get('type')}" for s in _entries(c2pa.get("source_types"))]
            keys += [f"signal:{s.get('name')}" for s in _entries(record.get("signals"))]
            keys += [f"finding:{f.get('reason')}" for f in _entries(record.get("findings"))]
        else:
            keys.append("c2pa:not read")
        for key in dict.fromkeys(keys):
            bucket[key] = bucket.get(key, 0) + 1
    return {label: dict(sorted(found.items())) for label, found in counts.items()}


def _entries(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def sheet_lines(evidence: Mapping[str, Any] | None) -> list[str]:
    """What a reviewer's contact sheet says about provenance, in two short lines (or none when
    nothing was read): the C2PA state, signer trust and declared sources; the forensic signals."""
    if not evidence:
        return []
    c2pa = evidence.get("c2pa") or {}
    state = c2pa.get("state") or "not read"
    parts = [f"c2pa {state}"]
    if state == "present":
        parts.append(f"{c2pa.get('validation_state') or '?'}, signer {c2pa.get('trust') or 'unknown'}")
        sources = [str(s.get("type")) for s in _entries(c2pa.get("source_types"))]
        if sources:
            parts.append("declares " + ",".join(dict.fromkeys(sources)))
    findings = [str(f.get("reason")) for f in _entries(evidence.get("findings"))]
    if findings:
        parts.append("findings " + ",".join(findings))
    signals = [str(s.get("name")) for s in _entries(evidence.get("signals"))]
    return [", ".join(parts), "forensics " + (",".join(signals) if signals else "none")]


# Kept in the audit trail (lineage.json, log records), which outlives an erasure: what explains a
# decision, not what narrows down who recorded the video or when.
AUDIT_C2PA_DROPPED = frozenset({"remote_url"})
AUDIT_SIGNER_FIELDS = ("issuer", "alg")
AUDIT_CONTAINER_FIELDS = (
    "format", "major_brand", "compatible_brands", "encoder", "video_encoder", "handler", "codec", "make",
)  # fmt: skip


def audit_view(c2pa: Mapping[str, Any] | None, container: Mapping[str, Any] | None) -> dict[str, Any]:
    """The C2PA summary without the signer's name and serial, and the container's brand, tags and
    maker without model, software version or times."""
    kept_c2pa = None
    if c2pa is not None:
        kept_c2pa = {k: v for k, v in c2pa.items() if k not in AUDIT_C2PA_DROPPED}
        signer = c2pa.get("signer")
        if isinstance(signer, Mapping):
            kept_c2pa["signer"] = {k: signer.get(k) for k in AUDIT_SIGNER_FIELDS}
    kept_container = None
    if container is not None:
        kept_container = {k: container.get(k) for k in AUDIT_CONTAINER_FIELDS}
    return {"c2pa": kept_c2pa, "container": kept_container}
