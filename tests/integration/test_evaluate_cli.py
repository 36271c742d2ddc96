"""`kycscreen evaluate` and `kycscreen run --contact-sheet` end to end, with the tiny red ONNX model.

Solid-colour clips give known per-video scores (p_fake rises with red); a red-lit genuine video
overlaps the attacks, so AUC and EER are not trivial and must match scikit-learn's.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from kyc.media.contact_sheet import decode_image
from kyclocal.commands import evaluate, run
from kyclocal.policy_file import artefact_of, role_played_policy
from kyclocal.samples import write_clip
from tests.fixtures.clips import make_clip
from tests.unit.serving.helpers import write_onnx_config

pytestmark = pytest.mark.integration

# (name, red level, label, attack_type)
CLIPS = [
    ("attack-250.mp4", 250, "fake", "face_swap"),
    ("attack-180.mp4", 180, "attack", "face_swap"),
    ("attack-128.mp4", 128, "attack", "replay"),
    ("genuine-10.mp4", 10, "real", ""),
    ("genuine-60.mp4", 60, "genuine", ""),
    ("genuine-100.mp4", 100, "bona_fide", ""),
    ("genuine-redlit-200.mp4", 200, "genuine", ""),  # the mixed case: genuine, scored like an attack
]


@pytest.fixture(autouse=True)
def _fresh_moto() -> None:
    """Each test starts its own LocalStack; moto's backends are per process, so clear them first."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _onnx_config(root: Path) -> Path:
    return write_onnx_config(root, weight_red=20.0, bias=-10.0)


def _parse(module: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers(required=True))  # type: ignore[attr-defined]
    return parser.parse_args(argv)


def test_evaluate_cli_labelled_set_matches_sklearn_and_meets_targets(tmp_path: Path) -> None:
    config = _onnx_config(tmp_path)
    lines = ["file,label,attack_type"]
    for name, red, label, kind in CLIPS:
        make_clip(tmp_path / name, width=128, height=128, fps=8, seconds=1.2, colour=(red, 10, 60))
        lines.append(f"{name},{label},{kind}")
    make_clip(tmp_path / "tiny.mp4", width=64, height=64, fps=8, seconds=1.2, colour=(250, 10, 10))
    lines.append("tiny.mp4,attack,replay")  # refused (too small): a non-response, not a miss
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("\n".join(lines) + "\n")
    args = _parse(
        evaluate,
        [
            *("evaluate", str(labels_csv), "--json", "--model", "onnx", "--onnx-config", str(config)),
            *("--frames", "4", "--max-apcer", "0.34", "--max-bpcer", "0.25", "--timeout", "120"),
        ],
    )
    out = io.StringIO()

    assert args.command(args, out=out) == 0

    result = json.loads(out.getvalue())
    files = result["files"]
    assert files[-1]["decision"] == "INVALID" and files[-1]["score"] is None
    assert result["current"]["attack_nonresponse"]["errors"] == 1
    scored = [f for f in files if f["score"] is not None]
    assert len(scored) == len(CLIPS)
    y = np.array([f["label"] == "attack" for f in scored])
    s = np.array([f["score"] for f in scored])
    assert result["current"]["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert 0.5 < result["current"]["auc"] < 1.0  # the red-lit genuine video overlaps the attacks
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert result["current"]["eer"] == pytest.approx(fpr[np.argmin(np.abs((1 - tpr) - fpr))], abs=1e-12)
    proposal = result["proposal"]
    assert proposal["feasible"] is True
    t_pass, t_reject = proposal["pass_threshold"], proposal["reject_threshold"]
    for kind in ("face_swap", "replay"):
        attacks = [f["score"] for f in scored if f["attack_type"] == kind]
        assert sum(v < t_pass for v in attacks) <= 0.34 * len(attacks)
    genuine = [f["score"] for f in scored if f["label"] == "genuine"]
    assert sum(v >= t_reject for v in genuine) <= 0.25 * len(genuine)
    low, high = result["current"]["auc_ci95"]
    assert low <= result["current"]["auc"] <= high

    # What the pipeline decided, not the score band: the whole-frame model sees no face in these test
    # cards, so none may PASS (NO_FACE_EVIDENCE), even genuine ones whose score sits in the PASS band.
    pass_band = result["current"]["pass_threshold"]
    genuine_rows = [f for f in files if f["label"] == "genuine"]
    assert any(f["score"] < pass_band for f in genuine_rows)  # by score these would PASS ...
    pipeline = result["pipeline"]
    assert pipeline["genuine"]["PASS"]["errors"] == 0  # ... but the pipeline decided REVIEW
    assert pipeline["genuine"]["REVIEW"]["errors"] == sum(f["decision"] == "REVIEW" for f in genuine_rows)
    assert pipeline["genuine"]["REVIEW"]["errors"] >= sum(f["score"] < pass_band for f in genuine_rows)
    # 4 attacks (the refused tiny clip included: INVALID is not a PASS), none PASSed; Wilson 0/4 upper 0.49
    assert (pipeline["apcer"]["errors"], pipeline["apcer"]["total"]) == (0, 4)
    assert pipeline["attack"]["INVALID"]["errors"] == 1
    assert pipeline["apcer"]["ci95"][0] == 0.0 and 0.45 < pipeline["apcer"]["ci95"][1] < 0.52
    # provenance evidence per label class, from each decision record: PyAV wrote every clip (an FFmpeg
    # muxer, no manifest); the refused clip was never read
    genuine_count = len(genuine_rows)
    assert result["provenance"]["genuine"]["c2pa:absent"] == genuine_count
    assert result["provenance"]["genuine"]["signal:editing_software"] == genuine_count
    assert result["provenance"]["attack"]["c2pa:not read"] == 1
    report = io.StringIO()
    evaluate.print_report(result, report)
    assert "what the pipeline decided" in report.getvalue()
    assert "provenance evidence per label class" in report.getvalue()


def test_run_contact_sheet_writes_png_for_review_only(tmp_path: Path) -> None:
    # A face-cropping model: the drawn face scores ~0 (PASS); the faceless test card goes to REVIEW.
    config = write_onnx_config(tmp_path, weight_red=20.0, bias=-20.0, face_crop=True)
    uncertain = make_clip(tmp_path / "u.mp4", width=128, height=128, fps=8, seconds=1.2, colour=(128, 10, 60))
    # 2.4 s: secret sample points keep a margin inside their bins (issue 22), so a clip of barely more
    # frames than the 8 asked for can come back a frame short of min_frames_scored
    genuine = write_clip(tmp_path / "g.mp4", "mp4", "libx264", {"preset": "ultrafast"}, seconds=2.4, fps=8)
    sheets = tmp_path / "sheets"
    policy = (
        tmp_path / "policy.json"
    )  # the face model's calibrated policy (role-played), as run --policy takes it
    model = {"name": "tiny-red", "version": "1.0.0", "artefact_sha256": artefact_of(config)}
    bound = role_played_policy(model, pass_threshold=0.2, reject_threshold=0.9, frame_count=8)
    policy.write_text(json.dumps(bound))
    args = _parse(
        run,
        [
            *("run", str(uncertain), str(genuine), "--json", "--model", "onnx", "--onnx-config", str(config)),
            *("--frames", "8", "--contact-sheet", str(sheets), "--policy", str(policy)),
        ],
    )
    out = io.StringIO()

    assert args.command(args, out=out) == 0

    review, passed = (json.loads(line) for line in out.getvalue().splitlines())
    assert review["decision"] == "REVIEW", review
    assert passed["decision"] == "PASS", passed
    assert "contact_sheet" not in passed
    sheet = decode_image(Path(review["contact_sheet"]).read_bytes())
    provenance_lines = 2 * (7 + 4) + 4  # "c2pa absent" and "forensics ..." above the grid
    assert (sheet.width, sheet.height) == (4 + 8 * (192 + 4), provenance_lines + 4 + 192 + (14 + 2 * 4) + 4)
    assert sorted(p.name for p in sheets.iterdir()) == [f"{review['submission_id']}.png"]
