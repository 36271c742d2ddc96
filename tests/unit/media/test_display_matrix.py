"""Display matrices with mirrors and transposes: the model sees the picture a player shows.

Oracle: the marker picture moved pixel by pixel with the matrix's own formula (FFmpeg's
``libavutil/display.h``: a source point (x, y) goes to (a x + c y, b x + d y), y pointing down),
written out here; it shares nothing with the sampler's decomposition into mirror and rotation.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError
from kyc.media.limits import MediaLimits
from kyc.media.probe import orientation_from_matrix
from kyc.media.sampling import SamplingParams, sample_frames
from kyc.media.validation import validate_upload
from tests.fixtures.sampling_clips import make_matrix_clip, marker_image

LIMITS = MediaLimits(min_side=16)
UNIT = 1 << 16
DIHEDRAL = {
    "identity": (1, 0, 0, 1), "rotate_90": (0, 1, -1, 0), "rotate_180": (-1, 0, 0, -1),
    "rotate_270": (0, -1, 1, 0), "hflip": (-1, 0, 0, 1), "vflip": (1, 0, 0, -1),
    "transpose": (0, 1, 1, 0), "antitranspose": (0, -1, -1, 0),
}  # fmt: skip


def ffmpeg_matrix(a: int, b: int, c: int, d: int) -> tuple[int, ...]:
    return (a * UNIT, b * UNIT, 0, c * UNIT, d * UNIT, 0, 0, 0, 1 << 30)


def shown_by_formula(picture: np.ndarray, a: int, b: int, c: int, d: int) -> np.ndarray:
    """Move every pixel (x, y) to (a x + c y, b x + d y), then shift the result to the origin."""
    height, width = picture.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    new_x, new_y = a * xs + c * ys, b * xs + d * ys
    new_x, new_y = new_x - new_x.min(), new_y - new_y.min()
    out = np.zeros((new_y.max() + 1, new_x.max() + 1, 3), dtype=picture.dtype)
    out[new_y, new_x] = picture[ys, xs]
    return out


@pytest.mark.parametrize("container", ["mp4", "matroska"])
@pytest.mark.parametrize("name", sorted(DIHEDRAL))
def test_display_matrix_applied_as_a_player_shows_it(tmp_path: Path, name: str, container: str) -> None:
    a, b, c, d = DIHEDRAL[name]
    clip = make_matrix_clip(tmp_path / f"{name}.{container}", ffmpeg_matrix(a, b, c, d), container=container)
    expected = shown_by_formula(marker_image(), a, b, c, d)
    report = validate_upload(clip, LIMITS)
    assert report.accepted and report.media is not None
    assert (report.media.display_width, report.media.display_height) == (expected.shape[1], expected.shape[0])
    assert report.media.mirrored == (a * d - b * c < 0)
    sample = sample_frames(clip, SamplingParams(frame_count=2, image_format="png"), LIMITS)
    for frame in sample.frames:
        image = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        assert image.shape == expected.shape
        assert np.abs(image.astype(int) - expected).mean() < 3, name


@pytest.mark.parametrize(
    "matrix",
    [
        (46341, 46341, 0, -46341, 46341, 0, 0, 0, 1 << 30),  # 45 degrees
        (UNIT, 0, 0, 0, 2 * UNIT, 0, 0, 0, 1 << 30),  # stretches one axis
        (UNIT, UNIT // 2, 0, 0, UNIT, 0, 0, 0, 1 << 30),  # shear
    ],
)
def test_display_matrix_that_no_right_angle_explains_is_refused(tmp_path: Path, matrix: tuple) -> None:
    with pytest.raises(MediaRefusedError) as refused:
        orientation_from_matrix(matrix)
    assert refused.value.reason is ReasonCode.CORRUPT_MEDIA
    clip = make_matrix_clip(tmp_path / "odd.mp4", matrix)
    assert validate_upload(clip, LIMITS).reason is ReasonCode.CORRUPT_MEDIA
    with pytest.raises(MediaRefusedError):
        sample_frames(clip, SamplingParams(frame_count=2), LIMITS)
