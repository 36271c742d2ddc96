"""Which model a policy's thresholds were measured for, and how (docs/decision-policy.md).

Thresholds mean nothing apart from the model whose scores they cut: a PASS threshold measured for
one model version can wave through everything another version says. So a policy names the model it
was calibrated for, and what the calibration rests on: the labelled set (by hash), the date, the
error rates the pipeline reached on it, each with its counts and 95 % Wilson interval, and where
the thresholds came from. Validated strictly: a malformed calibration is a ``PolicyError``, since a
calibration nobody can check is no calibration. Pure Python.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kyc.domain.aggregate import PolicyError
from kyc.domain.evaluation import EvaluationError, Label, parse_label, wilson_interval

__all__ = [
    "NOT_A_DETECTOR_MARK",
    "Calibration",
    "CalibrationModel",
    "Decides",
    "MeasuredRate",
    "labelled_set_sha256",
]

# A model whose name carries this mark (the training-free reference model) is no detector: no
# calibration may name it, so its scores never PASS or REJECT anyone.
NOT_A_DETECTOR_MARK = "NOT-A-PRODUCTION-DETECTOR"
LABELLED_SET_HASH = "sha256-sorted-file-sha256-label-v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")  # an image manifest digest (issue 24)
_RATE_TOLERANCE = 1e-6


def labelled_set_sha256(items: Iterable[tuple[str, str]]) -> str:
    """SHA-256 of a labelled set, independent of file names and row order.

    Each video contributes the line ``"<file SHA-256, lower-case hex> <label>\\n"`` with the label
    ``genuine`` or ``attack``; the lines are sorted (byte order) and concatenated, and the UTF-8
    bytes hashed. A video listed twice counts twice. Anyone with the files and the labels can
    recompute it: ``sha256sum`` each file, write the lines, ``LC_ALL=C sort``, ``sha256sum``.
    """
    lines = []
    for file_sha256, label in items:
        if not isinstance(file_sha256, str) or not _HEX64.match(file_sha256):
            raise EvaluationError(f"file hash must be 64 lower-case hex digits, got {file_sha256!r}")
        lines.append(f"{file_sha256} {parse_label(label).value}\n")
    if not lines:
        raise EvaluationError("a labelled set needs at least one video")
    return hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()


def _text(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _integer(where: str, value: object, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        raise PolicyError(f"{where} must be an integer >= {lowest}, got {value!r}")
    return value


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _object(where: str, value: object, keys: set[str], optional: set[str] = frozenset()) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be an object, got {value!r}")
    missing, unknown = keys - set(value), set(value) - keys - optional
    if missing or unknown:
        raise PolicyError(
            f"{where}: missing {sorted(missing) or 'nothing'}, "
            f"unknown {sorted(map(str, unknown)) or 'nothing'}"
        )
    return value


@dataclass(frozen=True)
class CalibrationModel:
    """The model a calibration binds the thresholds to, as the endpoint reports it.

    ``artefact_sha256``: the SHA-256 of the artefact that scored the labelled set (the model server
    reports it, or the deployment records it). Optional in the document so that older calibrations
    still parse, but a calibration without it binds nothing (``kyc.domain.binding``).
    ``image_digest``: the serving image's manifest digest (``sha256:<hex>``, issue 24). Optional: a
    calibration without it binds the model data and not the container that loads it (the audit record
    says so); with it, the deployment witness must resolve the endpoint's image to exactly this digest.
    """

    name: str
    version: str
    contract_version: str
    artefact_sha256: str | None = None
    image_digest: str | None = None

    @classmethod
    def from_mapping(cls, data: object) -> CalibrationModel:
        raw = _object(
            "calibration.model",
            data,
            {"name", "version", "contract_version"},
            optional={"artefact_sha256", "image_digest"},
        )
        image = raw.get("image_digest")
        if image is not None and (not isinstance(image, str) or not _IMAGE_DIGEST.match(image)):
            raise PolicyError(
                f"calibration.model.image_digest must be sha256:<64 lower-case hex>, got {image!r}"
            )
        artefact = raw.get("artefact_sha256")
        if artefact is not None and (not isinstance(artefact, str) or not _HEX64.match(artefact)):
            raise PolicyError(
                f"calibration.model.artefact_sha256 must be 64 lower-case hex, got {artefact!r}"
            )
        model = cls(
            _text("calibration.model.name", raw["name"]),
            _text("calibration.model.version", raw["version"]),
            _text("calibration.model.contract_version", raw["contract_version"]),
            artefact,
            image,
        )
        if NOT_A_DETECTOR_MARK.lower() in model.name.lower():
            raise PolicyError(
                f"calibration.model.name {model.name!r} is marked {NOT_A_DETECTOR_MARK}: "
                "it is not a detector and cannot be calibrated"
            )
        return model

    def to_dict(self) -> dict[str, str]:
        base = {"name": self.name, "version": self.version, "contract_version": self.contract_version}
        return (
            base
            | ({"artefact_sha256": self.artefact_sha256} if self.artefact_sha256 else {})
            | ({"image_digest": self.image_digest} if self.image_digest else {})
        )


@dataclass(frozen=True)
class MeasuredRate:
    """errors / total on the labelled set, with its 95 % Wilson interval (checked, not trusted)."""

    errors: int
    total: int
    value: float
    ci95: tuple[float, float]

    @classmethod
    def of(cls, errors: int, total: int) -> MeasuredRate:
        if total < 1 or not 0 <= errors <= total:
            raise PolicyError(f"a measured rate needs 0 <= errors <= total and total >= 1 ({errors}/{total})")
        return cls(errors, total, errors / total, wilson_interval(errors, total))

    @classmethod
    def from_mapping(cls, where: str, data: object) -> MeasuredRate:
        raw = _object(where, data, {"errors", "total", "value", "ci95"})
        errors = _integer(f"{where}.errors", raw["errors"], 0)
        total = _integer(f"{where}.total", raw["total"], 1)
        if errors > total:
            raise PolicyError(f"{where}: errors ({errors}) exceed total ({total})")
        expected = cls.of(errors, total)
        value = _number(f"{where}.value", raw["value"])
        ci95 = raw["ci95"]
        if not isinstance(ci95, list | tuple) or len(ci95) != 2:
            raise PolicyError(f"{where}.ci95 must be [low, high], got {ci95!r}")
        low, high = (_number(f"{where}.ci95", v) for v in ci95)
        if abs(value - expected.value) > _RATE_TOLERANCE or any(
            abs(a - b) > _RATE_TOLERANCE for a, b in zip((low, high), expected.ci95, strict=True)
        ):
            raise PolicyError(
                f"{where}: value {value} and ci95 [{low}, {high}] are not {errors}/{total} and its "
                f"95 % Wilson interval [{expected.ci95[0]:.6f}, {expected.ci95[1]:.6f}]"
            )
        return expected

    def to_dict(self) -> dict[str, Any]:
        return {"errors": self.errors, "total": self.total, "value": self.value, "ci95": list(self.ci95)}


_KEYS = {"model", "labelled_set", "calibrated_at", "thresholds", "measured"}
_OPTIONAL_KEYS = {"decides"}
DECIDES_HASH = "sha256-canonical-json-v1"


def decides_sha256(fields: Mapping[str, Any]) -> str:
    """SHA-256 of the deciding fields as canonical JSON (sorted keys, no spaces, UTF-8): anyone can
    recompute it with ``json.dumps(fields, sort_keys=True, separators=(",", ":"))``."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Decides:
    """Every policy field that can change a decision, and the sampling settings, as measured.

    ``fields`` is ``kyc.domain.binding.deciding_fields`` of the calibrated run; ``sha256`` its hash,
    checked on reading (a hand-edited field with the old hash is refused, not trusted).
    """

    fields: Mapping[str, Any]
    sha256: str

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> Decides:
        return cls(dict(fields), decides_sha256(fields))

    @classmethod
    def from_mapping(cls, data: object) -> Decides:
        raw = _object("calibration.decides", data, {"fields", "sha256", "hash_method"})
        if raw["hash_method"] != DECIDES_HASH:
            raise PolicyError(f"calibration.decides.hash_method must be {DECIDES_HASH!r}")
        if not isinstance(raw["fields"], Mapping):
            raise PolicyError("calibration.decides.fields must be an object")
        fields = dict(raw["fields"])
        if raw["sha256"] != decides_sha256(fields):
            raise PolicyError("calibration.decides.sha256 is not the hash of calibration.decides.fields")
        return cls(fields, raw["sha256"])

    def to_dict(self) -> dict[str, Any]:
        return {"fields": dict(self.fields), "sha256": self.sha256, "hash_method": DECIDES_HASH}


_SET_KEYS = {"sha256", "hash_method", "videos", "genuine", "attack"}
_THRESHOLD_KEYS = {"pass_threshold", "reject_threshold", "aggregator", "origin"}
_MEASURED_KEYS = {"apcer", "bpcer", "review_rate"}


@dataclass(frozen=True)
class Calibration:
    """Provenance of a policy's thresholds, bound to one model version.

    ``measured`` holds what the pipeline decided on the labelled set with these thresholds bound to
    the model: APCER = attacks PASSed / attacks, BPCER = genuine videos REJECTed / genuine videos,
    review rate = videos sent to REVIEW / videos (INVALID and ERROR count in the denominators).
    """

    model: CalibrationModel
    labelled_set_sha256: str
    videos: int
    genuine: int
    attack: int
    calibrated_at: str
    pass_threshold: float
    reject_threshold: float
    aggregator: str
    origin: str
    apcer: MeasuredRate
    bpcer: MeasuredRate
    review_rate: MeasuredRate
    # every deciding policy field and the sampling settings (None: an older calibration, binds nothing)
    decides: Decides | None = None

    @classmethod
    def from_mapping(cls, data: object) -> Calibration:
        raw = _object("calibration", data, _KEYS, optional=_OPTIONAL_KEYS)
        labelled = _object("calibration.labelled_set", raw["labelled_set"], _SET_KEYS)
        digest = _text("calibration.labelled_set.sha256", labelled["sha256"])
        if not _HEX64.match(digest):
            raise PolicyError(f"calibration.labelled_set.sha256 must be 64 lower-case hex, got {digest!r}")
        if labelled["hash_method"] != LABELLED_SET_HASH:
            raise PolicyError(
                f"calibration.labelled_set.hash_method must be {LABELLED_SET_HASH!r}, "
                f"got {labelled['hash_method']!r}"
            )
        videos = _integer("calibration.labelled_set.videos", labelled["videos"], 2)
        genuine = _integer("calibration.labelled_set.genuine", labelled["genuine"], 1)
        attack = _integer("calibration.labelled_set.attack", labelled["attack"], 1)
        if genuine + attack != videos:
            raise PolicyError(f"calibration.labelled_set: {genuine} genuine + {attack} attack != {videos}")
        when = _text("calibration.calibrated_at", raw["calibrated_at"])
        try:
            stamp = datetime.fromisoformat(when)
        except ValueError as exc:
            raise PolicyError(f"calibration.calibrated_at must be an ISO 8601 time, got {when!r}") from exc
        if stamp.tzinfo is None:
            raise PolicyError(f"calibration.calibrated_at must carry its time zone, got {when!r}")
        thresholds = _object("calibration.thresholds", raw["thresholds"], _THRESHOLD_KEYS)
        measured = _object("calibration.measured", raw["measured"], _MEASURED_KEYS)
        rates = {k: MeasuredRate.from_mapping(f"calibration.measured.{k}", measured[k]) for k in measured}
        for name, total in (("apcer", attack), ("bpcer", genuine), ("review_rate", videos)):
            if rates[name].total != total:
                raise PolicyError(
                    f"calibration.measured.{name}.total ({rates[name].total}) must be {total}, "
                    "the labelled set's count"
                )
        pass_t = _number("calibration.thresholds.pass_threshold", thresholds["pass_threshold"])
        reject_t = _number("calibration.thresholds.reject_threshold", thresholds["reject_threshold"])
        return cls(
            model=CalibrationModel.from_mapping(raw["model"]),
            labelled_set_sha256=digest,
            videos=videos,
            genuine=genuine,
            attack=attack,
            calibrated_at=when,
            pass_threshold=pass_t,
            reject_threshold=reject_t,
            aggregator=_text("calibration.thresholds.aggregator", thresholds["aggregator"]),
            origin=_text("calibration.thresholds.origin", thresholds["origin"]),
            apcer=rates["apcer"],
            bpcer=rates["bpcer"],
            review_rate=rates["review_rate"],
            decides=Decides.from_mapping(raw["decides"]) if raw.get("decides") is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "labelled_set": {
                "sha256": self.labelled_set_sha256,
                "hash_method": LABELLED_SET_HASH,
                "videos": self.videos,
                "genuine": self.genuine,
                "attack": self.attack,
            },
            "calibrated_at": self.calibrated_at,
            "thresholds": {
                "pass_threshold": self.pass_threshold,
                "reject_threshold": self.reject_threshold,
                "aggregator": self.aggregator,
                "origin": self.origin,
            },
            "measured": {
                "apcer": self.apcer.to_dict(),
                "bpcer": self.bpcer.to_dict(),
                "review_rate": self.review_rate.to_dict(),
            },
        } | ({"decides": self.decides.to_dict()} if self.decides else {})

    def binds(self, name: str, version: str, contract_version: str) -> bool:
        """True when these thresholds were measured for exactly this model, version and contract."""
        return (name, version, contract_version) == (
            self.model.name,
            self.model.version,
            self.model.contract_version,
        )


def calibration_from_decisions(
    *,
    model: Mapping[str, str],
    contract_version: str,
    labelled: Iterable[tuple[str, str]],
    decisions: Iterable[str | None],
    pass_threshold: float,
    reject_threshold: float,
    aggregator: str,
    origin: str,
    calibrated_at: datetime,
    artefact_sha256: str | None = None,
    decides: Mapping[str, Any] | None = None,
    image_digest: str | None = None,
) -> Calibration:
    """The calibration a labelled run supports: ``labelled`` is (file SHA-256, label) per video and
    ``decisions`` what the pipeline decided for each, in the same order, with the thresholds bound."""
    pairs = list(labelled)
    outcomes = list(decisions)
    if len(pairs) != len(outcomes):
        raise EvaluationError(f"{len(pairs)} labelled videos but {len(outcomes)} decisions")
    labels = [parse_label(label) for _, label in pairs]
    genuine = [d for d, lab in zip(outcomes, labels, strict=True) if lab is Label.GENUINE]
    attack = [d for d, lab in zip(outcomes, labels, strict=True) if lab is Label.ATTACK]
    if not genuine or not attack:
        raise EvaluationError("a calibration needs genuine and attack videos")
    document = {
        "model": {"name": model["name"], "version": model["version"], "contract_version": contract_version}
        | ({"artefact_sha256": artefact_sha256} if artefact_sha256 else {})
        | ({"image_digest": image_digest} if image_digest else {}),
        "labelled_set": {
            "sha256": labelled_set_sha256(pairs),
            "hash_method": LABELLED_SET_HASH,
            "videos": len(pairs),
            "genuine": len(genuine),
            "attack": len(attack),
        },
        "calibrated_at": calibrated_at.isoformat(timespec="seconds"),
        "thresholds": {
            "pass_threshold": pass_threshold,
            "reject_threshold": reject_threshold,
            "aggregator": aggregator,
            "origin": origin,
        },
        "measured": {
            "apcer": MeasuredRate.of(attack.count("PASS"), len(attack)).to_dict(),
            "bpcer": MeasuredRate.of(genuine.count("REJECT"), len(genuine)).to_dict(),
            "review_rate": MeasuredRate.of(outcomes.count("REVIEW"), len(outcomes)).to_dict(),
        },
    }
    if decides is not None:
        document["decides"] = Decides.of(decides).to_dict()
    return Calibration.from_mapping(document)
