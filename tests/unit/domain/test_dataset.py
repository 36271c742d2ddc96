"""The dataset builder: grouped, stable splits, erasure, conflicting verdicts, the labelled-set hash."""

from __future__ import annotations

import hashlib
import random
import subprocess

import pytest

from kyc.domain.dataset import (
    DatasetError,
    LabelledVideo,
    SplitRule,
    build_manifest,
    manifest_sha256,
    parse_labels_csv,
    rows_of,
)

CREATED = "2026-12-06T12:00:00Z"


def _sha(n: int) -> str:
    return hashlib.sha256(f"video {n}".encode()).hexdigest()


def _videos(count: int, *, per_applicant: int = 3, seed: int = 1) -> list[LabelledVideo]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        label = rng.choice(("genuine", "attack"))
        out.append(
            LabelledVideo(
                sha256=_sha(n),
                label=label,
                attack_type="face_swap" if label == "attack" else None,
                applicant=f"hmac:k1:{n // per_applicant:064x}",
            )
        )
    return out


def _media(videos: list[LabelledVideo]) -> dict[str, str]:
    return {v.sha256: f"uploads/{v.sha256[:8]}.mp4" for v in videos}


def test_no_applicant_is_in_two_splits_and_every_split_is_used() -> None:
    videos = _videos(300)
    manifest = build_manifest(videos, _media(videos), created=CREATED, source="test")
    split_of: dict[str, set[str]] = {}
    for row in manifest["rows"]:
        split_of.setdefault(row["applicant"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of.values())
    assert {s for splits in split_of.values() for s in splits} == {"train", "validation", "test"}
    # 100 applicants at 70/15/15: each split is within a generous binomial band
    per_split = {s: sum(1 for v in split_of.values() if s in v) for s in ("train", "validation", "test")}
    assert 50 <= per_split["train"] <= 90 and 5 <= per_split["test"] <= 28


def test_a_videos_split_does_not_change_when_the_set_grows() -> None:
    small = _videos(60)
    grown = _videos(600)  # same first 60 videos (same seed), ten times as many in all
    assert grown[:60] == small
    first = {
        r["sha256"]: r["split"]
        for r in build_manifest(small, _media(small), created=CREATED, source="a")["rows"]
    }
    second = {
        r["sha256"]: r["split"]
        for r in build_manifest(grown, _media(grown), created=CREATED, source="b")["rows"]
    }
    assert all(second[sha] == split for sha, split in first.items())


def test_the_split_rule_is_a_documented_hash_anyone_can_recompute() -> None:
    rule = SplitRule()
    group = "hmac:k1:" + "ab" * 32
    digest = hashlib.sha256(f"kyc-split-v1\0{group}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    expected = "train" if u < 0.70 else "validation" if u < 0.85 else "test"
    assert rule.split_of(group) == expected


def test_erased_submissions_leave_the_next_version_by_hash_or_pseudonym() -> None:
    videos = _videos(30)
    media = _media(videos)
    full = build_manifest(videos, media, created=CREATED, source="t")
    gone_video, gone_applicant = videos[0].sha256, videos[10].applicant
    assert gone_applicant is not None
    erased = build_manifest(videos, media, erased=[gone_video, gone_applicant], created=CREATED, source="t")
    kept = {r["sha256"] for r in erased["rows"]}
    assert gone_video not in kept
    assert not any(r["applicant"] == gone_applicant for r in erased["rows"])
    assert erased["excluded"]["erased"] == 1 + 3  # one video, and the three of one applicant
    assert len(kept) == len(full["rows"]) - 4
    assert erased["labelled_set_sha256"] != full["labelled_set_sha256"]


def test_labelled_set_hash_matches_sha256sum_and_sort() -> None:
    videos = _videos(12)
    manifest = build_manifest(videos, _media(videos), created=CREATED, source="t")
    lines = "".join(f"{v.sha256} {v.label}\n" for v in videos)
    oracle = (
        subprocess.run(
            "LC_ALL=C sort | sha256sum", shell=True, input=lines.encode(), capture_output=True, check=True
        )
        .stdout.split()[0]
        .decode()
    )
    assert manifest["labelled_set_sha256"] == oracle


def test_counts_per_split_class_and_attack_type_add_up() -> None:
    videos = _videos(90)
    manifest = build_manifest(videos, _media(videos), created=CREATED, source="t")
    for split, counted in manifest["counts"].items():
        rows = rows_of(manifest, split)
        assert counted["genuine"] == sum(1 for r in rows if r["label"] == "genuine")
        assert counted["attack"] == sum(1 for r in rows if r["label"] == "attack")
        assert sum(counted["attack_types"].values()) == counted["attack"]


def test_missing_media_is_counted_and_listed_never_silently_dropped() -> None:
    videos = _videos(10)
    media = _media(videos)
    del media[videos[3].sha256]
    manifest = build_manifest(videos, media, created=CREATED, source="t")
    assert manifest["excluded"]["missing_media"] == 1
    assert manifest["excluded"]["missing_media_sha256"] == [videos[3].sha256]
    assert len(manifest["rows"]) == 9


def test_conflicting_verdicts_for_one_video_are_an_error_and_duplicates_count_once() -> None:
    sha = _sha(1)
    same = [LabelledVideo(sha, "attack", "replay_screen"), LabelledVideo(sha, "attack", "replay_screen")]
    manifest = build_manifest(same, {sha: "k"}, created=CREATED, source="t")
    assert len(manifest["rows"]) == 1 and manifest["excluded"]["duplicate_rows"] == 1
    with pytest.raises(DatasetError, match="labelled twice"):
        build_manifest(
            [LabelledVideo(sha, "attack", "replay_screen"), LabelledVideo(sha, "genuine", None)],
            {sha: "k"},
            created=CREATED,
            source="t",
        )


def test_parse_labels_csv_reads_a_customer_csv_and_a_verdict_export() -> None:
    customer = f"sha256,label,attack_type\n{_sha(1)},attack,Face Swap\n{_sha(2)},genuine,\n"
    videos = parse_labels_csv(customer)
    assert [(v.label, v.attack_type) for v in videos] == [("attack", "face_swap"), ("genuine", None)]
    export = (
        "file_sha256,label,attack_type,reviewer_count,reviewed_at,applicant\n"
        f"{_sha(3)},attack,replay/screen,2,2026-12-01,hmac:k:{'0' * 64}\n"
    )
    (video,) = parse_labels_csv(export)
    assert (video.attack_type, video.reviewers, video.applicant) == ("replay_screen", 2, f"hmac:k:{'0' * 64}")


def test_a_verdict_export_from_the_review_domain_parses_row_for_row() -> None:
    """The workbench's own export (kyc.domain.review.export_csv) is what the builder reads."""
    from kyc.domain.review import EXPORT_COLUMNS, export_csv

    row = dict.fromkeys(EXPORT_COLUMNS, "") | {
        "sha256": _sha(7),
        "label": "attack",
        "attack_type": "injected_stream",
        "reviewer_count": 2,
        "reviewed_at": "2026-12-05T10:00:00Z",
    }
    (video,) = parse_labels_csv(export_csv([row]))
    assert (video.sha256, video.label, video.attack_type, video.reviewers) == (
        _sha(7),
        "attack",
        "injected_stream",
        2,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,label\nx.mp4,attack\n", "needs columns"),
        ("sha256,label\nnot-a-hash,attack\n", "64 hex"),
        (f"sha256,label\n{_sha(1)},maybe\n", "genuine or attack"),
        (f"sha256,label,attack_type\n{_sha(1)},attack,telepathy\n", "attack type"),
        ("sha256,label\n", "no rows"),
        (f"sha256,label,reviewer_count\n{_sha(1)},attack,two\n", "whole number"),
    ],
)
def test_bad_label_files_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_labels_csv(text)


def test_manifest_hash_changes_with_any_row() -> None:
    videos = _videos(10)
    manifest = build_manifest(videos, _media(videos), created=CREATED, source="t")
    changed = build_manifest(
        [*videos[:-1], LabelledVideo(videos[-1].sha256, "attack", "mask", videos[-1].applicant)],
        _media(videos),
        created=CREATED,
        source="t",
    )
    assert manifest_sha256(manifest) != manifest_sha256(changed)


def test_split_fractions_must_sum_to_one() -> None:
    with pytest.raises(DatasetError):
        SplitRule(train=0.8, validation=0.1, test=0.2)
