"""How far decoys get: the share of sampled frames that are decoys against the share of screen time
they hold, over many sampling seeds (issue 22).

The attacker knows the sampler's rule (docs/sampling.md) but not the per-submission seed. Each
clip is a 30 fps index clip (every frame shows its own number, so a sampled image says which
frame it is) with a decoy shown for ``hold`` ms around the centre of every one of the 32 bins,
where the sampler's targets lay before they were jittered; the genuine frame resumes after it.
For each hold the benchmark prints the decoys' share of screen time, their share of the sampled
frames with the old fixed bin-centre targets and with secret jitter, and how often a sample
holding a decoy also carries the short-frame finding (SHORT_FRAME_SAMPLED: no PASS; it fires on
any sampled frame shown under half a typical frame, the decoy or the genuine frame it cut short).

    .venv/bin/python benchmarks/decoys.py [--seeds 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the index-clip generator lives with the tests

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from kyc.media.limits import MediaLimits  # noqa: E402
from kyc.media.sampling import SamplingParams, sample_frames  # noqa: E402
from tests.fixtures.sampling_clips import make_index_clip, read_index  # noqa: E402

FPS, SECONDS, TARGETS = 30, 4, 32
HOLDS_MS = (2, 8, 16, 24, 33)


def decoy_clip(path: Path, hold_ms: int) -> tuple[Path, set[int], float]:
    """The clip, the positions of its decoy frames and their share of screen time."""
    frame_ms = 1000 / FPS
    bin_ms = SECONDS * 1000 / TARGETS
    centres = [(i + 0.5) * bin_ms for i in range(TARGETS)]
    events: list[tuple[float, str]] = [(i * frame_ms, "genuine") for i in range(FPS * SECONDS)]
    for centre in centres:
        events += [(round(centre - hold_ms / 2), "decoy"), (round(centre - hold_ms / 2) + hold_ms, "resume")]
    events.sort()
    times, decoys, last = [], set(), -1.0
    for at, kind in events:
        at = float(round(at))
        if at <= last:
            continue
        if kind == "decoy":
            decoys.add(len(times))
        times.append(at / 1000)
        last = at
    end = SECONDS
    shown = [(b - a) for a, b in zip(times, [*times[1:], end], strict=True)]
    share = sum(shown[i] for i in decoys) / end
    return make_index_clip(path, times, bframes=0, gop=30), decoys, share


def decoy_share(clip: Path, decoys: set[int], seed: str) -> tuple[float, bool]:
    sample = sample_frames(
        clip, SamplingParams(frame_count=TARGETS, image_format="png"), MediaLimits(), seed=seed
    )
    picked = [
        read_index(cv2.imdecode(np.frombuffer(f.data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1])
        for f in sample.frames
    ]
    hit = sum(index in decoys for index in picked)
    return hit / len(picked), bool(sample.briefly_shown)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    print(f"{FPS} fps, {SECONDS} s, {TARGETS} targets, decoys at the old bin centres; {args.seeds} seeds")
    print(f"{'hold ms':>8}{'screen %':>10}{'centres %':>11}{'jitter %':>10}{'max %':>8}{'flagged %':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for hold in HOLDS_MS:
            clip, decoys, screen = decoy_clip(Path(tmp) / f"decoys_{hold}.mp4", hold)
            # 00..00 is no special seed: the old fixed targets are the bin centres, measured by
            # hand here through a seed whose offsets are replaced by 0.5 (sampling_plan without a seed).
            from kyc.domain import sampling_plan

            original = sampling_plan.bin_offsets
            sampling_plan.bin_offsets = lambda seed, count: (0.5,) * count
            try:
                centred, _ = decoy_share(clip, decoys, "00" * 16)
            finally:
                sampling_plan.bin_offsets = original
            runs = [decoy_share(clip, decoys, f"{k:032x}") for k in range(1, args.seeds + 1)]
            shares = [share for share, _ in runs]
            with_decoy = [caught for share, caught in runs if share > 0]
            caught = 100 * sum(with_decoy) / len(with_decoy) if with_decoy else float("nan")
            print(
                f"{hold:>8}{100 * screen:>10.1f}{100 * centred:>11.1f}{100 * np.mean(shares):>10.1f}"
                f"{100 * max(shares):>8.1f}{caught:>11.0f}"
            )


if __name__ == "__main__":
    main()
