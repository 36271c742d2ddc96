"""Frame extraction benchmark: our sampler vs decode-everything vs the ffmpeg command.

Each method runs as its own process, so start-up, imports and peak memory (``ru_maxrss`` of the
child) are counted the same way for all three. The clips are generated once into a cache dir.

    .venv/bin/python benchmarks/extract.py [--cache build/bench] [--repeat 3] [--no-4k]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

FRAMES = 32


@dataclass(frozen=True)
class Clip:
    name: str
    width: int
    height: int
    fps: int
    seconds: int
    gop: int


CLIPS = {
    "1080p30": Clip("bench_1080p30_gop60_b3.mp4", 1920, 1080, 30, 30, 60),
    "4k60": Clip("bench_2160p60_gop120_b3.mp4", 3840, 2160, 60, 3, 120),
}


def generate(clip: Clip, cache: Path) -> Path:
    """H.264 High, B-frames, fixed GOP; moving gradient plus noise so the encoder does real work."""
    import av
    import numpy as np

    path = cache / clip.name
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.mp4")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 24, (clip.height, clip.width), dtype=np.uint8)
    ys, xs = np.mgrid[0 : clip.height, 0 : clip.width]
    with av.open(str(partial), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=clip.fps)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        params = f"keyint={clip.gop}:min-keyint={clip.gop}:scenecut=0:bframes=3"
        stream.options = {"preset": "superfast", "crf": "23", "x264-params": params}
        for index in range(clip.fps * clip.seconds):
            luma = ((xs + ys + index * 8) % 256).astype(np.uint8) // 2 + noise
            frame = av.VideoFrame(clip.width, clip.height, "yuv420p")
            frame.planes[0].update(np.ascontiguousarray(luma[:, : frame.planes[0].line_size]).tobytes())
            for plane in frame.planes[1:]:
                plane.update(bytes([128 + (index % 64)]) * plane.buffer_size)
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    partial.rename(path)
    return path


def run_ours(path: str) -> None:
    from kyc.media.limits import MediaLimits
    from kyc.media.sampling import SamplingParams, sample_frames

    sample = sample_frames(path, SamplingParams(frame_count=FRAMES), MediaLimits())
    print(f"frames={len(sample.frames)} decoded={sample.decoded_frames}", file=sys.stderr)


def run_sandboxed(path: str) -> None:
    """The same sampling, as the extract function runs it: in a forked, limited child."""
    from kyc.media.isolated import sample_isolated
    from kyc.media.limits import MediaLimits
    from kyc.media.sampling import SamplingParams
    from kyc.media.sandbox import SandboxLimits

    limits = MediaLimits()
    sandbox = SandboxLimits.for_function(memory_mb=2048, remaining_s=300, budget_s=limits.decode_budget_s)
    sample, usage = sample_isolated(path, SamplingParams(frame_count=FRAMES), limits, sandbox)
    print(f"frames={len(sample.frames)} child_wall={usage.wall_s:.2f}", file=sys.stderr)


def run_timeline(path: str) -> None:
    """The demux-only pass that measures the span the targets cover (part of ``ours``)."""
    from kyc.media.limits import MediaLimits
    from kyc.media.sampling import measure_timeline

    timeline = measure_timeline(path, MediaLimits())
    print(f"span={timeline.duration_s:.3f}", file=sys.stderr)


def run_naive(path: str) -> None:
    """Decode every frame to RGB, keep 32 evenly spaced: what a first attempt usually does."""
    import av

    kept = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = stream.frames
        wanted = {round((i + 0.5) * total / FRAMES) for i in range(FRAMES)}
        for index, frame in enumerate(container.decode(stream)):
            rgb = frame.to_ndarray(format="rgb24")
            if index in wanted:
                kept.append(rgb)
    print(f"frames={len(kept)} decoded={index + 1}", file=sys.stderr)


def measure(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {child.stderr.read().decode()[-500:]}")
    child.stderr.close()
    return elapsed, usage.ru_maxrss / 1024


def commands(path: Path, seconds: int) -> dict[str, list[str]]:
    me = [sys.executable, str(Path(__file__).resolve())]
    kycscreen = Path(sys.executable).with_name("kycscreen")
    found = {
        "ours (sample_frames)": [*me, "--run", "ours", str(path)],
        "ours, sandboxed": [*me, "--run", "sandboxed", str(path)],
        "  timeline pass alone": [*me, "--run", "timeline", str(path)],
        "naive decode-all": [*me, "--run", "naive", str(path)],
    }
    if kycscreen.exists():  # the whole command a person runs: start-up, imports, validation, JPEG files
        out = Path(os.environ.get("TMPDIR", "/tmp")) / f"kyc-bench-extract-{os.getpid()}"
        found["kycscreen extract (CLI)"] = [str(kycscreen), "extract", str(path), "--out", str(out)]
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        found["ffmpeg -vf fps -> rgb24"] = [
            ffmpeg, "-nostdin", "-v", "error", "-i", str(path),
            "-vf", f"fps={FRAMES}/{seconds}", "-pix_fmt", "rgb24", "-f", "rawvideo", "-y", os.devnull,
        ]  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", choices=["ours", "sandboxed", "timeline", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("path", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, default=Path("build/bench"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-4k", action="store_true", help="skip the 4K60 memory check")
    args = parser.parse_args()
    if args.run:
        runners = {"ours": run_ours, "sandboxed": run_sandboxed, "timeline": run_timeline, "naive": run_naive}
        runners[args.run](args.path)
        return
    print(
        f"cores={os.cpu_count()} python={sys.version.split()[0]} ffmpeg={shutil.which('ffmpeg') or 'absent'}"
    )
    for key, clip in CLIPS.items():
        if key == "4k60" and args.no_4k:
            continue
        path = generate(clip, args.cache)
        shape = f"{clip.width}x{clip.height} {clip.fps} fps {clip.seconds} s, GOP {clip.gop}, B-frames"
        print(f"\n{key}: {shape}; {FRAMES} frames; median of {args.repeat}")
        print(f"{'method':<26}{'wall s':>9}{'peak RSS MB':>13}")
        walls: dict[str, float] = {}
        for label, argv in commands(path, clip.seconds).items():
            runs = [measure(argv) for _ in range(args.repeat)]
            wall = walls[label] = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            print(f"{label:<26}{wall:>9.2f}{rss:>13.0f}")
        if "ours, sandboxed" in walls and "ours (sample_frames)" in walls:
            cost = walls["ours, sandboxed"] / walls["ours (sample_frames)"] - 1
            print(f"sandbox cost: {cost:+.1%} of the extract time")
        ffmpeg_wall = walls.get("ffmpeg -vf fps -> rgb24")
        if ffmpeg_wall and "kycscreen extract (CLI)" in walls:
            ratio = walls["kycscreen extract (CLI)"] / ffmpeg_wall
            print(f"kycscreen extract / ffmpeg: {ratio:.2f} (goal <= 0.8)")
        if not shutil.which("ffmpeg"):
            print("(ffmpeg not installed: comparison skipped)")


if __name__ == "__main__":
    main()
