"""Erasure in LearningBucket: the subject's rows and face crops leave every version of every object the
learning loop wrote under ``labels/`` and ``runs/`` (``kyc.domain.learning_erasure`` decides what goes).

For each object with a version that holds the subject: the latest version is rewritten without them (a
new version under the stack key), then every version that held them is deleted by version id, as
``S3VersionEraser`` does for the intake bucket, so no noncurrent copy keeps the bytes. An object of a
kind this code cannot rewrite (anything but a manifest, a labels CSV or a crops archive) that names the
subject is deleted whole. Safe to repeat: a second sweep finds nothing of the subject and writes nothing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kyc.aws.clients import client
from kyc.domain.erasure import PersonalDataLeftError
from kyc.domain.learning_erasure import (
    PERSONAL_PREFIXES,
    LearningObject,
    LearningSubject,
    crops_to_keep,
    erase_from_labels_csv,
    erase_from_manifest,
    kind_of,
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_tombstoned": self.rows_tombstoned,
            "label_rows_deleted": self.label_rows_deleted,
            "crops_deleted": self.crops_deleted,
            "objects_rewritten": sorted(self.objects_rewritten),
            "objects_deleted": sorted(self.objects_deleted),
            "versions_deleted": self.versions_deleted,
        }


class LearningBucketEraser:
    def __init__(self, bucket: str, kms_key_id: str, s3_client: Any = None) -> None:
        self.bucket, self.kms_key_id = bucket, kms_key_id
        self._s3 = s3_client or client("s3")

    def erase(self, subject: LearningSubject, *, erased_at: str) -> LearningErasure:
        done = LearningErasure()
        if not self.bucket or not subject:
            return done
        for prefix in PERSONAL_PREFIXES:
            for key, versions in self._versions_by_key(prefix):
                self._erase_key(key, versions, subject, erased_at, done)
        return done

    # ------------------------------------------------------------------------------------------------
    def _erase_key(
        self, key: str, versions: list[dict[str, Any]], subject: LearningSubject, erased_at: str, done: Any
    ) -> None:
        dirty = []
        latest_clean: bytes | None = None
        latest_dirty = False
        for version in versions:  # newest first, as S3 lists them
            if version["marker"]:
                continue
            body = self._get(key, version["VersionId"])
            cleaned, counts = _clean(key, body, subject, erased_at)
            if counts is None and cleaned is None:
                continue  # nothing of the subject in this version
            dirty.append(version)
            if version["IsLatest"]:
                latest_dirty, latest_clean = True, cleaned
                if counts:
                    done.rows_tombstoned += counts.get("rows", 0)
                    done.label_rows_deleted += counts.get("labels", 0)
                    done.crops_deleted += counts.get("crops", 0)
        if not dirty:
            return
        if latest_dirty and latest_clean is not None:
            if any(_holds(latest_clean, n) for n in subject.needles()):
                raise PersonalDataLeftError(f"s3://{self.bucket}/{key} would still name the erased subject")
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=latest_clean,
                ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self.kms_key_id,
            )
            done.objects_rewritten.append(key)
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


def _holds(body: bytes, needle: str) -> bool:
    return needle.encode() in body


def _clean(
    key: str, body: bytes, subject: LearningSubject, erased_at: str
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
    if kind is LearningObject.CROPS:
        return _clean_crops(body, subject)
    return _whole(body, subject)


def _names(document: Any, subject: LearningSubject) -> bool:
    return any(n in json.dumps(document) for n in subject.needles())


def _whole(body: bytes, subject: LearningSubject) -> tuple[None, dict[str, int] | None]:
    return (None, {}) if any(_holds(body, n) for n in subject.needles()) else (None, None)


def _clean_crops(body: bytes, subject: LearningSubject) -> tuple[bytes | None, dict[str, int] | None]:
    import numpy as np

    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return _whole(body, subject)
    shas = [str(s) for s in arrays.get("sha256", [])]
    keep = crops_to_keep(shas, subject)
    if all(keep):
        return None, None
    mask = np.array(keep, dtype=bool)
    per_crop = {"sha256", "tensors", "labels"}
    out = {n: (a[mask] if n in per_crop and a.shape[:1] == mask.shape else a) for n, a in arrays.items()}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **out)
    return buffer.getvalue(), {"crops": int((~mask).sum())}
