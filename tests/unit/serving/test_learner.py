"""The reference learner learns from its labels, not from anything else, and is served as trained.

Oracles: scikit-learn's own prediction on the same features (the exported ONNX graph must agree),
and a model trained on shuffled labels (which must not separate held-out videos).
"""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from kyc.domain.contract import FrameImage
from kyclocal.samples import drawn_face, side_panels
from kycserve.learner import FEATURES, LEARNER_NAME, CropReader, LearnerError, features_of, train


def _frame(person: int, cast: float, sway: int, seed: int) -> FrameImage:
    rgb = drawn_face(320, 240, sway=sway) + side_panels(320, 240, person)
    rgb[..., 0] += cast
    rgb += np.random.default_rng(seed).normal(0, 3, rgb.shape)
    bgr = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return FrameImage(f"p{person}-{seed}", "image/jpeg", jpeg.tobytes())


def _videos(count: int, seed: int) -> list[tuple[str, list[FrameImage], int]]:
    """Videos of a drawn face: attacks carry a red cast (30..90), genuine ones a natural one (-30..25)."""
    rng = random.Random(seed)
    reader = CropReader()
    out = []
    for n in range(count):
        label = n % 2
        cast = rng.uniform(30, 90) if label else rng.uniform(-30, 25)
        frames = [_frame(seed * 1000 + n, cast, sway, seed * 1000 + n * 10 + sway) for sway in (-8, 0, 8)]
        out.append((f"{seed}-{n}", [t for f in frames for t in reader.tensors(f)], label))
    return out


def _examples(videos):
    return [(sha, tensor, label) for sha, tensors, label in videos for tensor in tensors]


def _auc(scores: list[float], labels: list[int]) -> float:
    """Mann-Whitney AUC by hand (ties count half): the independent measure."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _video_scores(result, videos) -> list[float]:
    import onnxruntime as ort

    session = ort.InferenceSession(result.model_bytes, providers=["CPUExecutionProvider"])
    out = []
    for _, tensors, _ in videos:
        (p,) = session.run(["p_fake"], {"image": np.stack(tensors).astype(np.float32)})
        out.append(float(np.mean(p)))
    return out


@pytest.fixture(scope="module")
def data():
    return _videos(24, seed=1), _videos(16, seed=2)


def test_crops_come_from_the_servers_face_finder(data) -> None:
    train_videos, _ = data
    found = [len(tensors) for _, tensors, _ in train_videos]
    assert all(found) and sum(found) >= 0.8 * 3 * len(found), found  # Haar misses a few drawn faces
    assert train_videos[0][1][0].shape == (3, 32, 32)
    assert float(train_videos[0][1][0].min()) >= 0.0 and float(train_videos[0][1][0].max()) <= 1.0


def test_it_learns_the_labels_on_held_out_videos_and_cannot_learn_shuffled_ones(data) -> None:
    train_videos, test_videos = data
    labels = [label for _, _, label in test_videos]
    learned = train(_examples(train_videos), version="t1")
    assert _auc(_video_scores(learned, test_videos), labels) >= 0.95

    shuffled_aucs = []
    for seed in range(6):
        rng = random.Random(seed)
        flipped = [label for _, _, label in train_videos]
        rng.shuffle(flipped)
        shuffled = [(sha, tensors, y) for (sha, tensors, _), y in zip(train_videos, flipped, strict=True)]
        shuffled_aucs.append(
            _auc(_video_scores(train(_examples(shuffled), version="s"), test_videos), labels)
        )
    assert np.mean(shuffled_aucs) < 0.75, shuffled_aucs


def test_the_exported_graph_scores_as_scikit_learn_does(data) -> None:
    from sklearn.linear_model import LogisticRegression

    train_videos, test_videos = data
    examples = _examples(train_videos)
    result = train(examples, version="t1")
    features = features_of(np.stack([t for _, t, _ in examples]))
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale < 1e-6] = 1.0
    oracle = LogisticRegression(C=1.0, max_iter=2000, random_state=0)
    oracle.fit((features - mean) / scale, [y for _, _, y in examples])
    probe = np.stack([t for _, tensors, _ in test_videos for t in tensors])
    expected = oracle.predict_proba((features_of(probe) - mean) / scale)[:, 1]
    import onnxruntime as ort

    session = ort.InferenceSession(result.model_bytes, providers=["CPUExecutionProvider"])
    (served,) = session.run(["p_fake"], {"image": probe.astype(np.float32)})
    assert np.allclose(served[:, 0], expected, atol=1e-4)


def test_the_model_server_serves_the_exported_model(tmp_path, data) -> None:
    from kycserve.models.onnx_model import OnnxModel, load_onnx_config

    train_videos, _ = data
    result = train(_examples(train_videos), version="2.0.0")
    config = result.write(tmp_path / "candidate")
    model = OnnxModel(load_onnx_config(config))
    assert (model.info.name, model.info.version) == (LEARNER_NAME, "2.0.0")
    assert "not a production detector" in model.description
    attack, genuine = _frame(77, 85, 0, 5), _frame(78, -20, 0, 6)
    scores = {fs.frame_id: fs.p_fake for fs in model.predict([attack, genuine])}
    assert scores[attack.frame_id] > 0.5 > scores[genuine.frame_id]


def test_feature_graph_has_the_documented_width() -> None:
    assert features_of(np.zeros((2, 3, 32, 32), dtype=np.float32)).shape == (2, FEATURES)


def test_one_class_or_no_crops_is_refused() -> None:
    with pytest.raises(LearnerError, match="no face"):
        train([], version="x")
    with pytest.raises(LearnerError, match="both"):
        train([("a", np.zeros((3, 32, 32), np.float32), 1)], version="x")
