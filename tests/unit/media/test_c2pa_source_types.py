"""Declared source types (issue 24): every one of every action and ingredient is read, however it is
written, and generative retouching is never a PASS. Clips are signed at test time (throw-away CA)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyc.domain.policy import Effect
from kyc.domain.provenance import ProvenancePolicy, assess, source_type_term
from kyc.domain.reasons import ReasonCode as R
from kyc.media import c2pa_manifest
from kyc.media.c2pa_manifest import C2paConfig, read_c2pa, summarise_store
from tests.fixtures.c2pa_clips import IPTC, make_ca, sign
from tests.fixtures.clips import make_clip


def _action(action: str, source_type: str) -> dict:
    return {"action": action, "digitalSourceType": source_type, "softwareAgent": {"name": "editor"}}


def _definition(actions: list[dict]) -> dict:
    return {
        "claim_generator_info": [{"name": "kycscreen-test", "version": "1.0"}],
        "title": "clip.mp4",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
    }


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("c2pa-types")
    clip = make_clip(root / "clip.mp4", width=320, height=240, fps=15, seconds=1.0)
    ca = make_ca()

    def signed(name: str, actions: list[dict]) -> Path:
        return sign(clip, root / name, ca, _definition(actions))

    return signed


def _findings(path: Path) -> set[tuple[str, str]]:
    summary = read_c2pa(path, C2paConfig())
    assessment = assess(summary.to_dict(), None, received_at=None, policy=ProvenancePolicy())
    return {(str(f.reason), str(f.effect)) for f in assessment.findings}


def test_sixteen_decoy_edits_after_a_generated_creation_do_not_hide_it(signer) -> None:
    """The attack in the issue: created as trainedAlgorithmicMedia, then 16 edits with source types of
    their own; the reader used to keep 16 entries, newest first, and lose the creation."""
    decoys = [_action("c2pa.edited", f"https://decoy.example/source/{i}") for i in range(16)]
    path = signer("decoys.mp4", [_action("c2pa.created", IPTC + "trainedAlgorithmicMedia"), *decoys])

    summary = read_c2pa(path, C2paConfig())

    assert summary.source_types_complete is True
    assert summary.source_types[0]["type"] == "trainedAlgorithmicMedia"  # vocabulary first
    assert len(summary.source_types) == 17
    assert (str(R.DECLARED_SYNTHETIC), str(Effect.REJECT)) in _findings(path)


@pytest.mark.parametrize(
    "written",
    [
        IPTC + "trainedAlgorithmicMedia#",
        IPTC + "trainedAlgorithmicMedia/",
        "https://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
        "HTTP://CV.IPTC.ORG/NEWSCODES/DIGITALSOURCETYPE/TRAINEDALGORITHMICMEDIA",
        "https://schema.org/TrainedAlgorithmicMediaDigitalSource",
        "http://schema.org/CompositeWithTrainedAlgorithmicMediaDigitalSource/",
    ],
)
def test_declared_synthetic_is_recognised_however_it_is_written(signer, written: str) -> None:
    path = signer(f"written-{abs(hash(written))}.mp4", [_action("c2pa.created", written)])

    assert (str(R.DECLARED_SYNTHETIC), str(Effect.REJECT)) in _findings(path)


@pytest.mark.parametrize(
    "written", [IPTC + "algorithmicallyEnhanced", "https://schema.org/AlgorithmicallyEnhancedDigitalSource"]
)
def test_algorithmically_enhanced_is_never_a_pass(signer, written: str) -> None:
    """Generative retouching of a real capture (which can be a generated face): at least REVIEW."""
    path = signer(
        f"enhanced-{abs(hash(written))}.mp4",
        [_action("c2pa.created", IPTC + "digitalCapture"), _action("c2pa.edited", written)],
    )

    assert _findings(path) == {(str(R.DECLARED_AI_ENHANCED), str(Effect.NO_PASS))}


def test_a_plain_capture_has_no_finding(signer) -> None:
    assert _findings(signer("capture.mp4", [_action("c2pa.created", IPTC + "digitalCapture")])) == set()


def test_source_types_in_an_ingredient_manifest_are_read() -> None:
    """A store as c2pa-rs reports it: the generated source only in an ingredient's manifest."""
    store = {
        "active_manifest": "urn:a",
        "manifests": {
            "urn:a": {
                "assertions": [
                    {
                        "label": "c2pa.actions",
                        "data": {"actions": [_action("c2pa.edited", IPTC + "minorHumanEdits")]},
                    }
                ]
            },
            "urn:i": {
                "ingredients": [
                    {
                        "title": "x",
                        "data": {"nested": [{"digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]},
                    }
                ]
            },
        },
    }
    summary = summarise_store(store)
    assert {(s["type"], s["manifest"]) for s in summary.source_types} == {
        ("minorHumanEdits", "active"),
        ("trainedAlgorithmicMedia", "ingredient"),
    }


def test_work_is_bounded_and_a_store_beyond_it_is_never_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the node budget the walk stops, and the summary says so; the rules read it as unusable."""
    monkeypatch.setattr(c2pa_manifest, "MAX_STORE_NODES", 1_000)
    actions = [_action("c2pa.edited", IPTC + "minorHumanEdits") for _ in range(2_000)]
    store = {
        "active_manifest": "urn:a",
        "manifests": {"urn:a": {"assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}},
    }

    summary = summarise_store(store)

    assert summary.source_types_complete is False
    assessment = assess(summary.to_dict(), None, received_at=None, policy=ProvenancePolicy())
    assert (R.PROVENANCE_INVALID, Effect.NO_PASS) in {(f.reason, f.effect) for f in assessment.findings}


def test_more_unknown_terms_than_kept_is_never_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c2pa_manifest, "MAX_SOURCE_TYPES", 8)
    actions = [_action("c2pa.edited", f"https://decoy.example/{i}") for i in range(20)]
    store = {
        "active_manifest": "urn:a",
        "manifests": {"urn:a": {"assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}},
    }

    summary = summarise_store(store)

    assert len(summary.source_types) == 8 and summary.source_types_complete is False


@pytest.mark.parametrize(
    ("written", "term"),
    [
        ("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia", "trainedAlgorithmicMedia"),
        ("trainedalgorithmicmedia", "trainedAlgorithmicMedia"),
        ("Iptc4xmpExt:digitalCapture", "digitalCapture"),
        ("https://cv.iptc.org/newscodes/digitalsourcetype#compositeSynthetic", "compositeSynthetic"),
        ("https://schema.org/DigitalCaptureDigitalSource", "digitalCapture"),
        ("  https://schema.org/AlgorithmicMediaDigitalSource#/ ", "algorithmicMedia"),
        ("https://example.com/vocab/somethingElse", "somethingElse"),
    ],
)
def test_source_type_term_normalisation(written: str, term: str) -> None:
    assert source_type_term(written) == term
