"""Per-frame reuse hashes: mirror invariance is exact (the flip is the oracle), borders are found
where they were drawn, and a face-anchored scene window keeps its content under a crop."""

from __future__ import annotations

import numpy as np

from kyc.media.phash import perceptual_hash
from kyc.media.recording_hash import (
    FaceBox,
    content_box,
    luma,
    mirror_invariant_hash,
    recording_hashes,
    scene_small,
)


def _picture(seed: int, h: int = 240, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (h // 20, w // 20, 3))
    return np.kron(coarse, np.ones((20, 20, 1))).astype(np.float32)


def _bits(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def test_a_mirror_has_exactly_the_same_hash_and_the_old_hash_did_not_see_it() -> None:
    for seed in range(5):
        small = scene_small(luma(_picture(seed)), None)
        assert mirror_invariant_hash(small) == mirror_invariant_hash(small[:, ::-1].copy())
        rgb = _picture(seed)
        assert _bits(perceptual_hash(rgb), perceptual_hash(rgb[:, ::-1].copy())) > 8  # issue 16's hash
    different = [mirror_invariant_hash(scene_small(luma(_picture(s)), None)) for s in range(10, 20)]
    assert min(_bits(a, b) for i, a in enumerate(different) for b in different[i + 1 :]) > 8


def test_content_box_finds_drawn_letterbox_and_pillarbox_bars() -> None:
    picture = _picture(1)
    canvas = np.zeros((320, 400, 3), np.float32)
    canvas[40:280, 40:360] = picture  # bars of 40 rows above and below, 40 columns each side
    canvas += np.random.default_rng(2).normal(0, 1, canvas.shape).astype(np.float32)  # coding noise
    assert content_box(luma(canvas)) == (40, 280, 40, 360)
    assert content_box(luma(picture)) == (0, 240, 0, 320)  # no border: nothing removed


def test_face_anchored_scene_survives_a_crop_the_whole_frame_does_not() -> None:
    picture = _picture(3, 480, 640)
    box = FaceBox(0.4, 0.3, 0.2, 0.25)
    cropped = picture[:, 64:]  # 10 % cut from the left; the face moves with the picture
    moved = FaceBox((0.4 * 640 - 64) / 576, 0.3, 0.2 * 640 / 576, 0.25)
    anchored = _bits(
        mirror_invariant_hash(scene_small(luma(picture), box)),
        mirror_invariant_hash(scene_small(luma(cropped), moved)),
    )
    whole = _bits(
        mirror_invariant_hash(scene_small(luma(picture), None)),
        mirror_invariant_hash(scene_small(luma(cropped), None)),
    )
    assert anchored <= 4 < whole


def test_recording_hashes_have_a_face_and_body_only_with_a_box() -> None:
    frames = [(0, _picture(4, 480, 640)), (1, _picture(5, 480, 640))]
    with_box, without = recording_hashes(frames, [FaceBox(0.4, 0.3, 0.2, 0.25), None])
    assert None not in (with_box.scene, with_box.face, with_box.body)
    assert without.scene is not None and without.face is None and without.body is None
    flat = recording_hashes([(0, np.full((120, 160, 3), 80, np.float32))], [None])
    assert flat[0].scene is None


def test_a_face_in_front_of_a_plain_wall_still_gets_a_scene_hash() -> None:
    """The masked window around the face is flat: the whole picture is hashed instead (issue 16's
    demo clips, a drawn face on a plain background, lost every match without this)."""
    wall = np.full((480, 640, 3), 120, np.float32)
    wall[144:264, 256:376] = _picture(6, 120, 120)  # the "face", inside the box below
    (frame,) = recording_hashes([(0, wall)], [FaceBox(0.4, 0.3, 0.2, 0.25)])
    assert frame.scene is not None and frame.face is not None
    assert frame.body is None  # nothing but wall around the face
