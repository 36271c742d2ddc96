"""Erasure reaches the learning data (issue 21, GDPR Art. 17) on the local stack (moto server over HTTP).

Two applicants are screened; the learning loop's copies of both go into LearningBucket as the pipeline
lays them out (labels CSV, dataset manifest, written twice so a noncurrent version holds the rows too,
face crops, a model archive and an aggregate report); one applicant is erased by client reference.

Oracle, independent of the code under test: every object version left in LearningBucket is listed and
read (zip archives unpacked member by member) and searched for the erased applicant's video SHA-256
(hashed here from the file), intake key and pseudonym (an HMAC computed here with moto's key material);
the other applicant's rows, crops and hash must still be there, and the tombstone's line hash must be
the one computed here from the pseudonymised record's SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kyc.domain.dataset import build_manifest, parse_labels_csv
from kyclocal.commands.erase import invoke_erase
from kyclocal.stack import LocalStack, LocalStackSettings
from tests.fixtures.clips import make_clip
from tests.unit.functions.handler_loader import expected_pseudonym

pytestmark = pytest.mark.integration

PEOPLE = {"a": "ACME-CUST-1001", "b": "ACME-CUST-2002"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(LocalStackSettings(frame_count=4)) as running:
        yield running


def _learning_bucket(stack: LocalStack) -> str:
    return stack.physical_ids["LearningBucket"]


def _every_version(stack: LocalStack) -> list[tuple[str, str, bytes]]:
    s3, bucket = stack.client("s3"), _learning_bucket(stack)
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            out.append((v["Key"], v["VersionId"], body))
    return out


def _readable(body: bytes) -> bytes:
    """The bytes and, for a zip (npz) archive, every member's bytes: a compressed name still counts."""
    if body[:2] != b"PK":
        return body
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return body + b"".join(archive.read(name) for name in archive.namelist())


def _needles(values: list[str]) -> list[bytes]:
    # numpy stores str arrays as UTF-32: look for that spelling as well
    return [v.encode() for v in values] + [v.encode("utf-32-le") for v in values]


@pytest.fixture(scope="module")
def learning_data(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = Path(tmp_path_factory.mktemp("learning"))
    people: dict[str, dict] = {}
    for name, reference in PEOPLE.items():
        clip = make_clip(
            root / f"{name}.mp4", seconds=1.0, fps=10, colour=(40, 90, 200) if name == "a" else None
        )
        key = f"{stack.settings.upload_prefix}local/applicant-{name}-0001.mp4"
        ident = stack.upload(clip, key=key, metadata={"client-reference": reference})
        assert stack.wait_for_decision(ident["submission_id"], timeout_s=240) is not None
        people[name] = {
            "sid": ident["submission_id"],
            "sha256": hashlib.sha256(clip.read_bytes()).hexdigest(),
            "key": key,
            "pseudonym": expected_pseudonym(reference),
        }
    labels = "sha256,label,attack_type,applicant\n" + "".join(
        f"{p['sha256']},{label},{kind},{p['pseudonym']}\n"
        for (n, p), (label, kind) in zip(
            people.items(), (("attack", "face_swap"), ("genuine", "")), strict=True
        )
    )
    manifest = build_manifest(
        parse_labels_csv(labels),
        {p["sha256"]: f"/opt/ml/processing/input/media/{p['key']}" for p in people.values()},
        created="2026-12-06T00:00:00Z",
        source="labels/2026-12-06/reviewed.csv",
    )
    rng = np.random.default_rng(21)
    tensors = {n: rng.random((3, 3, 32, 32), dtype=np.float32) for n in people}
    crops = io.BytesIO()
    np.savez_compressed(
        crops,
        sha256=np.array([people[n]["sha256"] for n in people for _ in range(3)], dtype=str),
        tensors=np.concatenate([tensors[n] for n in people]),
        labels=np.array([1, 1, 1, 0, 0, 0], dtype=np.int64),
        version=np.array(manifest["version"]),
    )
    s3, bucket = stack.client("s3"), _learning_bucket(stack)
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": stack.kms_key_id}
    run = "runs/pipelines-erase1"
    objects = {
        "labels/2026-12-06/reviewed.csv": labels.encode(),
        f"{run}/dataset/dataset.json": json.dumps(manifest, indent=1).encode(),
        f"{run}/crops/crops.npz": crops.getvalue(),
        "models/pipelines-erase1/model.tar.gz": b"\x1f\x8b opaque weights",
        "reports/pipelines-erase1/evaluation/report.json": json.dumps({"rates": {"bpcer": 0.0}}).encode(),
    }
    # an earlier write of the manifest: its noncurrent version holds both applicants' rows as well
    s3.put_object(Bucket=bucket, Key=f"{run}/dataset/dataset.json", Body=json.dumps(manifest).encode(), **kms)
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, **kms)
    return {"people": people, "manifest": manifest, "tensors": tensors, "run": run}


def test_erasing_one_applicant_leaves_nothing_of_theirs_in_any_learning_version(
    stack: LocalStack, learning_data: dict
) -> None:
    a, b = learning_data["people"]["a"], learning_data["people"]["b"]
    before = _every_version(stack)
    assert any(n in _readable(body) for _, _, body in before for n in _needles([a["sha256"]]))  # it was there

    payload, errored = invoke_erase(stack, {"client_reference": PEOPLE["a"], "request_reference": "DSR-21"})
    assert not errored, payload
    answer = json.loads(payload)
    assert answer["outcomes"] == {"ERASED": 1}, answer

    after = _every_version(stack)
    for key, version, body in after:
        text = _readable(body)
        for needle in _needles([a["sha256"], a["key"], a["pseudonym"], PEOPLE["a"]]):
            assert needle not in text, (key, version, needle[:20])
    latest: dict[str, bytes] = {}  # S3 lists a key's versions newest first
    for key, _, body in after:
        latest.setdefault(key, body)
    run = learning_data["run"]
    manifest = json.loads(latest[f"{run}/dataset/dataset.json"])
    assert [r["sha256"] for r in manifest["rows"] if not r.get("erased")] == [b["sha256"]]
    assert manifest["rows"][0 if a["sha256"] < b["sha256"] else 1].get("erased") is True
    stone = next(r for r in manifest["rows"] if r.get("erased"))
    # the auditor's check: the erased line, rebuilt from the pseudonymised record's audit anchor
    record = stack.decision(a["sid"])
    assert record["source"]["sha256"] == a["sha256"] and "client_reference" not in record
    line = f"{record['source']['sha256']} attack\n"
    assert stone["line_sha256"] == hashlib.sha256(line.encode()).hexdigest()
    lines = sorted([line, f"{b['sha256']} genuine\n"])
    assert hashlib.sha256("".join(lines).encode()).hexdigest() == manifest["labelled_set_sha256"]
    assert manifest["labelled_set_sha256"] == learning_data["manifest"]["labelled_set_sha256"]
    assert b["pseudonym"] in json.dumps(manifest)
    # the labels CSV: only B's row
    assert [v.sha256 for v in parse_labels_csv(latest["labels/2026-12-06/reviewed.csv"].decode())] == [
        b["sha256"]
    ]
    # the crops: exactly B's three, bit for bit
    with np.load(io.BytesIO(latest[f"{run}/crops/crops.npz"])) as crops:
        assert list(crops["sha256"]) == [b["sha256"]] * 3
        assert np.array_equal(crops["tensors"], learning_data["tensors"]["b"])
        assert list(crops["labels"]) == [0, 0, 0]
    # what holds no row of a person is untouched (the model: see docs/compliance.md, retrain without)
    assert latest["models/pipelines-erase1/model.tar.gz"] == b"\x1f\x8b opaque weights"
    keys_after = {k for k, _, _ in after}
    assert keys_after == {k for k, _, _ in before}
    # every version still in the bucket is under the stack's key
    s3 = stack.client("s3")
    for key, version, _ in after:
        head = s3.head_object(Bucket=_learning_bucket(stack), Key=key, VersionId=version)
        assert head["ServerSideEncryption"] == "aws:kms", key
    # the erasure evidence counts what happened (and names no row)
    learning = answer["submissions"][0]["learning_data"]
    assert learning["rows_tombstoned"] == 1 and learning["label_rows_deleted"] == 1
    assert learning["crops_deleted"] == 3 and learning["versions_deleted"] == 4  # 2 manifests, csv, npz


def test_a_second_erasure_of_the_other_applicant_leaves_only_tombstones(
    stack: LocalStack, learning_data: dict
) -> None:
    b = learning_data["people"]["b"]
    payload, errored = invoke_erase(stack, {"submission_id": b["sid"]})
    assert not errored and json.loads(payload)["outcomes"] == {"ERASED": 1}, payload
    for key, version, body in _every_version(stack):
        for needle in _needles([b["sha256"], b["key"]]):
            assert needle not in _readable(body), (key, version)
    latest: dict[str, bytes] = {}
    for key, _, body in _every_version(stack):
        latest.setdefault(key, body)
    manifest = json.loads(latest[f"{learning_data['run']}/dataset/dataset.json"])
    assert all(r.get("erased") for r in manifest["rows"]) and len(manifest["erasures"]) == 2


LATE = {"c": "ACME-CUST-3003", "d": "ACME-CUST-4004"}


def _index_items(stack: LocalStack, pk: str) -> list[dict]:
    ddb, table = stack.client("dynamodb"), stack.physical_ids["LearningIndexTable"]
    return ddb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": pk}}
    )["Items"]


def _sha_token(sha256: str) -> str:  # the documented token, computed here (docs/erasure.md)
    return hashlib.sha256(f"kycscreen-learning-index/1\0sha256\0{sha256}".encode()).hexdigest()


def test_objects_written_after_the_index_by_another_path_are_found_and_a_stranger_reads_none(
    stack: LocalStack, learning_data: dict, tmp_path: Path
) -> None:
    """The index is built by the earlier erasures. Then a new run and labels file naming C, and a file
    no code can parse, arrive by plain PutObject (as SageMaker or a person writes them, not through
    the index). D was screened and never labelled: erasing D reads no learning unit and changes
    nothing. Erasing C must still leave nothing of C anywhere (the same every-version oracle)."""
    assert _index_items(stack, "catalogue"), "the earlier erasures catalogued the bucket's versions"
    late: dict[str, dict] = {}
    for name, reference in LATE.items():
        clip = make_clip(
            tmp_path / f"{name}.mp4",
            seconds=1.0,
            fps=10,
            colour=(200, 60, 30) if name == "c" else (30, 160, 90),
        )
        key = f"{stack.settings.upload_prefix}local/applicant-{name}-0001.mp4"
        ident = stack.upload(clip, key=key, metadata={"client-reference": reference})
        assert stack.wait_for_decision(ident["submission_id"], timeout_s=240) is not None
        late[name] = {
            "sid": ident["submission_id"],
            "sha256": hashlib.sha256(clip.read_bytes()).hexdigest(),
            "key": key,
            "pseudonym": expected_pseudonym(reference),
        }
    assert late["c"]["sha256"] != late["d"]["sha256"]
    c, filler = late["c"], "e" * 64
    labels = f"sha256,label,attack_type,applicant\n{c['sha256']},attack,replay_screen,{c['pseudonym']}\n"
    labels += f"{filler},genuine,,hmac:x:filler\n"
    manifest = build_manifest(
        parse_labels_csv(labels),
        {c["sha256"]: f"/opt/ml/processing/input/media/{c['key']}", filler: "/in/filler.mp4"},
        created="2026-12-07T00:00:00Z",
        source="labels/2026-12-07/late.csv",
    )
    crops = io.BytesIO()
    np.savez_compressed(
        crops,
        sha256=np.array([c["sha256"]] * 2 + [filler] * 2, dtype=str),
        tensors=np.zeros((4, 3, 32, 32), np.float32),
        labels=np.array([1, 1, 0, 0], dtype=np.int64),
        version=np.array(manifest["version"]),
    )
    s3, bucket = stack.client("s3"), _learning_bucket(stack)
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": stack.kms_key_id}
    run = "runs/pipelines-erase2"
    for key, body in {
        "labels/2026-12-07/late.csv": labels.encode(),
        f"{run}/dataset/dataset.json": json.dumps(manifest).encode(),
        f"{run}/crops/crops.npz": crops.getvalue(),
        f"{run}/custom/step-output.txt": f"custom step saw {c['sha256']}\n".encode(),  # cannot be indexed
    }.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, **kms)

    before = sorted((k, v) for k, v, _ in _every_version(stack))
    # what an operator (or a schedule) runs after a pipeline run: the next erasure then pays nothing
    payload, errored = invoke_erase(stack, {"learning_index": "catch-up"})
    assert not errored, payload
    # the four new versions, whoever wrote them, and the three the erasure of B rewrote (re-filed: S3
    # restarted their lifecycle clock, so their entries need a retention that outlives them)
    assert json.loads(payload)["learning_index"]["versions_indexed"] == 4 + 3, payload
    payload, errored = invoke_erase(stack, {"client_reference": LATE["d"]})
    assert not errored and json.loads(payload)["outcomes"] == {"ERASED": 1}, payload
    stranger = json.loads(payload)["submissions"][0]["learning_data"]
    assert stranger["index"]["versions_indexed"] == 0
    assert stranger["index"]["units_found"] == 0
    assert stranger["index"]["objects_read"] == stranger["index"]["unindexable_objects"] == 1
    assert stranger["versions_deleted"] == 0 and not stranger["objects_rewritten"]
    assert sorted((k, v) for k, v, _ in _every_version(stack)) == before  # nothing written or deleted

    assert _index_items(stack, "t#" + _sha_token(c["sha256"])), "C is filed under their video's hash"
    payload, errored = invoke_erase(stack, {"client_reference": LATE["c"]})
    assert not errored and json.loads(payload)["outcomes"] == {"ERASED": 1}, payload
    erased = json.loads(payload)["submissions"][0]["learning_data"]
    assert erased["index"]["versions_indexed"] == 0 and erased["index"]["units_found"] == 2
    for key, version, body in _every_version(stack):
        for needle in _needles([c["sha256"], c["key"], c["pseudonym"], LATE["c"]]):
            assert needle not in _readable(body), (key, version, needle[:20])
    latest: dict[str, bytes] = {}
    for key, _, body in _every_version(stack):
        latest.setdefault(key, body)
    assert f"{run}/custom/step-output.txt" not in latest  # named C, could not be rewritten: gone whole
    assert [
        r["sha256"] for r in json.loads(latest[f"{run}/dataset/dataset.json"])["rows"] if not r.get("erased")
    ] == [filler]
    with np.load(io.BytesIO(latest[f"{run}/crops/crops.npz"])) as kept:
        assert list(kept["sha256"]) == [filler] * 2
    assert (
        erased["crops_deleted"] == 2 and erased["label_rows_deleted"] == 1 and erased["rows_tombstoned"] == 1
    )
    # the index forgot C and still knows the filler
    assert not _index_items(stack, "t#" + _sha_token(c["sha256"]))
    assert _index_items(stack, "t#" + _sha_token(filler))


def test_a_run_that_outlives_an_erasure_has_the_subject_erased_by_the_catch_up_after_it(
    stack: LocalStack, tmp_path: Path
) -> None:
    """Issue 21 autoindex. E is screened and erased (nothing of E in the learning data yet). Then a
    pipeline run that had read E's case before the erasure writes its output (a manifest, crops, a custom
    step's file naming E's hash) by plain PutObject after the sweep. The run's end is delivered as SageMaker
    sends it, through the template's rules, as the local stack delivers it (``kyclocal.events``): the
    catch-up it triggers leaves no version that holds E (the same every-version oracle), and the filler
    person's rows and crops stay."""
    from kyclocal.events import pipeline_run_ended

    reference = "ACME-CUST-5005"
    clip = make_clip(tmp_path / "e.mp4", seconds=1.0, fps=10, colour=(120, 20, 160))
    key = f"{stack.settings.upload_prefix}local/applicant-e-0001.mp4"
    ident = stack.upload(clip, key=key, metadata={"client-reference": reference})
    assert stack.wait_for_decision(ident["submission_id"], timeout_s=240) is not None
    e = {"sha256": hashlib.sha256(clip.read_bytes()).hexdigest(), "key": key}
    e["pseudonym"] = expected_pseudonym(reference)
    needles = _needles([e["sha256"], e["key"], e["pseudonym"], reference])

    # a run is going; it has read E's reviewed case. The erasure runs now, before the run writes.
    payload, errored = invoke_erase(stack, {"client_reference": reference, "request_reference": "DSR-21b"})
    assert not errored and json.loads(payload)["outcomes"] == {"ERASED": 1}, payload
    # a status change that is not an end of the run triggers nothing
    assert pipeline_run_ended(stack, "Executing") == []

    filler, filler_who = "f" * 64, "hmac:x:filler-f"
    labels = f"sha256,label,attack_type,applicant\n{e['sha256']},attack,face_swap,{e['pseudonym']}\n"
    labels += f"{filler},genuine,,{filler_who}\n"
    manifest = build_manifest(
        parse_labels_csv(labels),
        {e["sha256"]: f"/opt/ml/processing/input/media/{e['key']}", filler: "/in/filler-f.mp4"},
        created="2026-12-07T05:00:00Z",
        source="labels/2026-12-07/run3.csv",
    )
    tensors = np.random.default_rng(5).random((4, 3, 32, 32), dtype=np.float32)
    crops = io.BytesIO()
    np.savez_compressed(
        crops,
        sha256=np.array([e["sha256"]] * 2 + [filler] * 2, dtype=str),
        tensors=tensors,
        labels=np.array([1, 1, 0, 0], dtype=np.int64),
        version=np.array(manifest["version"]),
    )
    s3, bucket = stack.client("s3"), _learning_bucket(stack)
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": stack.kms_key_id}
    run = "runs/pipelines-erase3"
    for name, body in {
        f"{run}/dataset/dataset.json": json.dumps(manifest).encode(),
        f"{run}/crops/crops.npz": crops.getvalue(),
        f"{run}/custom/step-output.txt": f"custom step saw {e['sha256']}\n".encode(),  # cannot be indexed
    }.items():
        s3.put_object(Bucket=bucket, Key=name, Body=body, **kms)
    assert any(n in _readable(b) for _, _, b in _every_version(stack) for n in needles)  # written after

    (delivery,) = pipeline_run_ended(stack, "Failed")  # a failed run's output counts as well
    assert delivery.rule == stack.physical_ids["RetrainCatchUpRule"].rsplit("/", 1)[-1]
    assert delivery.function == "EraseSubmissionFunction"
    assert not delivery.errored, delivery.payload
    for name, version, body in _every_version(stack):  # the oracle: every version, zip members unpacked
        for needle in needles:
            assert needle not in _readable(body), (name, version, needle[:20])
    answer = delivery.answer()["learning_index"]
    late = answer["late_erasure"]
    assert (late["rows_tombstoned"], late["crops_deleted"]) == (1, 2), answer
    assert late["objects_deleted"] == [f"{run}/custom/step-output.txt"], answer
    assert sorted(late["objects_rewritten"]) == [f"{run}/crops/crops.npz", f"{run}/dataset/dataset.json"]

    latest: dict[str, bytes] = {}
    for name, _, body in _every_version(stack):
        latest.setdefault(name, body)
    assert f"{run}/custom/step-output.txt" not in latest
    rows = json.loads(latest[f"{run}/dataset/dataset.json"])["rows"]
    assert [r["sha256"] for r in rows if not r.get("erased")] == [filler]
    assert [r["line_sha256"] for r in rows if r.get("erased")] == [
        hashlib.sha256(f"{e['sha256']} attack\n".encode()).hexdigest()
    ]
    with np.load(io.BytesIO(latest[f"{run}/crops/crops.npz"])) as kept:
        assert list(kept["sha256"]) == [filler] * 2
        assert np.array_equal(kept["tensors"], tensors[2:])
    # the index never filed E under the new run, and the filler is findable by its hash
    assert not _index_items(stack, "t#" + _sha_token(e["sha256"]))
    assert _index_items(stack, "t#" + _sha_token(filler))
    # the metric the alarm watches (LearningRowsErasedAfterRunAlarm): 1 row + 2 crops
    emitted = [
        line["LearningRowsErasedAfterRun"]
        for line in stack.log_lines("EraseSubmissionFunction")
        if "LearningRowsErasedAfterRun" in line
    ]
    assert [3.0] in emitted, emitted  # EMF: one value per flush
