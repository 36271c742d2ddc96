"""Erasure reaches the learning data (GDPR Art. 17, issue 21): what of a subject goes from LearningBucket.

The learning loop copies personal data out of the screening stores (docs/learning-loop.md):

- ``labels/``: the reviewed-verdict CSVs (one row per video: SHA-256, label, applicant pseudonym);
- ``runs/<execution>/dataset/dataset.json``: the dataset manifest (one row per video: media key,
  SHA-256, label, attack type, applicant pseudonym, split);
- ``runs/<execution>/crops/crops.npz``: the train split's face crops (pixels of the face) with the
  SHA-256 of each crop's video;
- ``models/``, ``reports/``, ``champion/``, ``code/``: trained weights, aggregate rates, code. No row
  names a person; a model's weights cannot be un-trained (docs/compliance.md says what to do instead).

What goes, decided here (pure; the S3 side is ``kyc.aws.learning_eraser``):

- a labels CSV row of the subject: dropped (the CSV is an input; the manifest is the audit record);
- a face crop of the subject: dropped (the pixels are the person);
- a manifest row of the subject: replaced by a **tombstone** that keeps its label, attack type and
  split and ``line_sha256``, the SHA-256 of the row's labelled-set line (``"<video sha256> <label>\\n"``).
  The manifest's ``labelled_set_sha256`` (what the Model Registry package names) stays, so an auditor
  who must rebuild what a model was trained on still can: the surviving rows give their lines, and a
  tombstone's line is rebuilt from the pseudonymised decision record (it keeps ``source.sha256`` under
  Art. 17(3)(b)) and checked against ``line_sha256``. Nothing in the bucket names the subject: no
  media key, no pseudonym, no video hash; only a one-way hash that the AML record alone can match.
  Rewriting the manifest without the row would leave a set hash nobody can ever verify again.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from kyc.domain.dataset import DATASET_FORMAT

TOMBSTONE_FORMAT = "kycscreen-dataset-tombstone-v1"
# LearningBucket prefixes that hold a subject's rows or pixels (the erase role reads and rewrites these)
PERSONAL_PREFIXES: tuple[str, ...] = ("labels/", "runs/")


class LearningObject(StrEnum):
    """What a LearningBucket object is, by its key (the pipeline's and the docs' layout)."""

    MANIFEST = "manifest"  # dataset.json
    LABELS = "labels"  # *.csv under labels/ (and a run's copy of its labels)
    CROPS = "crops"  # *.npz face crops
    OTHER = "other"  # anything else under a personal prefix: deleted whole if it names the subject


def kind_of(key: str) -> LearningObject:
    name = key.rsplit("/", 1)[-1].lower()
    if name == "dataset.json":
        return LearningObject.MANIFEST
    if name.endswith(".csv"):
        return LearningObject.LABELS
    if name.endswith(".npz"):
        return LearningObject.CROPS
    return LearningObject.OTHER


class Subject(Protocol):
    """Whom an erasure removes, as the rewriters ask it: a ``LearningSubject`` (values known) or the
    subjects whose erasure was recorded, known by one-way tokens only
    (``kyc.domain.learning_index.ErasedSubjects``, the catch-up after a pipeline run)."""

    def __bool__(self) -> bool: ...

    def owns(
        self, sha256: str | None, media_key: str | None = None, applicant: str | None = None
    ) -> bool: ...

    def names(self, body: bytes) -> bool: ...


@dataclass(frozen=True)
class LearningSubject:
    """Whom to erase: the videos' SHA-256, their intake keys and (when the whole person is erased, by
    client reference) the applicant pseudonym the dataset groups them by."""

    sha256s: frozenset[str]
    media_keys: frozenset[str] = frozenset()
    applicants: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        sha256s: Iterable[str | None],
        keys: Iterable[str | None] = (),
        applicants: Iterable[str | None] = (),
    ) -> LearningSubject:
        return cls(
            frozenset(s.lower() for s in sha256s if s),
            frozenset(k for k in keys if k),
            frozenset(a for a in applicants if a),
        )

    def __bool__(self) -> bool:
        return bool(self.sha256s or self.media_keys or self.applicants)

    def needles(self) -> list[str]:
        """The strings that must not be left anywhere in the bucket's personal prefixes."""
        return sorted(self.sha256s | self.media_keys | self.applicants)

    def names(self, body: bytes) -> bool:
        """Does ``body`` still name the subject anywhere (an object no code can read row by row)?"""
        return any(n.encode() in body for n in self.needles())

    def owns(self, sha256: str | None, media_key: str | None = None, applicant: str | None = None) -> bool:
        """Is this row the subject's: its video hash, its media key (a job's local path ends with the
        intake key), or, when the person is erased, their pseudonym (or the video's own group)."""
        if sha256 and sha256.lower() in self.sha256s:
            return True
        if media_key and any(media_key == k or media_key.endswith("/" + k) for k in self.media_keys):
            return True
        return bool(applicant) and applicant in self.applicants


def line_sha256(sha256: str, label: str) -> str:
    """SHA-256 of the row's line in the labelled-set hash (kyc.domain.calibration.labelled_set_sha256)."""
    return hashlib.sha256(f"{sha256} {label}\n".encode()).hexdigest()


def tombstone(row: Mapping[str, Any]) -> dict[str, Any]:
    """What stays of an erased row: enough to recount and re-verify, nothing that names the person."""
    return {
        "erased": True,
        "format": TOMBSTONE_FORMAT,
        "line_sha256": line_sha256(str(row["sha256"]), str(row["label"])),
        "label": row["label"],
        "attack_type": row.get("attack_type"),
        "split": row.get("split"),
    }


def is_tombstone(row: Mapping[str, Any]) -> bool:
    return bool(row.get("erased"))


def erase_from_manifest(
    manifest: Mapping[str, Any], subject: Subject, *, erased_at: str
) -> tuple[dict[str, Any], int]:
    """The manifest with the subject's rows tombstoned (row order and every other field kept), and how
    many rows were; (the manifest unchanged, 0) when none is theirs."""
    if manifest.get("format") != DATASET_FORMAT:
        raise ValueError(f"not a dataset manifest (format {manifest.get('format')!r})")
    rows, erased = [], 0
    for row in manifest.get("rows") or []:
        if not is_tombstone(row) and subject.owns(
            row.get("sha256"), row.get("media_key"), row.get("applicant")
        ):
            rows.append(tombstone(row))
            erased += 1
        else:
            rows.append(dict(row))
    excluded = dict(manifest.get("excluded") or {})
    missing = [s for s in excluded.get("missing_media_sha256") or [] if not subject.owns(s)]
    if not erased and missing == (excluded.get("missing_media_sha256") or []):
        return dict(manifest), 0
    if "missing_media_sha256" in excluded:  # the count stays; the subject's hash leaves the list
        excluded["missing_media_sha256"] = missing
    out = dict(manifest) | {"rows": rows, "excluded": excluded}
    out["erasures"] = [*(manifest.get("erasures") or []), {"erased_at": erased_at, "rows_tombstoned": erased}]
    return out, erased


def erase_from_labels_csv(text: str, subject: Subject) -> tuple[str, int]:
    """The CSV without the subject's rows (header and other rows as they were) and how many went."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        return text, 0
    columns = {c.strip().lower(): c for c in reader.fieldnames if c}
    sha_col = next((columns[c] for c in ("sha256", "file_sha256", "input_sha256") if c in columns), None)
    key_col, applicant_col = columns.get("file") or columns.get("media_key"), columns.get("applicant")
    kept, dropped = [], 0
    for row in reader:
        if subject.owns(
            (row.get(sha_col) or "").strip() if sha_col else None,
            (row.get(key_col) or "").strip() if key_col else None,
            (row.get(applicant_col) or "").strip() if applicant_col else None,
        ):
            dropped += 1
        else:
            kept.append(row)
    if not dropped:
        return text, 0
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=reader.fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(kept)
    return out.getvalue(), dropped


def crops_to_keep(crop_sha256s: Sequence[str], subject: Subject) -> list[bool]:
    """Per face crop: keep it (True) unless its video is the subject's."""
    return [not subject.owns(str(sha)) for sha in crop_sha256s]


def verify_tombstoned_set(manifest: Mapping[str, Any], erased_lines: Mapping[str, str]) -> bool:
    """An auditor's check: the manifest's labelled-set hash from the surviving rows plus each tombstone's
    line rebuilt from the AML record (``erased_lines``: line_sha256 -> "<video sha256> <label>")."""
    lines = []
    for row in manifest["rows"]:
        if is_tombstone(row):
            text = erased_lines.get(row["line_sha256"])
            if text is None or hashlib.sha256(f"{text}\n".encode()).hexdigest() != row["line_sha256"]:
                return False
            lines.append(f"{text}\n")
        else:
            lines.append(f"{row['sha256']} {row['label']}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest() == manifest["labelled_set_sha256"]


def learning_subject(item: Mapping[str, Any], *, whole_person: bool, mac: Any = None) -> LearningSubject:
    """The subject of one submission's erasure, from its decision record (before pseudonymisation):
    the video's SHA-256 and intake key; with ``whole_person`` (an erasure by client reference) also the
    applicant pseudonym the dataset groups the person's videos by (the keyed pseudonym of the client
    reference, ``client_reference_pseudonym``: docs/learning-loop.md asks the labels to use it)."""
    from kyc.domain.identity import pseudonymise_key

    source = item.get("source") or {}
    applicants = []
    if whole_person and item.get("client_reference") and mac is not None:
        applicants.append(pseudonymise_key(str(item["client_reference"]), mac))
    return LearningSubject.of([source.get("sha256")], [source.get("key")], applicants)
