"""The one-person measure (kyc.media.face_identity) on real faces, against the default threshold.

Oracles: who is in each picture, known independently of the code: the corpus's androidx selfie (one
man, two files), Grace Hopper and Eileen Collins (public-domain portraits), and the drawn face. Each
person is seen as captured and under the light, roll, size and compression changes a genuine clip
shows (benchmarks/faces.py prints the full distributions, docs/face-stage.md the figures).
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from kyc.domain.face_gates import FaceGates
from kyc.media.face_identity import descriptor, similarity_matrix
from kyc.media.face_mesh import FaceMeshDetector
from kyclocal.samples import drawn_face
from tests.fixtures.face_clips import PORTRAITS, SELFIE, portrait, selfie_frames

THRESHOLD = FaceGates().min_identity_similarity
pytestmark = pytest.mark.skipif(not SELFIE.is_file(), reason="the shared corpus is not beside the project")


def _changes(bgr: np.ndarray) -> list[np.ndarray]:
    h, w = bgr.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)
    return [
        bgr,
        np.clip(bgr * 0.45, 0, 255).astype(np.uint8),  # darker
        np.clip(bgr * 1.5 + 10, 0, 255).astype(np.uint8),  # brighter
        np.clip(bgr * np.array([0.8, 1.0, 1.25]), 0, 255).astype(np.uint8),  # warm light
        cv2.warpAffine(bgr, turn, (w, h), borderMode=cv2.BORDER_REPLICATE),  # rolled 20 degrees
        cv2.resize(bgr, (w // 2, h // 2)),  # half size
        cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], cv2.IMREAD_COLOR),
    ]


@pytest.fixture(scope="module")
def people() -> dict[str, list[np.ndarray]]:
    mesh = FaceMeshDetector()
    bgr = {
        "selfie": [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in selfie_frames(1080, 720)[::10]],
        "drawn": [cv2.cvtColor(drawn_face(640, 480).astype(np.uint8), cv2.COLOR_RGB2BGR)],
    } | {name: [cv2.cvtColor(portrait(name), cv2.COLOR_RGB2BGR)] for name in PORTRAITS}
    out: dict[str, list[np.ndarray]] = {}
    for who, images in bgr.items():
        for image in images:
            for changed in _changes(image):
                (face,) = mesh.detect(changed)  # one face, found in every change
                out.setdefault(who, []).append(descriptor(changed, face.landmarks))
    return out


def test_one_person_stays_above_the_threshold_across_light_roll_size_and_compression(people) -> None:
    for who, vectors in people.items():
        lowest = min(float(a @ b) for a, b in itertools.combinations(vectors, 2))
        assert lowest >= THRESHOLD, (who, lowest)


def test_different_people_fall_below_the_threshold(people) -> None:
    for first, second in itertools.combinations(people, 2):
        highest = max(float(a @ b) for a in people[first] for b in people[second])
        assert highest < THRESHOLD, (first, second, highest)


def test_the_similarity_matrix_is_symmetric_with_ones_on_the_diagonal(people) -> None:
    vectors = people["selfie"][:3] + people["grace_hopper.jpg"][:2]
    matrix = np.array(similarity_matrix(vectors))
    assert np.allclose(matrix, matrix.T) and np.allclose(np.diag(matrix), 1.0, atol=1e-4)
    assert matrix[:3, 3:].max() < THRESHOLD <= matrix[:3, :3].min()
