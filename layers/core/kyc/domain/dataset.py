"""Labelled datasets built from a team's own reviewed cases (docs/learning-loop.md).

A dataset is a manifest: one row per video (media key, SHA-256, label, attack type, applicant
pseudonym, split), the labelled-set hash a calibration already names, and the counts per split,
class and attack type. Two properties make it usable for training and measurement:

- **Grouped splits.** Every video of one applicant lands in the same split, so a model is never
  tested on a person it was trained on (the leak that makes face models look better than they are).
- **Stable splits.** A video's split depends only on its applicant's pseudonym and the split rule,
  never on the other rows: when the set grows, no video moves from train to test, and a test
  score of the previous version stays comparable.

Erased submissions leave the next version (GDPR Art. 17): the builder takes the erased hashes and
pseudonyms and drops their rows, and says how many. Pure Python: the AWS side lives elsewhere.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kyc.domain.calibration import LABELLED_SET_HASH, labelled_set_sha256
from kyc.domain.evaluation import EvaluationError
from kyc.domain.review import AttackType

__all__ = [
    "ATTACK_TYPES",
    "DATASET_FORMAT",
    "SPLITS",
    "DatasetError",
    "LabelledVideo",
    "SplitRule",
    "build_manifest",
    "manifest_sha256",
    "parse_labels_csv",
    "rows_of",
]

DATASET_FORMAT = "kycscreen-dataset-v1"
SPLITS = ("train", "validation", "test")
# The review workbench's fixed list (kyc.domain.review.AttackType, issue 20), plus "unknown" for a
# customer's CSV that names no type. One list: the export and the dataset never disagree.
ATTACK_TYPES = (*(t.value for t in AttackType), "unknown")
_ATTACK_ALIASES = {
    "face swap": "face_swap",
    "faceswap": "face_swap",
    "fully synthetic": "fully_synthetic",
    "synthetic": "fully_synthetic",
    "replay": "replay_screen",
    "replay/screen": "replay_screen",
    "screen": "replay_screen",
    "injected stream": "injected_stream",
    "injection": "injected_stream",
    "": "unknown",
}
_LABELS = {"genuine": "genuine", "bona_fide": "genuine", "bonafide": "genuine", "real": "genuine"}
_LABELS |= {"attack": "attack", "fake": "attack", "spoof": "attack"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SHA_COLUMNS = ("sha256", "file_sha256", "input_sha256")


class DatasetError(ValueError):
    """The labels cannot make a dataset (a malformed row, conflicting labels, an empty split)."""


@dataclass(frozen=True)
class LabelledVideo:
    """One reviewed video: its bytes' hash, what people said it is, and whose it is."""

    sha256: str
    label: str  # genuine | attack
    attack_type: str | None  # one of ATTACK_TYPES for attacks, None for genuine
    applicant: str | None = None  # pseudonym; None: the video is its own group
    reviewers: int | None = None
    reviewed_at: str | None = None

    @property
    def group(self) -> str:
        return self.applicant or f"video:{self.sha256}"


@dataclass(frozen=True)
class SplitRule:
    """Fractions of applicants per split, and a salt naming the rule (changing it re-splits all)."""

    train: float = 0.70
    validation: float = 0.15
    test: float = 0.15
    salt: str = "kyc-split-v1"

    def __post_init__(self) -> None:
        parts = (self.train, self.validation, self.test)
        if any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-9:
            raise DatasetError(f"split fractions must be >= 0 and sum to 1, got {parts}")

    def split_of(self, group: str) -> str:
        """The split of an applicant: a SHA-256 of the salt and pseudonym read as a number in [0, 1)."""
        digest = hashlib.sha256(f"{self.salt}\0{group}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u < self.train:
            return "train"
        if u < self.train + self.validation:
            return "validation"
        return "test"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "sha256(salt NUL applicant) as [0,1), cumulative fractions",
            "salt": self.salt,
            "fractions": {"train": self.train, "validation": self.validation, "test": self.test},
        }


def _label(value: str, where: str) -> str:
    label = _LABELS.get(value.strip().lower())
    if label is None:
        raise DatasetError(f"{where}: label must be genuine or attack, got {value!r}")
    return label


def _attack_type(value: str | None, where: str) -> str:
    raw = (value or "").strip().lower()
    kind = _ATTACK_ALIASES.get(raw, raw.replace(" ", "_").replace("-", "_"))
    if kind not in ATTACK_TYPES:
        raise DatasetError(f"{where}: attack type {value!r} is not one of {', '.join(ATTACK_TYPES)}")
    return kind


def parse_labels_csv(text: str, *, source: str = "labels") -> list[LabelledVideo]:
    """Rows of a verdict export or a customer's ``sha256,label,attack_type`` CSV.

    Recognised columns: ``sha256`` (or ``file_sha256``/``input_sha256``), ``label``, ``attack_type``,
    and optionally ``applicant`` (a pseudonym), ``reviewer_count``, ``reviewed_at`` (or ``date``).
    Unknown columns are ignored; a row without a valid hash or label is an error naming its line.
    """
    reader = csv.DictReader(io.StringIO(text))
    columns = {c.strip().lower() for c in reader.fieldnames or [] if c}
    sha_column = next((c for c in _SHA_COLUMNS if c in columns), None)
    if sha_column is None or "label" not in columns:
        raise DatasetError(f"{source}: needs columns sha256,label[,attack_type,applicant]")
    videos = []
    for number, raw in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        where = f"{source}:{number}"
        sha = row[sha_column].lower()
        if not _HEX64.match(sha):
            raise DatasetError(f"{where}: {sha_column} must be 64 hex digits, got {row[sha_column]!r}")
        label = _label(row["label"], where)
        attack_type = _attack_type(row.get("attack_type"), where) if label == "attack" else None
        reviewers = row.get("reviewer_count") or None
        if reviewers is not None and not reviewers.isdigit():
            raise DatasetError(f"{where}: reviewer_count must be a whole number, got {reviewers!r}")
        videos.append(
            LabelledVideo(
                sha256=sha,
                label=label,
                attack_type=attack_type,
                applicant=row.get("applicant") or None,
                reviewers=int(reviewers) if reviewers is not None else None,
                reviewed_at=row.get("reviewed_at") or row.get("date") or None,
            )
        )
    if not videos:
        raise DatasetError(f"{source}: no rows")
    return videos


@dataclass
class _Exclusions:
    erased: int = 0
    missing_media: int = 0
    duplicates: int = 0
    missing: list[str] = field(default_factory=list)


def _deduplicated(videos: Iterable[LabelledVideo], exclusions: _Exclusions) -> list[LabelledVideo]:
    """One row per hash; two verdicts that disagree on the label (or applicant) are an error."""
    by_hash: dict[str, LabelledVideo] = {}
    for video in videos:
        seen = by_hash.get(video.sha256)
        if seen is None:
            by_hash[video.sha256] = video
            continue
        if (seen.label, seen.applicant) != (video.label, video.applicant):
            raise DatasetError(
                f"video {video.sha256[:16]}… is labelled twice and differently "
                f"({seen.label}/{seen.applicant or '-'} vs {video.label}/{video.applicant or '-'}): "
                "settle the verdict in the workbench first"
            )
        exclusions.duplicates += 1
    return list(by_hash.values())


def build_manifest(
    videos: Iterable[LabelledVideo],
    media: Mapping[str, str],
    *,
    erased: Iterable[str] = (),
    rule: SplitRule | None = None,
    created: str,
    source: str,
) -> dict[str, Any]:
    """The dataset manifest of ``videos`` whose bytes are in ``media`` (SHA-256 -> media key).

    ``erased`` holds SHA-256 hashes or applicant pseudonyms of erased submissions: their rows leave.
    Videos whose media is no longer retained are counted and listed, never silently dropped.
    """
    rule = rule or SplitRule()
    gone = set(erased)
    exclusions = _Exclusions()
    rows = []
    for video in sorted(_deduplicated(videos, exclusions), key=lambda v: v.sha256):
        if video.sha256 in gone or (video.applicant is not None and video.applicant in gone):
            exclusions.erased += 1
            continue
        key = media.get(video.sha256)
        if key is None:
            exclusions.missing_media += 1
            exclusions.missing.append(video.sha256)
            continue
        rows.append(
            {
                "sha256": video.sha256,
                "media_key": key,
                "label": video.label,
                "attack_type": video.attack_type,
                "applicant": video.group,
                "split": rule.split_of(video.group),
                "reviewers": video.reviewers,
                "reviewed_at": video.reviewed_at,
            }
        )
    if not rows:
        raise DatasetError("no labelled video has retained media: nothing to build a dataset from")
    try:
        set_hash = labelled_set_sha256((r["sha256"], r["label"]) for r in rows)
    except EvaluationError as exc:  # pragma: no cover - rows are validated above
        raise DatasetError(str(exc)) from exc
    manifest = {
        "format": DATASET_FORMAT,
        "version": f"ds-{created[:10].replace('-', '')}-{set_hash[:12]}",
        "created": created,
        "source": source,
        "labelled_set_sha256": set_hash,
        "labelled_set_hash": LABELLED_SET_HASH,
        "split_rule": rule.to_dict(),
        "counts": counts(rows),
        "excluded": {
            "erased": exclusions.erased,
            "missing_media": exclusions.missing_media,
            "duplicate_rows": exclusions.duplicates,
            "missing_media_sha256": exclusions.missing,
        },
        "rows": rows,
    }
    check_grouping(rows)
    return manifest


def counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Videos per split and label, and attacks per split and type."""
    per: dict[str, Any] = {s: {"genuine": 0, "attack": 0, "attack_types": Counter()} for s in SPLITS}
    for row in rows:
        bucket = per[row["split"]]
        bucket[row["label"]] += 1
        if row["label"] == "attack":
            bucket["attack_types"][row["attack_type"]] += 1
    return {s: v | {"attack_types": dict(sorted(v["attack_types"].items()))} for s, v in per.items()}


def check_grouping(rows: Iterable[Mapping[str, Any]]) -> None:
    """No applicant in two splits: a leak between train and test is an error, not a warning."""
    seen: dict[str, str] = {}
    for row in rows:
        split = seen.setdefault(row["applicant"], row["split"])
        if split != row["split"]:
            raise DatasetError(f"applicant {row['applicant']} is in both {split} and {row['split']}")


def manifest_sha256(manifest: Mapping[str, Any]) -> str:
    """SHA-256 of the manifest's canonical JSON (sorted keys, no spaces): what a registry names."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def rows_of(manifest: Mapping[str, Any], split: str) -> list[Mapping[str, Any]]:
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    return [r for r in manifest["rows"] if r["split"] == split]
