"""The C2PA reader on clips signed at test time (a throw-away CA), tampered, unsigned and hostile.

Oracles: what each clip was made with (the source type we declared, the byte we flipped, the CA we
trusted or not), and a local HTTP listener that counts every request the reader makes.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import c2pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyc.media import c2pa_manifest, isolated
from kyc.media.c2pa_manifest import C2paConfig, read_c2pa, reader_settings
from kyc.media.isolated import read_c2pa_isolated
from kyc.media.sandbox import SandboxLimits
from tests.fixtures.c2pa_clips import C2PA_UUID, inflate_manifest, make_ca, manifest, signed_set
from tests.fixtures.clips import make_clip

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus" / "media"
SANDBOX = SandboxLimits(memory_bytes=1 << 30, cpu_s=30, wall_s=20)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("c2pa")
    ca = make_ca()
    clip = make_clip(root / "clip.mp4", width=320, height=240, fps=15, seconds=1.0)
    files = signed_set(clip, root, ca)
    files["webm"] = make_clip(root / "clip.webm", codec="vp9", container="webm", seconds=1.0)
    files["huge"] = inflate_manifest(files["synthetic"], root / "huge.mp4", extra=5 * 1024 * 1024)
    (root / "ca.pem").write_bytes(ca.root_pem)
    (root / "other-ca.pem").write_bytes(make_ca().root_pem)
    return files | {"ca": root / "ca.pem", "other_ca": root / "other-ca.pem"}


def test_declared_synthetic_is_read_with_its_signer_untrusted_by_default(made: dict[str, Path]) -> None:
    summary = read_c2pa(made["synthetic"], C2paConfig())

    assert summary.state == "present" and summary.validation_state == "Valid"
    assert [s["type"] for s in summary.source_types] == ["trainedAlgorithmicMedia"]
    assert summary.source_types[0]["manifest"] == "active"
    assert summary.actions[0]["action"] == "c2pa.created"
    assert summary.claim_generator == "kycscreen-test-generator 1.0"
    assert summary.signer and summary.signer["common_name"] == "Test Signer"
    # the bundled default trust list is empty: a fresh CA's signer is not trusted
    assert summary.trust == "untrusted" and summary.failures == ["signingCredential.untrusted"]


def test_trust_anchor_from_configuration_makes_the_signer_trusted(made: dict[str, Path]) -> None:
    trusted = read_c2pa(made["synthetic"], C2paConfig(trust_anchors_pem=made["ca"].read_text()))
    other = read_c2pa(made["synthetic"], C2paConfig(trust_anchors_pem=made["other_ca"].read_text()))

    assert trusted.trust == "trusted" and trusted.validation_state == "Trusted" and trusted.failures == []
    assert other.trust == "untrusted" and "signingCredential.untrusted" in other.failures


def test_capture_manifest_is_recorded_as_declared(made: dict[str, Path]) -> None:
    summary = read_c2pa(made["captured"], C2paConfig())

    assert [s["type"] for s in summary.source_types] == ["digitalCapture"]
    assert summary.claim_generator == "Camera 1.0"


def test_content_edited_after_signing_fails_the_hash(made: dict[str, Path]) -> None:
    summary = read_c2pa(made["tampered"], C2paConfig())

    assert summary.state == "present" and summary.validation_state == "Invalid"
    assert "assertion.bmffHash.mismatch" in summary.failures


def test_unsigned_clip_has_no_manifest(made: dict[str, Path]) -> None:
    assert read_c2pa(made["unsigned"], C2paConfig()).state == "absent"


@pytest.mark.parametrize(
    "name", ["axm__dolbyVision-hdr.MOV", "axm__portrait_4k60.mp4", "axm__pixel7_videoOnly_cleaned.mp4"]
)
def test_corpus_phone_clips_carry_no_manifest(name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip("corpus not present")
    assert read_c2pa(path, C2paConfig()).state == "absent"


def test_container_the_reader_cannot_parse_without_a_c2pa_box_is_absent_not_invalid() -> None:
    path = CORPUS / "mp4parse__no_timescale.mp4"  # c2pa-rs: "Box size extends beyond asset bounds"
    if not path.exists():
        pytest.skip("corpus not present")

    summary = read_c2pa(path, C2paConfig())

    assert summary.state == "absent" and "reader failed" in (summary.detail or "")


def test_webm_is_not_looked_into(made: dict[str, Path]) -> None:
    assert read_c2pa(made["webm"], C2paConfig()).state == "unsupported"


def test_garbage_manifest_store_is_unreadable_not_an_exception(made: dict[str, Path]) -> None:
    summary = read_c2pa(made["garbage"], C2paConfig())

    assert summary.state == "unreadable" and summary.detail


def test_huge_manifest_store_is_not_parsed(made: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_reader(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reader must not be called on an oversized manifest store")

    monkeypatch.setattr(c2pa, "Reader", no_reader)
    summary = read_c2pa(made["huge"], C2paConfig(max_manifest_bytes=4 * 1024 * 1024))

    assert summary.state == "oversized" and summary.manifest_bytes > 5 * 1024 * 1024


def test_reader_settings_close_every_network_path() -> None:
    settings = reader_settings(C2paConfig())

    assert settings["verify"]["remote_manifest_fetch"] is False and settings["verify"]["ocsp_fetch"] is False
    assert settings["core"]["allowed_network_hosts"] == []
    assert "trust" not in settings  # bundled default: no trust anchors


class _Listener:
    """Counts requests on 127.0.0.1; every answer is a 404."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/manifest.c2pa"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_remote_manifest_is_never_fetched(made: dict[str, Path], tmp_path: Path) -> None:
    listener = _Listener()
    try:
        ca = make_ca()
        builder = c2pa.Builder(manifest("trainedAlgorithmicMedia"))
        builder.set_no_embed()
        builder.set_remote_url(listener.url)
        out = io.BytesIO()
        with made["unsigned"].open("rb") as source:
            builder.sign(ca.signer(), "video/mp4", source, out)
        remote = tmp_path / "remote.mp4"
        remote.write_bytes(out.getvalue())

        summary = read_c2pa(remote, C2paConfig())
        time.sleep(0.3)
        assert listener.hits == []
        assert summary.state == "remote" and listener.url in (summary.remote_url or "")

        # positive control: the same file read with fetching allowed does reach the listener, so it is
        # our settings that keep the reader offline (the SDK ignores setting keys it does not know)
        context = c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": True}})
        with pytest.raises(c2pa.C2paError):
            c2pa.Reader("video/mp4", io.BytesIO(remote.read_bytes()), context=context)
        time.sleep(0.3)
        assert listener.hits, "the positive control made no request"
    finally:
        listener.close()


def test_sandboxed_read_matches_the_direct_read(made: dict[str, Path]) -> None:
    summary, usage = read_c2pa_isolated(made["synthetic"], C2paConfig(), SANDBOX)

    assert summary == read_c2pa(made["synthetic"], C2paConfig())
    assert usage is not None and usage.wall_s < SANDBOX.wall_s


def test_reader_that_crashes_costs_the_manifest_not_the_pipeline(
    made: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(path: object, config: object) -> None:  # what a native reader fault looks like
        os.kill(os.getpid(), signal.SIGSEGV)

    monkeypatch.setattr(isolated, "read_c2pa", crash)
    summary, usage = read_c2pa_isolated(made["synthetic"], C2paConfig(), SANDBOX)

    assert summary.state == "unreadable" and "DECODER_CRASHED" in (summary.detail or "")
    assert usage is None


def test_reader_that_hangs_is_stopped_at_the_deadline(
    made: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def hang(path: object, config: object) -> None:
        time.sleep(60)

    monkeypatch.setattr(isolated, "read_c2pa", hang)
    started = time.monotonic()
    summary, _ = read_c2pa_isolated(made["synthetic"], C2paConfig(), SandboxLimits(1 << 30, 10, 1.0))

    assert summary.state == "unreadable" and "DECODE_BUDGET_EXCEEDED" in (summary.detail or "")
    assert time.monotonic() - started < 10


def test_manifest_text_is_bounded_and_printable() -> None:
    store = {
        "active_manifest": "m",
        "manifests": {
            "m": {
                "claim_generator_info": [{"name": "x\x07" * 400, "version": "1"}],
                "assertions": [
                    {
                        "label": "c2pa.actions",
                        "data": {"actions": [{"action": "c2pa.edited", "digitalSourceType": "y" * 999}] * 50},
                    }
                ],
            }
        },
    }
    summary = c2pa_manifest.summarise_store(store)

    assert (
        len(summary.claim_generator or "") <= c2pa_manifest.MAX_TEXT and "\x07" not in summary.claim_generator
    )
    assert len(summary.actions) == c2pa_manifest.MAX_ITEMS
    assert all(len(s["uri"]) <= c2pa_manifest.MAX_TEXT for s in summary.source_types)


STATES = {"absent", "present", "unsupported", "remote", "oversized", "unreadable"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_manifest_stores_always_end_in_a_summary(made: dict[str, Path], tmp_path: Path, data) -> None:
    """Noise in the C2PA box, a signed store cut or corrupted at a random place: the sandboxed read
    always answers with a bounded summary, whatever the bytes."""
    signed = made["synthetic"].read_bytes()
    at = signed.find(C2PA_UUID) - 8
    size = int.from_bytes(signed[at : at + 4], "big")
    kind = data.draw(st.sampled_from(["noise", "flip", "cut"]))
    body = bytearray(signed)
    if kind == "noise":
        payload = data.draw(st.binary(min_size=0, max_size=4096))
        box = (8 + 16 + len(payload)).to_bytes(4, "big") + b"uuid" + C2PA_UUID + payload
        body = bytearray(made["unsigned"].read_bytes() + box)
    elif kind == "flip":
        for offset in data.draw(st.lists(st.integers(at + 24, at + size - 1), min_size=1, max_size=8)):
            body[offset] ^= data.draw(st.integers(1, 255))
    else:  # the store ends early but its box still claims the full size
        cut = data.draw(st.integers(at + 24, at + size - 1))
        body = body[:cut]
    path = tmp_path / f"hostile-{kind}.mp4"
    path.write_bytes(bytes(body))

    summary, _ = read_c2pa_isolated(path, C2paConfig(), SANDBOX)

    assert summary.state in STATES
    assert len(json.dumps(summary.to_dict())) < 16_384
