"""Which learning-data rows and crops of an erased subject go, and that the labelled-set hash stays
verifiable (issue 21). Oracle: the labelled-set hash recomputed here the way docs/learning-loop.md tells
a person to (sha256 each line, sort, sha256), never the builder's own field."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json

import pytest

from kyc.domain.dataset import LabelledVideo, build_manifest, parse_labels_csv
from kyc.domain.learning_erasure import (
    LearningObject,
    LearningSubject,
    crops_to_keep,
    erase_from_labels_csv,
    erase_from_manifest,
    kind_of,
    learning_subject,
    verify_tombstoned_set,
)
from tests.fixtures.macs import TEST_MAC

SHA_A1, SHA_A2, SHA_B = ("a1" * 32), ("a2" * 32), ("bb" * 32)
ALICE, BOB = "ps-alice-0123456789", "ps-bob-9876543210"


def _set_hash(lines: list[str]) -> str:
    return hashlib.sha256("".join(sorted(f"{line}\n" for line in lines)).encode()).hexdigest()


@pytest.fixture
def manifest() -> dict:
    videos = [
        LabelledVideo(SHA_A1, "attack", "face_swap", applicant=ALICE),
        LabelledVideo(SHA_A2, "genuine", None, applicant=ALICE),
        LabelledVideo(SHA_B, "genuine", None, applicant=BOB),
    ]
    media = {
        SHA_A1: "/opt/ml/processing/input/media/uploads/ps-x/a1.mp4",
        SHA_A2: "m/a2.mp4",
        SHA_B: "m/b.mp4",
    }
    return build_manifest(videos, media, created="2026-12-06T00:00:00Z", source="test")


def test_erasing_one_video_tombstones_only_its_row(manifest: dict) -> None:
    out, n = erase_from_manifest(manifest, LearningSubject.of([SHA_A1]), erased_at="2026-12-06T01:00:00Z")
    assert n == 1
    text = json.dumps(out)
    assert SHA_A1 not in text and "a1.mp4" not in text
    assert SHA_A2 in text and SHA_B in text and ALICE in text  # Alice's other video is another submission
    assert len(out["rows"]) == 3 and sum(1 for r in out["rows"] if r.get("erased")) == 1
    assert out["erasures"] == [{"erased_at": "2026-12-06T01:00:00Z", "rows_tombstoned": 1}]
    assert out["labelled_set_sha256"] == manifest["labelled_set_sha256"]  # what the registry names


def test_a_media_key_finds_the_row_by_the_jobs_local_path(manifest: dict) -> None:
    _, n = erase_from_manifest(manifest, LearningSubject.of([], ["uploads/ps-x/a1.mp4"]), erased_at="t")
    assert n == 1
    _, n = erase_from_manifest(manifest, LearningSubject.of([], ["ps-x/a1.mp4x"]), erased_at="t")
    assert n == 0  # a key that merely shares characters is not the row's


def test_erasing_the_person_takes_every_row_of_their_pseudonym(manifest: dict) -> None:
    out, n = erase_from_manifest(manifest, LearningSubject.of([], [], [ALICE]), erased_at="t")
    assert n == 2 and ALICE not in json.dumps(out) and BOB in json.dumps(out)


def test_the_labelled_set_hash_is_verifiable_from_the_aml_record_after_erasure(manifest: dict) -> None:
    # independent oracle: the hash as a person computes it from the lines
    assert manifest["labelled_set_sha256"] == _set_hash(
        [f"{SHA_A1} attack", f"{SHA_A2} genuine", f"{SHA_B} genuine"]
    )
    out, _ = erase_from_manifest(manifest, LearningSubject.of([SHA_A1]), erased_at="t")
    stone = next(r for r in out["rows"] if r.get("erased"))
    aml_line = (
        f"{SHA_A1} attack"  # the pseudonymised decision record keeps source.sha256; the label from review
    )
    assert stone["line_sha256"] == hashlib.sha256(f"{aml_line}\n".encode()).hexdigest()
    assert verify_tombstoned_set(out, {stone["line_sha256"]: aml_line})
    assert not verify_tombstoned_set(out, {stone["line_sha256"]: f"{SHA_A1} genuine"})  # a wrong label fails
    assert not verify_tombstoned_set(out, {})


def test_a_second_erasure_changes_nothing(manifest: dict) -> None:
    once, _ = erase_from_manifest(manifest, LearningSubject.of([SHA_A1]), erased_at="t")
    twice, n = erase_from_manifest(once, LearningSubject.of([SHA_A1]), erased_at="t2")
    assert n == 0 and twice == once


def test_the_subjects_hash_leaves_the_missing_media_list_too() -> None:
    videos = [LabelledVideo(SHA_B, "genuine", None), LabelledVideo(SHA_A1, "attack", "mask")]
    built = build_manifest(videos, {SHA_B: "m/b.mp4"}, created="2026-12-06T00:00:00Z", source="t")
    assert built["excluded"]["missing_media_sha256"] == [SHA_A1]
    out, _ = erase_from_manifest(built, LearningSubject.of([SHA_A1]), erased_at="t")
    assert SHA_A1 not in json.dumps(out) and out["excluded"]["missing_media"] == 1


def test_labels_csv_rows_of_the_subject_go_and_the_rest_stay_parseable() -> None:
    text = f"sha256,label,attack_type,applicant\n{SHA_A1},attack,face_swap,{ALICE}\n{SHA_B},genuine,,{BOB}\n"
    out, n = erase_from_labels_csv(text, LearningSubject.of([SHA_A1.upper()]))
    assert n == 1 and SHA_A1 not in out and ALICE not in out
    assert [v.sha256 for v in parse_labels_csv(out)] == [SHA_B]
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows == [{"sha256": SHA_B, "label": "genuine", "attack_type": "", "applicant": BOB}]
    assert erase_from_labels_csv(text, LearningSubject.of([("cc" * 32)])) == (text, 0)


def test_crops_of_the_subjects_videos_go() -> None:
    assert crops_to_keep([SHA_A1, SHA_B, SHA_A1, SHA_A2], LearningSubject.of([SHA_A1])) == [
        False,
        True,
        False,
        True,
    ]


def test_object_kinds_follow_the_pipelines_layout() -> None:
    assert kind_of("runs/pipelines-x/dataset/dataset.json") is LearningObject.MANIFEST
    assert kind_of("labels/2026-12-06/reviewed.csv") is LearningObject.LABELS
    assert kind_of("runs/pipelines-x/crops/crops.npz") is LearningObject.CROPS
    assert kind_of("runs/pipelines-x/other.bin") is LearningObject.OTHER


def test_subject_of_a_record_takes_the_pseudonym_only_when_the_person_is_erased() -> None:
    item = {"source": {"sha256": SHA_A1, "key": "uploads/x.mp4"}, "client_reference": "REF-1"}
    by_submission = learning_subject(item, whole_person=False, mac=TEST_MAC)
    by_person = learning_subject(item, whole_person=True, mac=TEST_MAC)
    assert by_submission.applicants == frozenset() and by_submission.sha256s == {SHA_A1}
    # the keyed pseudonym the erased record keeps as client_reference_pseudonym (hand-computed HMAC)
    expected = "hmac:testkey1:" + hmac.new(TEST_MAC.key, b"REF-1", hashlib.sha256).hexdigest()
    assert by_person.applicants == {expected} and by_person.media_keys == {"uploads/x.mp4"}
