"""H.264 reference flags read from real encoder output."""

from __future__ import annotations

from pathlib import Path

import av

from kyc.media.nal import avcc_length_size, is_disposable_h264
from tests.fixtures.sampling_clips import make_index_clip


def _packets(path: Path) -> tuple[list[bytes], list[bool], int | None]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        size = avcc_length_size(stream.codec_context.extradata)
        packets = [p for p in container.demux(stream) if p.size]
        return [bytes(p) for p in packets], [p.is_keyframe for p in packets], size


def test_nal_b_pyramid_clip_has_disposable_b_frames_and_no_disposable_keyframe(tmp_path: Path) -> None:
    clip = make_index_clip(tmp_path / "b.mp4", [i / 30 for i in range(48)], bframes=3, gop=24)
    data, keyframes, length_size = _packets(clip)

    disposable = [is_disposable_h264(d, length_size) for d in data]

    assert length_size == 4
    assert 0 < sum(disposable) < len(data)
    assert not any(d for d, key in zip(disposable, keyframes, strict=True) if key)


def test_nal_clip_without_b_frames_has_nothing_disposable(tmp_path: Path) -> None:
    clip = make_index_clip(tmp_path / "p.mp4", [i / 30 for i in range(24)], bframes=0, gop=12)
    data, _, length_size = _packets(clip)

    assert not any(is_disposable_h264(d, length_size) for d in data)


def test_nal_malformed_or_truncated_data_is_never_disposable() -> None:
    assert not is_disposable_h264(b"", 4)
    assert not is_disposable_h264(b"\x00\x00\x00\x09\x01", 4)  # length runs past the end
    assert not is_disposable_h264(b"\x00\x00\x00\x01\x09", 4)  # an access unit delimiter, no slice
    assert is_disposable_h264(b"\x00\x00\x00\x02\x01\x88", 4)  # one slice, nal_ref_idc 0
    assert not is_disposable_h264(b"\x00\x00\x00\x02\x21\x88", 4)  # nal_ref_idc 1
    assert is_disposable_h264(b"\x00\x00\x01\x01\x88", None)  # Annex-B start code
    assert avcc_length_size(b"\x01\x64\x00\x1f\xff") == 4
    assert avcc_length_size(b"\x00\x00\x00\x01") is None
