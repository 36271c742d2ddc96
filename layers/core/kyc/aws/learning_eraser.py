"""Erasure in LearningBucket: the subject's rows and face crops leave every version of every object the
learning loop wrote under ``labels/`` and ``runs/`` (``kyc.domain.learning_erasure`` decides what goes).

For each object with a version that holds the subject: the latest version is rewritten without them (a
new version under the stack key), then every version that held them is deleted by version id, as
``S3VersionEraser`` does for the intake bucket, so no noncurrent copy keeps the bytes. An object of a
kind this code cannot rewrite (anything but a manifest, a labels CSV or a crops archive) that names the
subject is deleted whole. Safe to repeat: a second sweep finds nothing of the subject and writes nothing.

With a learning index (``kyc.aws.learning_index``, the stack's ``LearningIndexTable``) the eraser reads
only what may hold the subject: it lists the versions under the personal prefixes (keys and ids only,
one request per 1,000 versions), indexes the versions the catalogue has not seen (whoever wrote them:
SageMaker's Process job, a person's ``aws s3 cp``, any other path; a crops archive by ranged reads of its
``sha256`` member only), then reads the units the subject's tokens point at plus the objects that could
not be indexed, and finally deletes the subject's index entries. Without an index: the full sweep.

Each erasure is also recorded in the index (one-way tokens, ``erased_tokens``) before its sweep, and every
catch-up (after each pipeline run: the stack's ``RetrainCatchUpRule``, or at the start of an erasure)
erases any subject on record from the versions it indexes, through the same ``_erase_key``: what a run
that started before an erasure writes after it does not outlive the erasure.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from kyc.aws.clients import client
from kyc.aws.learning_index import DynamoDBLearningIndex, version_ref
from kyc.domain.erasure import PersonalDataLeftError
from kyc.domain.learning_erasure import (
    PERSONAL_PREFIXES,
    LearningObject,
    LearningSubject,
    Subject,
    crops_to_keep,
    erase_from_labels_csv,
    erase_from_manifest,
    kind_of,
)
from kyc.domain.learning_index import (
    NOT_INDEXABLE,
    ErasedSubjects,
    Indexed,
    erased_tokens,
    index_body,
    index_crops,
    subject_tokens,
    unit_of,
)


@dataclass
class LearningErasure:
    """What one sweep changed (counts and keys; no row content)."""

    rows_tombstoned: int = 0
    label_rows_deleted: int = 0
    crops_deleted: int = 0
    objects_rewritten: list[str] = field(default_factory=list)
    objects_deleted: list[str] = field(default_factory=list)
    versions_deleted: int = 0
    # the index's side (None without an index): versions indexed now, units and objects read
    index: dict[str, Any] | None = None

    def counts(self) -> dict[str, Any]:
        return {
            "rows_tombstoned": self.rows_tombstoned,
            "label_rows_deleted": self.label_rows_deleted,
            "crops_deleted": self.crops_deleted,
            "objects_rewritten": sorted(self.objects_rewritten),
            "objects_deleted": sorted(self.objects_deleted),
            "versions_deleted": self.versions_deleted,
        }

    def to_dict(self) -> dict[str, Any]:
        return self.counts() | ({"index": dict(self.index)} if self.index is not None else {})


class LearningBucketEraser:
    def __init__(
        self,
        bucket: str,
        kms_key_id: str,
        s3_client: Any = None,
        index: DynamoDBLearningIndex | None = None,
    ) -> None:
        self.bucket, self.kms_key_id = bucket, kms_key_id
        self._s3 = s3_client or client("s3")
        self.index = index

    def erase(self, subject: LearningSubject, *, erased_at: str) -> LearningErasure:
        done = LearningErasure()
        if not self.bucket or not subject:
            return done
        if self.index is None:  # the full sweep: every version under labels/ and runs/
            for prefix in PERSONAL_PREFIXES:
                for key, versions in self._versions_by_key(prefix):
                    self._erase_key(key, versions, subject, erased_at, done)
            return done
        tokens, on_record = subject_tokens(subject), erased_tokens(subject)
        # on record before the listing: a run that writes after it is erased by the catch-up after the run
        self.index.remember_erased(on_record)
        listing = {k: v for prefix in PERSONAL_PREFIXES for k, v in self._versions_by_key(prefix)}
        swept = self.catch_up(listing, done, skip=frozenset(on_record))
        for key in (done.index or {}).get("touched", ()):  # rewritten by the catch-up: list them again
            listing.pop(key, None)
            listing.update((k, v) for k, v in self._versions_by_key(key) if k == key)
        units = self.index.units(tokens)
        keys = sorted(k for k in listing if unit_of(k) in units or k in swept)
        done.index = {k: v for k, v in (done.index or {}).items() if k != "touched"} | {
            "units_found": len(units),
            "objects_read": len(keys),
            "unindexable_objects": len(swept),
        }
        for key in keys:
            # a rewrite is a new version, left for the next catch-up to index: S3 restarts its lifecycle
            # clock, so the unit's entries must be re-filed with a retention that outlives it
            self._erase_key(key, listing[key], subject, erased_at, done)
        done.index["entries_forgotten"] = self.index.forget(tokens)
        return done

    def index_new_versions(self) -> dict[str, Any]:
        """Index what was written since the last erasure or catch-up, outside any erasure (after a
        pipeline run), so the next erasure does not pay for it."""
        if not self.bucket or self.index is None:
            return {"versions_indexed": 0, "entries_written": 0, "unindexable_objects": 0}
        done = LearningErasure()
        listing = {k: v for prefix in PERSONAL_PREFIXES for k, v in self._versions_by_key(prefix)}
        swept = self.catch_up(listing, done)
        answer = dict(done.index or {})
        answer.pop("touched", None)
        return answer | {"unindexable_objects": len(swept)}

    def catch_up(
        self,
        listing: dict[str, list[dict[str, Any]]],
        done: LearningErasure | None = None,
        *,
        skip: frozenset[str] = frozenset(),
    ) -> set[str]:
        """Index every listed version the catalogue has not seen, erasing from it first any subject whose
        erasure is on record (but ``skip``: the erasure under way does that itself); the keys that cannot
        be indexed (read on every erasure)."""
        if self.index is None:
            raise ValueError("catch_up needs a learning index")
        seen = self.index.catalogued()
        swept: set[str] = set()
        tokens_by_unit: dict[str, set[str]] = {}
        fresh: dict[tuple[str, bool], list[str]] = {}
        on_record: frozenset[str] | None = None  # read once, when there is something new
        late_keys: set[str] = set()
        for key, versions in listing.items():
            for version in versions:
                if version["marker"]:
                    continue
                ref = version_ref(key, version["VersionId"])
                if ref in seen:
                    swept.update([key] if seen[ref] else [])
                    continue
                found = self._index_version(key, version["VersionId"])
                if on_record is None:
                    on_record = self.index.erased() - skip
                if not found.indexable:
                    swept.add(key)
                if on_record and (found.tokens & on_record or not found.indexable):
                    late_keys.add(key)  # may hold someone erased (an unindexable object: read it to know)
                tokens_by_unit.setdefault(unit_of(key), set()).update(found.tokens - (on_record or set()))
                fresh.setdefault((key, not found.indexable), []).append(version["VersionId"])
        late = LearningErasure()
        if late_keys and on_record:  # before the catalogue: a crash in between finds them again
            erased_at = datetime.now(UTC).isoformat(timespec="milliseconds")
            for key in sorted(late_keys):
                self._erase_key(key, listing[key], ErasedSubjects(on_record), erased_at, late)
        entries = sum(self.index.record(unit, tokens) for unit, tokens in tokens_by_unit.items() if tokens)
        for (key, sweep), version_ids in fresh.items():  # last: a crash before this only re-indexes
            self.index.catalogue(key, version_ids, sweep=sweep)
        if done is not None:
            done.index = {
                "versions_indexed": sum(len(v) for v in fresh.values()),
                "entries_written": entries,
                # rows of subjects erased before this version was indexed (a run that outlived the erasure)
                "late_erasure": late.counts(),
                "touched": sorted(set(late.objects_rewritten) | set(late.objects_deleted)),
            }
        return swept

    def _index_version(self, key: str, version_id: str) -> Indexed:
        kind = kind_of(key)
        if kind is LearningObject.CROPS:
            return self._index_crops(key, version_id)
        if kind in (LearningObject.MANIFEST, LearningObject.LABELS):
            return index_body(key, self._get(key, version_id))
        return NOT_INDEXABLE  # read whole on every erasure instead (the bounded sweep)

    def _index_crops(self, key: str, version_id: str) -> Indexed:
        """The ``sha256`` member of a crops archive, by ranged reads (the face pixels are not fetched)."""
        from numpy.lib import format as npy

        raw = S3RangeReader(self._s3, self.bucket, key, version_id)
        try:
            with zipfile.ZipFile(io.BufferedReader(raw, buffer_size=1 << 20)) as archive:
                if "sha256.npy" not in archive.namelist():
                    return NOT_INDEXABLE
                with archive.open("sha256.npy") as member:
                    return index_crops(_stream_strings(member, npy))
        except (zipfile.BadZipFile, ValueError, OSError):
            return NOT_INDEXABLE

    # ------------------------------------------------------------------------------------------------
    def _erase_key(
        self, key: str, versions: list[dict[str, Any]], subject: Subject, erased_at: str, done: Any
    ) -> str | None:
        """Erase the subject from every version of ``key``; the version id of the rewrite, if any."""
        dirty = []
        latest_clean: bytes | IO[bytes] | None = None
        latest_dirty = False
        for version in versions:  # newest first, as S3 lists them
            if version["marker"]:
                continue
            cleaned: bytes | IO[bytes] | None
            if kind_of(key) is LearningObject.CROPS:  # streamed: a crops archive can outgrow the memory
                cleaned, counts = self._clean_crops_version(key, version["VersionId"], subject)
            else:
                cleaned, counts = _clean(key, self._get(key, version["VersionId"]), subject, erased_at)
            if counts is None and cleaned is None:
                continue  # nothing of the subject in this version
            dirty.append(version)
            if not version["IsLatest"] and hasattr(cleaned, "close"):
                cleaned.close()  # type: ignore[union-attr]
            if version["IsLatest"]:
                latest_dirty, latest_clean = True, cleaned
                if counts:
                    done.rows_tombstoned += counts.get("rows", 0)
                    done.label_rows_deleted += counts.get("labels", 0)
                    done.crops_deleted += counts.get("crops", 0)
        if not dirty:
            return None
        new_version = None
        if latest_dirty and latest_clean is not None:
            if isinstance(latest_clean, bytes) and subject.names(latest_clean):
                raise PersonalDataLeftError(f"s3://{self.bucket}/{key} would still name the erased subject")
            if not isinstance(latest_clean, bytes):
                latest_clean.seek(0)
            written = self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=latest_clean,
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self.kms_key_id,
            )
            done.objects_rewritten.append(key)
            new_version = written.get("VersionId")
            if not isinstance(latest_clean, bytes):
                latest_clean.close()
        elif latest_dirty:
            done.objects_deleted.append(key)
        response = self._s3.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key, "VersionId": v["VersionId"]} for v in dirty], "Quiet": True},
        )
        if response.get("Errors"):
            from kyc.aws.s3_eraser import ErasureIncompleteError

            raise ErasureIncompleteError(f"s3://{self.bucket}/{key}: {len(response['Errors'])} versions kept")
        done.versions_deleted += len(dirty)
        return new_version

    def _clean_crops_version(
        self, key: str, version_id: str, subject: Subject
    ) -> tuple[IO[bytes] | None, dict[str, int] | None]:
        """A crops archive, via a temporary file (Lambda's /tmp), rewritten member by member."""
        with tempfile.TemporaryFile() as source:
            self._s3.download_fileobj(self.bucket, key, source, ExtraArgs={"VersionId": version_id})
            source.seek(0)
            return rewrite_crops(source, subject)

    def _get(self, key: str, version_id: str) -> bytes:
        return bytes(self._s3.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)["Body"].read())

    def _versions_by_key(self, prefix: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        by_key: dict[str, list[dict[str, Any]]] = {}
        for page in self._s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for v in page.get("Versions", []):
                by_key.setdefault(v["Key"], []).append(
                    {"VersionId": v["VersionId"], "IsLatest": v.get("IsLatest"), "marker": False}
                )
            for m in page.get("DeleteMarkers", []):
                by_key.setdefault(m["Key"], []).append(
                    {"VersionId": m["VersionId"], "IsLatest": m.get("IsLatest"), "marker": True}
                )
        yield from sorted(by_key.items())


class S3RangeReader(io.RawIOBase):
    """One object version as a seekable file, read by HTTP ranges (zipfile reads the central directory
    at the end, then one member: the rest of the archive is never fetched)."""

    def __init__(self, s3: Any, bucket: str, key: str, version_id: str) -> None:
        super().__init__()
        self._s3, self._bucket, self._key, self._version = s3, bucket, key, version_id
        self._size = int(s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)["ContentLength"])
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence]
        self._at = max(0, base + offset)
        return self._at

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._at)
        if want <= 0:
            return 0
        body = self._s3.get_object(
            Bucket=self._bucket,
            Key=self._key,
            VersionId=self._version,
            Range=f"bytes={self._at}-{self._at + want - 1}",
        )["Body"].read()
        buffer[: len(body)] = body
        self._at += len(body)
        return len(body)


def _stream_strings(member: IO[bytes], npy: Any, block: int = 4096) -> set[str]:
    """The distinct values of a 1-D numpy string array, read ``block`` rows at a time."""
    import numpy as np

    version = npy.read_magic(member)
    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = read_header(member)
    if fortran or dtype.hasobject or len(shape) != 1 or dtype.kind not in "US":
        raise ValueError("sha256 member is not a 1-D string array")
    out: set[str] = set()
    left = shape[0]
    while left:
        rows = min(block, left)
        chunk = member.read(rows * dtype.itemsize)
        if len(chunk) != rows * dtype.itemsize:
            raise ValueError("sha256 member shorter than its header says")
        out.update(str(v) for v in np.unique(np.frombuffer(chunk, dtype=dtype)))
        left -= rows
    return out


def _clean(
    key: str, body: bytes, subject: Subject, erased_at: str
) -> tuple[bytes | None, dict[str, int] | None]:
    """(the version's bytes without the subject, counts) when it held them; (None, None) when not.
    (None, {}) for a version that names the subject and cannot be rewritten: it goes whole."""
    kind = kind_of(key)
    if kind is LearningObject.MANIFEST:
        try:
            manifest = json.loads(body)
            cleaned, rows = erase_from_manifest(manifest, subject, erased_at=erased_at)
        except ValueError:
            return _whole(body, subject)
        if rows or _names(manifest, subject):
            return json.dumps(cleaned, indent=1, sort_keys=True).encode(), {"rows": rows}
        return None, None
    if kind is LearningObject.LABELS:
        try:
            text, dropped = erase_from_labels_csv(body.decode("utf-8"), subject)
        except (UnicodeDecodeError, ValueError):
            return _whole(body, subject)
        return (text.encode(), {"labels": dropped}) if dropped else _whole(body, subject)
    return _whole(body, subject)


def _names(document: Any, subject: Subject) -> bool:
    return subject.names(json.dumps(document).encode())


def _whole(body: bytes, subject: Subject) -> tuple[None, dict[str, int] | None]:
    return (None, {}) if subject.names(body) else (None, None)


PER_CROP_MEMBERS = ("sha256.npy", "tensors.npy", "labels.npy")  # one entry per crop, in crop order


def rewrite_crops(source: IO[bytes], subject: Subject) -> tuple[IO[bytes] | None, dict[str, int] | None]:
    """The archive without the subject's crops, streamed row by row (memory: one crop, whatever the
    archive's size), as a temporary file; (None, None) when none is theirs. An archive this code cannot
    read that names the subject goes whole ((None, {}))."""
    import numpy as np
    from numpy.lib import format as npy

    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        source.seek(0)
        return _whole(source.read(), subject)
    with archive:
        if "sha256.npy" not in archive.namelist():
            return None, None
        with archive.open("sha256.npy") as member:
            shas = [str(s) for s in npy.read_array(member, allow_pickle=False)]
        keep = crops_to_keep(shas, subject)
        if all(keep):
            return None, None
        out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, which uploads and closes it
        # level 1: deflate is most of the sweep's time, and the archive is rewritten once (measured in
        # benchmarks/learning_erasure.py)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=1) as rewritten:
            for name in archive.namelist():
                with archive.open(name) as member, rewritten.open(name, "w", force_zip64=True) as target:
                    if name not in PER_CROP_MEMBERS:
                        shutil.copyfileobj(member, target)
                        continue
                    version = npy.read_magic(member)
                    read_header = (
                        npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                    )
                    shape, fortran, dtype = read_header(member)
                    if fortran or dtype.hasobject or not shape or shape[0] != len(keep):
                        raise PersonalDataLeftError(
                            f"{name}: not one C-ordered row per crop, cannot drop rows"
                        )
                    header = {"descr": npy.dtype_to_descr(dtype), "fortran_order": False}
                    npy.write_array_header_2_0(target, header | {"shape": (sum(keep), *shape[1:])})
                    row = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
                    pending = bytearray()
                    for kept in keep:
                        chunk = member.read(row)
                        if len(chunk) != row:
                            raise PersonalDataLeftError(f"{name}: shorter than its header says")
                        if kept:
                            pending += chunk
                        if len(pending) >= 1 << 20:
                            target.write(pending)
                            pending.clear()
                    target.write(pending)
        return out, {"crops": keep.count(False)}
