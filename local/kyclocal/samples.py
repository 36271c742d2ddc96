"""Sample uploads for `make demo`, made on the spot with PyAV: nothing is downloaded or committed.

Three ordinary clips in different codecs and containers (a drawn face, so the face detector of the
reference model has something to find), and two uploads a hostile or careless client could send (an
HLS playlist named .mp4, an empty file), so the demo shows every path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
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
    red_cast: int | Callable[[float], int] = 0,
    person: int | None = None,
) -> Path:
    """A drawn face that sways a little over a textured background, with sensor-like noise.

    It is no person, but a face detector finds it, so the demo exercises the whole scoring path.
    ``person`` gives the scene a background of its own (panels beside the face, outside its crop):
    clips of different "people" are then no near-duplicates of one another for reuse detection.
    ``red_cast`` may vary over the clip: a function of the frame's time as a fraction of the clip
    (a splice of a genuine and an attack segment, kyclocal.calibration_demo.build_partial_fakes).
    """
    rng = np.random.default_rng(7)
    with av.open(str(path), mode="w", format=muxer) as out:
        stream = out.add_stream(encoder, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = options
        frames = int(fps * seconds)
        for index in range(frames):
            rgb = drawn_face(width, height, sway=int(12 * np.sin(index / 9)))
            if person is not None:
                rgb += side_panels(width, height, person)
            cast = red_cast(index / frames) if callable(red_cast) else red_cast
            rgb[..., 0] += cast  # a colour cast on the whole picture (kyclocal.calibration_demo)
            noise = rng.normal(0, 3, rgb.shape)
            rgb = np.clip(rgb + noise, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def side_panels(width: int, height: int, person: int) -> np.ndarray:
    """Grey blocks, one pattern per ``person``, left and right of the face (more than 130 px from the
    centre, beyond the face crop a model scores), so only the scene differs, never the face."""
    levels = np.random.default_rng(1000 + person).uniform(-90, 90, size=(4, 8))
    ys, xs = np.mgrid[0:height, 0:width]
    block = levels[np.minimum(ys * 4 // height, 3), np.minimum(xs * 8 // width, 7)]
    beside = np.abs(xs - width // 2) > 130
    return np.where(beside, block, 0.0)[..., None].repeat(3, axis=2)


def drawn_face(width: int, height: int, *, sway: int = 0) -> np.ndarray:
    """A frontal cartoon face (skin oval, eyes, brows, nose, mouth, hair) as RGB pixels."""
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.empty((height, width, 3), np.float64)
    rgb[:] = (130, 110, 90)
    cx, cy = width // 2 + sway, height // 2

    def ellipse(x0: float, y0: float, rx: float, ry: float) -> np.ndarray:
        return ((xs - x0) / rx) ** 2 + ((ys - y0) / ry) ** 2 <= 1.0

    rgb[ellipse(cx, cy, 95, 125)] = (225, 180, 150)
    rgb[ellipse(cx, cy - 120, 100, 40) & (ys < cy - 120)] = (40, 30, 30)
    for dx in (-38, 38):
        rgb[ellipse(cx + dx, cy - 30, 20, 10)] = (255, 255, 255)
        rgb[ellipse(cx + dx, cy - 30, 8, 8)] = (20, 30, 40)
        rgb[(abs(xs - (cx + dx)) <= 24) & (abs(ys - (cy - 55)) <= 3)] = (60, 40, 40)
    rgb[(abs(xs - cx + (ys - cy) * 0.15) <= 2) & (ys > cy - 20) & (ys < cy + 25)] = (190, 140, 110)
    rgb[ellipse(cx, cy + 60, 35, 12) & (ys >= cy + 60)] = (150, 60, 60)
    return rgb


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
