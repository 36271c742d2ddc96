"""A model to calibrate locally, and a labelled set it separates: the calibration journey, end to end.

The reference scorer is no detector and is never calibrated, so showing PASS and REJECT locally takes
a model that is calibrated for real. This one is a toy, and says so: a tiny ONNX network (mean red
of the face crop, a linear map, a sigmoid) served by the `onnx` model exactly as a customer's
exported classifier is. Its labelled set is built to match what it sees: genuine clips are the drawn
face with natural colour; attacks are the same face replayed with a red colour cast, and the two
classes overlap a little, so the REVIEW band has work to do. It demonstrates the mechanics (measure,
bind, decide), nothing about detecting deepfakes.

    python -m kyclocal.calibration_demo build/calibration   # model.json, tiny.onnx, clips, labels.csv
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kyclocal.samples import write_clip

MODEL_NAME = "demo-red-cast-toy"
MODEL_VERSION = "1.0.0"
# p_fake = sigmoid(WEIGHT * mean red of the 32x32 face crop + BIAS): natural colour ~0.1, a red cast ~1.
WEIGHT, BIAS = 25.0, -16.5
# (file, label, red cast added to every pixel); 20 and 28 genuine and 25 attack sit in the middle.
LABELLED_SET = (
    ("genuine-cool.mp4", "genuine", -30),
    ("genuine-pale.mp4", "genuine", -15),
    ("genuine-neutral.mp4", "genuine", 0),
    ("genuine-warm.mp4", "genuine", 5),
    ("genuine-warmer.mp4", "genuine", 20),
    ("genuine-sunlit.mp4", "genuine", 28),
    ("attack-faint-cast.mp4", "attack", 25),
    ("attack-cast-45.mp4", "attack", 45),
    ("attack-cast-60.mp4", "attack", 60),
    ("attack-cast-75.mp4", "attack", 75),
    ("attack-cast-90.mp4", "attack", 90),
)


def red_mean_sigmoid(weight_red: float = WEIGHT, bias: float = BIAS):  # -> onnx.ModelProto
    """p = sigmoid(weight_red * mean(channel 0) + bias): global average pool, linear, sigmoid."""
    import onnx
    from onnx import TensorProto, helper

    weights = helper.make_tensor("W", TensorProto.FLOAT, [3, 1], [weight_red, 0.0, 0.0])
    bias_t = helper.make_tensor("B", TensorProto.FLOAT, [1], [bias])
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["linear"]),
        helper.make_node("Add", ["linear", "B"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p_fake"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("p_fake", TensorProto.FLOAT, ["N", 1])],
        initializer=[weights, bias_t],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_demo_model(
    directory: Path, *, version: str = MODEL_VERSION, weight_red: float = WEIGHT, bias: float = BIAS
) -> Path:
    """``tiny.onnx`` and its `onnx` config (face crops, as a face-swap detector works); returns the config.
    Other ``weight_red``/``bias`` play other weights under the same name and version."""
    import onnx

    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(red_mean_sigmoid(weight_red, bias), str(directory / "tiny.onnx"))
    config = {
        "path": "tiny.onnx",
        "name": MODEL_NAME,
        "version": version,
        "input_size": [32, 32],
        "activation": "probability",
        "face_crop": True,
        "description": "TOY (calibration demo): flags a red colour cast on the face, detects no deepfake",
    }
    path = directory / ("model.json" if version == MODEL_VERSION else f"model-{version}.json")
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def build_labelled_set(directory: Path, *, seconds: float = 1.5, fps: int = 10) -> Path:
    """The clips and ``labels.csv`` (file,label,attack_type); returns the CSV's path."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for person, (name, label, cast) in enumerate(LABELLED_SET):
        write_clip(
            directory / name,
            "mp4",
            "libx264",
            {"preset": "ultrafast"},
            width=480,
            height=360,
            fps=fps,
            seconds=seconds,
            red_cast=cast,
            person=person,  # eleven "people": a labelled set holds no re-submitted media
        )
        rows.append({"file": name, "label": label, "attack_type": "replay" if label == "attack" else ""})
    labels = directory / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "attack_type"])
        writer.writeheader()
        writer.writerows(rows)
    return labels


# Partial fakes (issue 24): a genuine recording with an attack stretch spliced in. The genuine segment
# is the neutral clip's colour, the attack segment the strongest cast; shares and positions below.
PARTIAL_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5)
PARTIAL_POSITIONS = ("start", "middle", "end")
GENUINE_CAST, ATTACK_CAST = 0, 90


def splice(share: float, position: str) -> Callable[[float], int]:
    """The red cast at time fraction t of a clip whose attack stretch covers ``share`` of it at
    ``position`` (start, middle or end)."""
    start = {"start": 0.0, "middle": (1.0 - share) / 2, "end": 1.0 - share}[position]

    def cast(t: float) -> int:
        return ATTACK_CAST if start <= t < start + share else GENUINE_CAST

    return cast


def build_partial_fakes(
    directory: Path,
    *,
    shares: Sequence[float] = PARTIAL_SHARES,
    positions: Sequence[str] = PARTIAL_POSITIONS,
    seconds: float = 3.0,
    fps: int = 10,
) -> Path:
    """Spliced clips and ``labels.csv`` (file,label,attack_type,fake_share): attack type
    ``splice-<position>``, ``fake_share`` the attack stretch's share of the clip's time."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, (share, position) in enumerate((s, p) for s in shares for p in positions):
        name = f"splice-{position}-{round(share * 100):02d}.mp4"
        write_clip(
            directory / name,
            "mp4",
            "libx264",
            {"preset": "ultrafast"},
            width=480,
            height=360,
            fps=fps,
            seconds=seconds,
            red_cast=splice(share, position),
            person=100 + n,  # a scene of its own: reuse detection does not match the splices
        )
        rows.append(
            {"file": name, "label": "attack", "attack_type": f"splice-{position}", "fake_share": share}
        )
    labels = directory / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "label", "attack_type", "fake_share"])
        writer.writeheader()
        writer.writerows(rows)
    return labels


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/calibration")
    print(write_demo_model(target))
    print(build_labelled_set(target))
