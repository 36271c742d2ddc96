"""Per-frame reuse hashes: mirror invariance is exact (the flip is the oracle), borders are found
where they were drawn, and a face-anchored scene window keeps its content under a crop."""

from __future__ import annotations

import dataclasses

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


def _rotated(rgb: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
    """OpenCV's rotation (an independent implementation), counter-clockwise on screen, black corners."""
    import cv2

    m = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), borderMode=cv2.BORDER_CONSTANT)


def test_windows_turned_upright_by_the_faces_roll_survive_a_rotation_and_unturned_ones_do_not() -> None:
    """A rotated copy rotates the face by the same angle: the face stage's roll (Rekognition's sign:
    a counter-clockwise turn on screen reads as a negative roll) turns the windows back."""
    picture = _picture(7, 480, 640)
    box = FaceBox(0.42, 0.3, 0.2, 0.26)
    centre = ((box.left + box.width / 2) * 640, (box.top + box.height / 2) * 480)
    (upright,) = recording_hashes([(0, picture)], [box])
    for degrees in (3.0, 5.0, -5.0):
        turned = _rotated(picture, degrees, centre)
        (derotated,) = recording_hashes(
            [(0, turned)], [FaceBox(*dataclasses.astuple(box)[:4], roll=-degrees)]
        )
        (unturned,) = recording_hashes([(0, turned)], [box])
        for part in ("scene", "face", "body"):
            assert _bits(getattr(upright, part), getattr(derotated, part)) <= 4, (degrees, part)
        if abs(degrees) >= 5:
            assert _bits(upright.scene, unturned.scene) > 8, degrees  # what r1 saw: beyond the radius


def test_a_side_crop_stretched_back_to_the_frame_keeps_the_scene_window() -> None:
    """A crop from one side resized back to the frame's size changes the aspect: the window is
    measured in face widths across and face heights down, so it stretches with the picture."""
    import cv2

    picture = _picture(8, 480, 640)
    box = FaceBox(0.4, 0.32, 0.2, 0.27)
    (before,) = recording_hashes([(0, picture)], [box])
    cropped = cv2.resize(picture[48:], (640, 480), interpolation=cv2.INTER_AREA)  # 10 % off the top
    moved = FaceBox(0.4, (0.32 * 480 - 48) / 432, 0.2, 0.27 * 480 / 432)
    (after,) = recording_hashes([(0, cropped)], [moved])
    assert _bits(before.scene, after.scene) <= 6
    assert _bits(before.body, after.body) <= 6


# Hashes written into the index by r1 (main at commit 4d4f31b, kyc.media.recording_hash then):
# the frozen construction must reproduce them bit for bit, or a pre-upgrade entry is never met.
R1_WRITTEN = {
    (0, (0.4, 0.3, 0.2, 0.25)): (0x1C167E5CAA2CBCB4, 0xB72F0623C46AAE4E, 0xD658478D69A67362),
    (1, (0.05, 0.02, 0.3, 0.4)): (0xCB4B6D093749E075, 0x4E38FE18B578E12A, 0x7916B5A14057B45F),
    (2, None): (0x56A993747C34564D, None, None),
    (3, (0.7, 0.6, 0.25, 0.3)): (0xFD0211BD6C1F951A, 0x373C55945F78AA48, 0x117F9171B3DD502A),
}


def test_the_frozen_r1_construction_reproduces_what_r1_wrote_and_r2_differs() -> None:
    from kyc.media import recording_hash_r1

    for (seed, box), written in R1_WRITTEN.items():
        picture = _picture(seed, 480, 640)
        face_box = FaceBox(*box, roll=7.0) if box else None  # r1 never turned a window: roll ignored
        (r1,) = recording_hash_r1.recording_hashes([(0, picture)], [face_box])
        assert (r1.scene, r1.face, r1.body) == written
        if box:
            (r2,) = recording_hashes([(0, picture)], [face_box])
            assert r2.scene != r1.scene
