"""Which learning objects may hold a subject (issue 21): the index that makes erasure cost independent of
the size of LearningBucket.

Without it, every erasure lists and reads every version under ``labels/`` and ``runs/``
(``kyc.aws.learning_eraser``): 2,000 videos x 8 crops x 3 runs took 32 s, so erasure (a GDPR right)
would stop working at about 7,500 videos. With it, the eraser reads only the **units** the subject's
tokens point at: a run folder (``runs/<execution>/``: its manifest and crops name the same videos) or a
single object elsewhere (a labels CSV). A subject that is in no unit costs one read per token.

Tokens are one-way: ``SHA-256("kycscreen-learning-index/1" 0 kind 0 value)`` of

- ``sha256``: the video's SHA-256 (every manifest row, crop and labels row carries it);
- ``applicant``: the applicant pseudonym (an erasure by client reference names it);
- ``name``: the last segment of a media key (the manifest keeps the job's local path, which ends with
  the intake key; the erasure knows the intake key). Several keys may share a name: the index is a
  filter that may over-select, ``LearningSubject.owns`` still decides each row.

So the index holds no raw identifier, but a token is confirmable by whoever holds the value (the
video, a pseudonym, a key): it is personal data, kept under the stack key with the data's retention and
erased with the subject (docs/erasure.md). Pure: the DynamoDB side is ``kyc.aws.learning_index``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kyc.domain.dataset import DATASET_FORMAT
from kyc.domain.learning_erasure import PERSONAL_PREFIXES, LearningObject, LearningSubject, kind_of

_DOMAIN = "kycscreen-learning-index/1"
_SHA_COLUMNS = ("sha256", "file_sha256", "input_sha256")  # as erase_from_labels_csv reads them
_KEY_COLUMNS = ("file", "media_key")


def token(kind: str, value: str) -> str:
    return hashlib.sha256(f"{_DOMAIN}\0{kind}\0{value}".encode()).hexdigest()


def name_of(media_key: str) -> str:
    return media_key.rstrip("/").rsplit("/", 1)[-1]


def row_tokens(
    sha256: str | None = None, media_key: str | None = None, applicant: str | None = None
) -> set[str]:
    """The tokens of one row: every value by which ``LearningSubject.owns`` could claim it."""
    out = set()
    if sha256:
        out.add(token("sha256", sha256.strip().lower()))
    if media_key and name_of(media_key.strip()):
        out.add(token("name", name_of(media_key.strip())))
    if applicant:
        out.add(token("applicant", applicant.strip()))
    return out


def subject_tokens(subject: LearningSubject) -> set[str]:
    """The tokens to look up for a subject (a superset filter of what ``owns`` matches)."""
    out: set[str] = set()
    for sha in subject.sha256s:
        out |= row_tokens(sha256=sha)
    for key in subject.media_keys:
        out |= row_tokens(media_key=key)
    for applicant in subject.applicants:
        out |= row_tokens(applicant=applicant)
    return out


def erased_tokens(subject: LearningSubject) -> set[str]:
    """What is kept of an erased subject (the erasure record, one-way tokens only): the lookup tokens
    (a filter for new units) and a ``key`` token of each intake key, which decides a row by its media key
    exactly as ``LearningSubject.owns`` does (a ``name`` token alone could claim another person's row)."""
    return subject_tokens(subject) | {token("key", k) for k in subject.media_keys}


_HEX_RUN = re.compile(rb"[0-9a-fA-F]{64,}")


@dataclass(frozen=True)
class ErasedSubjects:
    """Every subject whose erasure was recorded, known by ``erased_tokens`` only: a row is theirs when
    ``LearningSubject.owns`` would have claimed it for one of them (its video hash, its media key or a
    ``/``-suffix of it, its applicant pseudonym). What a pipeline run started before an erasure writes
    after it is erased by this (issue 21: the catch-up after each run), through the same rewriters."""

    tokens: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def owns(self, sha256: str | None, media_key: str | None = None, applicant: str | None = None) -> bool:
        if sha256 and token("sha256", sha256.strip().lower()) in self.tokens:
            return True
        if media_key:
            parts = media_key.strip().split("/")
            suffixes = {"/".join(parts[i:]) for i in range(len(parts))} - {""}
            if any(token("key", s) in self.tokens for s in suffixes):
                return True
        return bool(applicant) and token("applicant", str(applicant).strip()) in self.tokens

    def names(self, body: bytes) -> bool:
        """Any video hash of theirs in ``body`` (every 64-hex window; keys and pseudonyms cannot be
        found in unparsed bytes by their tokens: docs/erasure.md says what that leaves)."""
        for run in _HEX_RUN.finditer(body):
            text = run.group().decode().lower()
            if any(token("sha256", text[i : i + 64]) in self.tokens for i in range(len(text) - 63)):
                return True
        return False


def unit_of(key: str) -> str:
    """What one index entry points at: the run folder for ``runs/<execution>/...`` (its objects name the
    same videos, so one entry per run instead of one per object), else the object key itself."""
    parts = key.split("/")
    if key.startswith("runs/") and len(parts) > 2 and parts[1]:
        return f"runs/{parts[1]}/"
    return key


def is_personal(key: str) -> bool:
    return key.startswith(PERSONAL_PREFIXES)


@dataclass(frozen=True)
class Indexed:
    """What one object version yields: its tokens, or ``indexable=False`` when its content cannot be
    read row by row (erasure then reads that object on every call: the bounded sweep)."""

    tokens: frozenset[str]
    indexable: bool = True


NOT_INDEXABLE = Indexed(frozenset(), indexable=False)


def index_manifest(body: bytes) -> Indexed:
    try:
        manifest = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return NOT_INDEXABLE
    if not isinstance(manifest, Mapping) or manifest.get("format") != DATASET_FORMAT:
        return NOT_INDEXABLE
    tokens: set[str] = set()
    for row in manifest.get("rows") or []:
        if not isinstance(row, Mapping):
            return NOT_INDEXABLE
        if not row.get("erased"):
            if not _text(row.get("sha256")):
                return NOT_INDEXABLE  # every filed row carries its hash (see index_labels_csv)
            tokens |= row_tokens(
                _text(row.get("sha256")), _text(row.get("media_key")), _text(row.get("applicant"))
            )
    for sha in (manifest.get("excluded") or {}).get("missing_media_sha256") or []:
        tokens |= row_tokens(sha256=_text(sha))
    return Indexed(frozenset(tokens))


def index_labels_csv(body: bytes) -> Indexed:
    """A labels CSV's rows, read with the columns erase_from_labels_csv reads. Every row must carry a
    video hash, or the CSV is not indexable: the subject's erasure forgets its ``name`` and ``applicant``
    tokens, which another subject's row may share, and that row must stay findable by its own hash."""
    try:
        reader = csv.DictReader(io.StringIO(body.decode("utf-8")))
        columns = {c.strip().lower(): c for c in reader.fieldnames or [] if c}
        sha_col = next((columns[c] for c in _SHA_COLUMNS if c in columns), None)
        key_col = next((columns[c] for c in _KEY_COLUMNS if c in columns), None)
        applicant_col = columns.get("applicant")
        if not sha_col:
            return NOT_INDEXABLE
        tokens: set[str] = set()
        for row in reader:
            if not (row.get(sha_col) or "").strip():
                return NOT_INDEXABLE
            tokens |= row_tokens(
                row.get(sha_col) if sha_col else None,
                row.get(key_col) if key_col else None,
                row.get(applicant_col) if applicant_col else None,
            )
    except (UnicodeDecodeError, csv.Error, ValueError):
        return NOT_INDEXABLE
    return Indexed(frozenset(tokens))


def index_crops(sha256s: Iterable[str]) -> Indexed:
    return Indexed(frozenset(t for s in sha256s for t in row_tokens(sha256=str(s))))


def index_body(key: str, body: bytes) -> Indexed:
    """A manifest's or a labels CSV's tokens (crops archives are read member-wise by the AWS side)."""
    kind = kind_of(key)
    if kind is LearningObject.MANIFEST:
        return index_manifest(body)
    if kind is LearningObject.LABELS:
        return index_labels_csv(body)
    return NOT_INDEXABLE


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
