"""Sample uploads for `make demo`, made on the spot with PyAV: nothing is downloaded or committed.

Three ordinary clips in different codecs and containers, and two uploads a hostile or careless
client could send (an HLS playlist named .mp4, an empty file), so the demo shows every path.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

_CLIPS = (
    ("selfie-h264.mp4", "mp4", "libx264", {"preset": "veryfast"}),
    ("selfie-hevc.mov", "mov", "libx265", {"preset": "ultrafast", "x265-params": "log-level=none"}),
    ("selfie-vp9.webm", "webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
)


def write_clip(
    path: Path,
    muxer: str,
    encoder: str,
    options: dict[str, str],
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    seconds: float = 3.0,
) -> Path:
    """A moving test pattern with a bright disc (a stand-in for a face the size a selfie shows)."""
    with av.open(str(path), mode="w", format=muxer) as out:
        stream = out.add_stream(encoder, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        ys, xs = np.mgrid[0:height, 0:width]
        for index in range(int(fps * seconds)):
            cx, cy = width / 2 + 20 * np.sin(index / 10), height / 2
            disc = ((xs - cx) ** 2 + (ys - cy) ** 2) < (height / 4) ** 2
            rgb = np.stack([(xs + index * 3) % 256, ys % 256, np.full_like(xs, 90)], axis=-1).astype(np.uint8)
            rgb[disc] = (224, 172, 150)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def build_samples(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_clip(out_dir / name, muxer, encoder, options) for name, muxer, encoder, options in _CLIPS]
    playlist = out_dir / "playlist-named-as-video.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    empty = out_dir / "empty-upload.mp4"
    empty.write_bytes(b"")
    return [*paths, playlist, empty]


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/samples")
    for sample in build_samples(target):
        print(sample)
