"""The crops archive is rewritten row by row without the subject's crops (issue 21). Oracle: numpy's own
boolean indexing of the arrays the archive was made from, and numpy's np.load of the result."""

from __future__ import annotations

import io

import numpy as np
import pytest

from kyc.aws.learning_eraser import rewrite_crops
from kyc.domain.erasure import PersonalDataLeftError
from kyc.domain.learning_erasure import LearningSubject

A, B, C = "aa" * 32, "bb" * 32, "cc" * 32


def _archive(**arrays: np.ndarray) -> io.BytesIO:
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    out.seek(0)
    return out


def test_the_subjects_crops_leave_and_every_other_crop_stays_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    shas = np.array([A, B, A, C, B], dtype=str)
    tensors = rng.random((5, 3, 32, 32), dtype=np.float32)
    labels = np.array([1, 0, 1, 0, 0], dtype=np.int64)
    rewritten, counts = rewrite_crops(
        _archive(sha256=shas, tensors=tensors, labels=labels, version=np.array("ds-1")),
        LearningSubject.of([A]),
    )
    assert counts == {"crops": 2} and rewritten is not None
    rewritten.seek(0)
    with np.load(rewritten) as out:
        keep = shas != A
        assert list(out["sha256"]) == [B, C, B]
        assert np.array_equal(out["tensors"], tensors[keep]) and out["tensors"].dtype == np.float32
        assert np.array_equal(out["labels"], labels[keep])
        assert str(out["version"]) == "ds-1"


def test_an_archive_without_the_subject_is_left_alone() -> None:
    archive = _archive(sha256=np.array([B], dtype=str), tensors=np.zeros((1, 3, 32, 32), np.float32))
    assert rewrite_crops(archive, LearningSubject.of([A])) == (None, None)


def test_an_archive_whose_rows_do_not_match_its_crops_is_refused_not_half_rewritten() -> None:
    archive = _archive(sha256=np.array([A, B], dtype=str), tensors=np.zeros((3, 3, 32, 32), np.float32))
    with pytest.raises(PersonalDataLeftError):
        rewrite_crops(archive, LearningSubject.of([A]))


def test_every_crop_of_the_subject_may_go() -> None:
    archive = _archive(sha256=np.array([A, A], dtype=str), tensors=np.ones((2, 3, 32, 32), np.float32))
    rewritten, counts = rewrite_crops(archive, LearningSubject.of([A]))
    assert counts == {"crops": 2} and rewritten is not None
    rewritten.seek(0)
    with np.load(rewritten) as out:
        assert out["sha256"].shape == (0,) and out["tensors"].shape == (0, 3, 32, 32)


def test_indexing_a_crops_archive_reads_its_hashes_by_ranges_not_its_pixels() -> None:
    """The index reads only the ``sha256`` member (ranged GETs on the object version): the bytes fetched
    are counted against the archive's size, and the tokens against hashes computed here by hand."""
    import hashlib

    import boto3
    from moto import mock_aws

    from kyc.aws.learning_eraser import LearningBucketEraser

    rng = np.random.default_rng(3)
    shas = np.array([A, B] * 2000 + [C], dtype=str)
    body = _archive(sha256=shas, tensors=rng.random((len(shas), 3, 32, 32), dtype=np.float32)).getvalue()
    fetched: list[int] = []
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket="unit-learning", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        s3.put_bucket_versioning(Bucket="unit-learning", VersioningConfiguration={"Status": "Enabled"})
        version = s3.put_object(Bucket="unit-learning", Key="runs/r/crops/crops.npz", Body=body)["VersionId"]
        s3.meta.events.register(
            "after-call.s3.GetObject", lambda parsed, **_: fetched.append(int(parsed["ContentLength"]))
        )
        indexed = LearningBucketEraser("unit-learning", "k", s3)._index_crops(
            "runs/r/crops/crops.npz", version
        )
    assert indexed.indexable
    expected = {
        hashlib.sha256(f"kycscreen-learning-index/1\0sha256\0{s}".encode()).hexdigest() for s in (A, B, C)
    }
    assert indexed.tokens == expected
    assert 0 < sum(fetched) < len(body) / 20, (sum(fetched), len(body))  # the pixels stayed in S3


def test_an_erasures_own_catch_up_erases_subjects_erased_earlier_then_the_subject_from_what_is_left() -> None:
    """Issue 21 autoindex. X is erased while nothing of X is in the bucket; then a run writes rows and
    crops of X and Y. Erasing Y first catches up (X's rows go: the record of X's erasure), lists the
    rewritten objects again, then erases Y from what is left. Oracle: every version in the bucket, read
    here, holds neither hash (crops in numpy's UTF-32 spelling too); Z's row and crop stay."""
    import json

    import boto3
    from moto import mock_aws

    from kyc.aws.learning_eraser import LearningBucketEraser
    from kyc.aws.learning_index import DynamoDBLearningIndex
    from kyc.domain.dataset import build_manifest, parse_labels_csv

    with mock_aws():
        s3, ddb = (
            boto3.client("s3", region_name="eu-west-1"),
            boto3.client("dynamodb", region_name="eu-west-1"),
        )
        key_id = boto3.client("kms", region_name="eu-west-1").create_key()["KeyMetadata"]["Arn"]
        s3.create_bucket(Bucket="learn", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket="learn", VersioningConfiguration={"Status": "Enabled"})
        ddb.create_table(
            TableName="idx",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        eraser = LearningBucketEraser("learn", key_id, s3, index=DynamoDBLearningIndex("idx", 90, ddb))
        first = eraser.erase(LearningSubject.of([A]), erased_at="2026-12-07T05:00:00Z")
        assert first.versions_deleted == 0  # nothing of X yet
        labels = f"sha256,label\n{A},attack\n{B},attack\n{C},genuine\n"
        manifest = build_manifest(
            parse_labels_csv(labels),
            {A: "/m/a.mp4", B: "/m/b.mp4", C: "/m/c.mp4"},
            created="2026-12-07",
            source="x.csv",
        )
        kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
        s3.put_object(Bucket="learn", Key="runs/r9/dataset/dataset.json", Body=json.dumps(manifest), **kms)
        crops = _archive(sha256=np.array([A, B, C], dtype=str), tensors=np.zeros((3, 3, 32, 32), np.float32))
        s3.put_object(Bucket="learn", Key="runs/r9/crops/crops.npz", Body=crops.getvalue(), **kms)

        done = eraser.erase(LearningSubject.of([B]), erased_at="2026-12-07T06:00:00Z").to_dict()
        late = done["index"]["late_erasure"]
        assert (late["rows_tombstoned"], late["crops_deleted"]) == (1, 1)
        assert (done["rows_tombstoned"], done["crops_deleted"]) == (1, 1)
        assert "touched" not in done["index"]
        bodies = []
        for v in s3.list_object_versions(Bucket="learn")["Versions"]:
            body = s3.get_object(Bucket="learn", Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            if v["Key"].endswith(".npz"):
                with np.load(io.BytesIO(body)) as out:
                    body += "".join(str(s) for s in out["sha256"]).encode()
            bodies.append(body)
        for sha in (A, B):
            assert not any(sha.encode() in b or sha.encode("utf-32-le") in b for b in bodies), sha
        assert any(C.encode() in b for b in bodies)
