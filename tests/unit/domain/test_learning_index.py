"""The learning index's tokens (issue 21): whatever ``LearningSubject.owns`` claims, the index must
point at (it may over-select, never miss). Rows here are written by hand, not by the index's code."""

from __future__ import annotations

import hashlib
import json

from kyc.domain.dataset import LabelledVideo, build_manifest
from kyc.domain.learning_erasure import LearningSubject, erase_from_manifest
from kyc.domain.learning_index import (
    index_body,
    index_crops,
    index_labels_csv,
    index_manifest,
    row_tokens,
    subject_tokens,
    unit_of,
)

SHA_A, SHA_B = "a" * 64, "b" * 64
KEY_A = "uploads/hmac:1234abcd:ff/applicant-a-0001.mp4"


def _manifest() -> dict:
    videos = [
        LabelledVideo(SHA_A, "attack", "face_swap", applicant="hmac:1:pa"),
        LabelledVideo(SHA_B, "genuine", None, applicant="hmac:1:pb"),
    ]
    paths = {SHA_A: f"/opt/ml/processing/input/media/{KEY_A}", SHA_B: "/opt/ml/processing/input/media/b.mp4"}
    return build_manifest(videos, paths, created="2026-12-06T00:00:00Z", source="labels/x.csv")


def test_a_subject_named_by_any_one_of_hash_key_or_pseudonym_finds_the_manifest() -> None:
    indexed = index_manifest(json.dumps(_manifest()).encode())
    assert indexed.indexable
    for subject in (
        LearningSubject.of([SHA_A.upper()]),  # owns() lowercases the hash
        LearningSubject.of([], [KEY_A]),  # the job's local path ends with the intake key
        LearningSubject.of([], [], ["hmac:1:pa"]),
    ):
        assert subject_tokens(subject) & indexed.tokens, subject
    stranger = LearningSubject.of(["c" * 64], ["uploads/c.mp4"], ["hmac:1:pc"])
    assert not subject_tokens(stranger) & indexed.tokens


def test_tombstoned_rows_are_not_filed_and_the_tokens_are_one_way() -> None:
    manifest, erased = erase_from_manifest(_manifest(), LearningSubject.of([SHA_A]), erased_at="t")
    assert erased == 1
    tokens = index_manifest(json.dumps(manifest).encode()).tokens
    assert not subject_tokens(LearningSubject.of([SHA_A])) & tokens
    assert subject_tokens(LearningSubject.of([SHA_B])) & tokens
    # no token spells a value, and each is the documented one-way hash
    blob = json.dumps(sorted(tokens))
    assert SHA_B not in blob and "hmac:1:pb" not in blob and "b.mp4" not in blob
    assert hashlib.sha256(f"kycscreen-learning-index/1\0sha256\0{SHA_B}".encode()).hexdigest() in tokens


def test_labels_csv_by_hash_file_or_applicant_column_and_unreadable_objects_are_swept() -> None:
    csv_text = f"SHA256,label,file,applicant\n {SHA_A.upper()} ,attack,{KEY_A},hmac:1:pa\n"
    tokens = index_labels_csv(csv_text.encode()).tokens
    assert subject_tokens(LearningSubject.of([SHA_A])) & tokens
    assert subject_tokens(LearningSubject.of([], ["local/applicant-a-0001.mp4"])) & tokens  # same name
    # nothing to match a row by, bytes that are not UTF-8, a manifest of another format: read every time
    assert not index_labels_csv(b"label,notes\nattack,x\n").indexable
    # a row without its hash could be lost when another subject sharing its name token is forgotten
    assert not index_labels_csv(f"file,label\n{KEY_A},attack\n".encode()).indexable
    assert not index_labels_csv(
        f"sha256,file,label\n{SHA_A},x.mp4,attack\n,{KEY_A},attack\n".encode()
    ).indexable
    assert not index_body("labels/x.csv", b"\xff\xfe\x00").indexable
    assert not index_body("runs/r/dataset/dataset.json", b'{"format": "other"}').indexable
    assert not index_body("runs/r/notes.txt", SHA_A.encode()).indexable
    assert index_crops([SHA_A, SHA_A]).tokens == row_tokens(sha256=SHA_A)


def test_a_run_folder_is_one_unit_and_a_labels_file_its_own() -> None:
    assert unit_of("runs/pipelines-1/dataset/dataset.json") == "runs/pipelines-1/"
    assert unit_of("runs/pipelines-1/crops/crops.npz") == "runs/pipelines-1/"
    assert unit_of("labels/2026-12-06/reviewed.csv") == "labels/2026-12-06/reviewed.csv"
    assert unit_of("runs/loose.json") == "runs/loose.json"


# --- issue 21 (autoindex): the record of erased subjects ------------------------------------------------
def test_erased_subjects_claim_exactly_the_rows_the_subject_itself_would_claim() -> None:
    """Oracle: LearningSubject.owns with the raw values, row by row. The record holds only tokens, yet
    decides the same, and a row that merely shares the key's last segment stays (a name token alone
    would have claimed it)."""
    from kyc.domain.learning_erasure import LearningSubject
    from kyc.domain.learning_index import ErasedSubjects, erased_tokens

    sha, key, who = "ab" * 32, "uploads/hmac:k:p1/local/clip-0001.mp4", "hmac:k:p1"
    subject = LearningSubject.of([sha], [key], [who])
    record = ErasedSubjects(frozenset(erased_tokens(subject)))
    assert sha not in str(record.tokens) and key not in str(record.tokens)  # one-way tokens only
    rows = [
        (sha, None, None),
        (sha.upper(), None, None),
        ("cd" * 32, f"/opt/ml/processing/input/media/{key}", None),
        ("cd" * 32, key, None),
        ("cd" * 32, "/in/another/clip-0001.mp4", None),  # same name, another person's key
        ("cd" * 32, f"/x/{key}-copy", None),
        ("cd" * 32, None, who),
        ("cd" * 32, None, "hmac:k:p2"),
        (None, None, None),
    ]
    expected = [subject.owns(*row) for row in rows]
    assert expected == [True, True, True, True, False, False, True, False, False]
    assert [record.owns(*row) for row in rows] == expected


def test_erased_subjects_find_a_video_hash_in_bytes_no_code_can_parse() -> None:
    from kyc.domain.learning_erasure import LearningSubject
    from kyc.domain.learning_index import ErasedSubjects, erased_tokens

    sha = "0f" * 32
    record = ErasedSubjects(frozenset(erased_tokens(LearningSubject.of([sha]))))
    assert record.names(f"custom step saw {sha}\n".encode())
    assert record.names(f"run={'a' * 7}{sha.upper()}{'b' * 5}".encode())  # inside a longer hex run
    assert not record.names(f"saw {'1f' * 32} and {sha[:63]}".encode())
    assert not ErasedSubjects(frozenset())
