"""Partial fakes: the largest fake share of a clip that still PASSes, before and after the
sustained-fake-frames rule (issue 24; docs/decision-policy.md, "Sustained fake frames").

Usage: .venv/bin/python benchmarks/partial_fakes.py [--frames 8 32] [--no-clips] -> a table on stdout.

Two measurements, both through ``kyc.domain.policy.decide_outcome`` (the decide function's code):
1. Scores by construction (the issue's attacker): genuine frames at 0.01, a confident attack stretch
   at 0.99 (and a weaker one at 0.85), contiguous at the start, middle or end of the sampled frames,
   or spread evenly (every k-th frame); every fake frame count from 0 to n. Default policy
   (thresholds 0.2 / 0.9, ``mean_logit``).
2. Real clips: ``kyclocal.calibration_demo.build_partial_fakes`` splices of the toy's genuine colour and
   its strongest attack cast (10-50 % of the clip at the start, middle or end), sampled by the
   extractor's own code (PyAV, unpredictable times) and scored by the calibration demo's toy ONNX
   model in process; policy thresholds 0.3 / 0.8 as `make calibration-demo` calibrates them. APCER
   is reported per attack type (position) and per fake share; the worst species is the headline.
"Before" is the same policy with the rule switched off (max_fake_run_frames and
max_fake_frame_fraction at their no-op values).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from kyc.domain.outcomes import Decision
from kyc.domain.policy import DecisionPolicy, FrameEvidence, decide_outcome

POSITIONS = ("start", "middle", "end", "spread")


def rule_off(policy: DecisionPolicy) -> DecisionPolicy:
    return replace(policy, max_fake_run_frames=10**6, max_fake_frame_fraction=1.0)


def fake_positions(n: int, k: int, position: str) -> set[int]:
    if k == 0:
        return set()
    if position == "start":
        return set(range(k))
    if position == "end":
        return set(range(n - k, n))
    if position == "middle":
        first = (n - k) // 2
        return set(range(first, first + k))
    return {round(i * n / k) for i in range(k)}  # spread: as far apart as the count allows


def constructed(
    n: int, k: int, position: str, attack_p: float, genuine_p: float = 0.01
) -> list[FrameEvidence]:
    fake = fake_positions(n, k, position)
    return [FrameEvidence(f"{i:03d}", attack_p if i in fake else genuine_p, 1) for i in range(n)]


def largest_passing_share(n: int, position: str, attack_p: float, policy: DecisionPolicy) -> float:
    passing = [
        k
        for k in range(n + 1)
        if decide_outcome(constructed(n, k, position, attack_p), frames_sampled=n, policy=policy).decision
        == Decision.PASS
    ]
    return max(passing) / n if passing else float("nan")


def constructed_table(frames: list[int]) -> None:
    print("1. constructed scores: largest share of sampled frames that can be fake and still PASS")
    print("   (default policy: mean_logit, pass < 0.2, reject >= 0.9; genuine frames 0.01)")
    print(f"   {'frames':>6} {'attack p':>8} {'position':>8} {'before':>8} {'after':>8}")
    for n in frames:
        policy = DecisionPolicy(min_frames_scored=min(8, n))
        for attack_p in (0.99, 0.85):
            for position in POSITIONS:
                before = largest_passing_share(n, position, attack_p, rule_off(policy))
                after = largest_passing_share(n, position, attack_p, policy)
                print(f"   {n:>6} {attack_p:>8.2f} {position:>8} {before:>8.1%} {after:>8.1%}")


def clip_table(frames: list[int]) -> None:
    from kyc.domain.contract import FrameImage
    from kyc.media.limits import MediaLimits
    from kyc.media.sampling import SamplingParams, sample_frames
    from kyclocal.calibration_demo import PARTIAL_SHARES, build_partial_fakes, write_demo_model
    from kycserve import load_model

    print("\n2. real clips (toy model, splices 10-50 %), thresholds 0.3 / 0.8 as `make calibration-demo`:")
    with tempfile.TemporaryDirectory(prefix="kyc-partial-") as tmp:
        directory = Path(tmp)
        model = load_model("onnx", onnx_config=write_demo_model(directory / "model"))
        labels = build_partial_fakes(directory / "clips")
        rows = [line.split(",") for line in labels.read_text().splitlines()[1:]]
        for n in frames:
            policy = DecisionPolicy(pass_threshold=0.3, reject_threshold=0.8, min_frames_scored=min(8, n))
            outcomes: dict[str, list[tuple[str, float, str, str]]] = defaultdict(list)
            for name, _label, kind, share in rows:
                sample = sample_frames(
                    directory / "clips" / name, SamplingParams(frame_count=n), MediaLimits()
                )
                images = [FrameImage(f"{f.index:03d}", f.content_type, f.data) for f in sample.frames]
                scores = model.predict(images)
                evidence = [
                    FrameEvidence(
                        s.frame_id,
                        s.p_fake,
                        len(s.faces) if s.faces else (0 if "no_face" in s.quality else None),
                    )
                    for s in scores
                ]
                for label, applied in (("before", rule_off(policy)), ("after", policy)):
                    verdict = decide_outcome(evidence, frames_sampled=len(evidence), policy=applied)
                    outcomes[label].append(
                        (kind, float(share), str(verdict.decision), f"{verdict.score:.3f}")
                    )
            for label in ("before", "after"):
                got = outcomes[label]
                by_type = defaultdict(list)
                by_share = defaultdict(list)
                for kind, share, decision, _ in got:
                    by_type[kind].append(decision)
                    by_share[share].append(decision)
                worst = max(by_type.items(), key=lambda kv: kv[1].count("PASS") / len(kv[1]))
                passing = [share for kind, share, decision, _ in got if decision == "PASS"]
                print(
                    f"   {n} frames, {label:6}: APCER worst species {worst[0]} "
                    f"{worst[1].count('PASS')}/{len(worst[1])}; largest passing share "
                    f"{max(passing):.0%}"
                    if passing
                    else f"   {n} frames, {label:6}: APCER 0 (no splice PASSes)"
                )
                print(
                    "      APCER per type:  "
                    + ", ".join(f"{k} {v.count('PASS')}/{len(v)}" for k, v in sorted(by_type.items()))
                )
                print(
                    "      APCER per share: "
                    + ", ".join(
                        f"{s:.0%} {by_share[s].count('PASS')}/{len(by_share[s])}" for s in PARTIAL_SHARES
                    )
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--no-clips", action="store_true", help="only the constructed-score table")
    args = parser.parse_args(argv)
    constructed_table(args.frames)
    if not args.no_clips:
        clip_table(args.frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
