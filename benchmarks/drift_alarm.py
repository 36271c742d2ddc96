"""DecisionsDriftAlarm: how often it pages on a healthy window, and how large a shift it catches.

Simulates hourly windows of decisions drawn from a mix (multinomial over the 3 outcomes, and over the 5
score bands), turns each decision into the deviations decide emits (``kyc.domain.drift``, the one
implementation) and applies the alarm's rule as template.yaml states it: largest S_c^2 / n over the
categories >= DRIFT_ALARM_Z^2, with at least ``--guard`` decisions. Prints, per case, the share of
windows that page. Outcomes and bands are drawn independently (the alarm reads them separately);
real traffic couples them, which does not change either family's own rate.

    .venv/bin/python benchmarks/drift_alarm.py            # figures for docs/runbook.md 1.27
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from kyc.domain.drift import DRIFT_ALARM_Z, SCORE_BANDS, WATCHED_OUTCOMES, DriftBaseline

DEFAULT = DriftBaseline((90.0, 8.0, 2.0), (80.0, 10.0, 5.0, 3.0, 2.0))
# the review's case: the fakes (the 10 % that were REVIEW/REJECT, bands 20-100) now PASS scored < 0.1
FAKES_PASS = ((100.0, 0.0, 0.0), (90.0, 10.0, 0.0, 0.0, 0.0))


def _member_values(baseline: DriftBaseline) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(d if in c, d if not) per outcome and per band, read from the domain's own deviations."""
    out_in, out_not, band_in, band_not = [], [], [], []
    some_band_score = {b: s for b, s in zip(SCORE_BANDS, (0.05, 0.15, 0.3, 0.6, 0.95), strict=True)}
    for outcome in WATCHED_OUTCOMES:
        mine, _ = baseline.deviations(outcome, None)
        other = next(o for o in WATCHED_OUTCOMES if o != outcome)
        theirs, _ = baseline.deviations(other, None)
        out_in.append(mine[outcome])
        out_not.append(theirs[outcome])
    for band, score in some_band_score.items():
        _, mine = baseline.deviations("PASS", score)
        other = next(s for b, s in some_band_score.items() if b != band)
        _, theirs = baseline.deviations("PASS", other)
        band_in.append(mine[band])
        band_not.append(theirs[band])
    return np.array(out_in), np.array(out_not), np.array(band_in), np.array(band_not)


def page_rate(
    baseline: DriftBaseline,
    true_outcomes: tuple[float, ...],
    true_bands: tuple[float, ...],
    n: int,
    guard: int,
    windows: int,
    rng: np.random.Generator,
) -> float:
    """Share of ``windows`` windows of ``n`` decisions from the true mix that page against ``baseline``."""
    if n < guard:
        return 0.0
    out_in, out_not, band_in, band_not = _member_values(baseline)
    outcomes = rng.multinomial(n, np.array(true_outcomes) / sum(true_outcomes), size=windows)
    bands = rng.multinomial(n, np.array(true_bands) / sum(true_bands), size=windows)
    s_out = outcomes * out_in + (n - outcomes) * out_not
    s_band = bands * band_in + (n - bands) * band_not
    largest = np.maximum((s_out**2).max(axis=1), (s_band**2).max(axis=1)) / n
    return float((largest >= DRIFT_ALARM_Z**2).mean())


def estimated_baseline_rate(
    n_baseline: int, n: int, guard: int, windows: int, rng: np.random.Generator
) -> float:
    """False pages when the baseline itself was measured on ``n_baseline`` re-screened decisions."""
    fired = 0
    batches = 200
    for _ in range(batches):
        o = rng.multinomial(n_baseline, np.array(DEFAULT.outcome_percent) / 100)
        b = rng.multinomial(n_baseline, np.array(DEFAULT.band_percent) / 100)
        measured = DriftBaseline(tuple(100 * o / n_baseline), tuple(100 * b / n_baseline), n_baseline)
        fired += page_rate(
            measured, DEFAULT.outcome_percent, DEFAULT.band_percent, n, guard, windows // batches, rng
        ) * (windows // batches)
    return fired / (batches * (windows // batches))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=200_000)
    parser.add_argument("--guard", type=int, default=30, help="DriftMinDecisions")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    figures: dict[str, dict[str, float]] = {
        "false_page": {},
        "false_page_estimated_baseline": {},
        "power": {},
    }
    print(f"DecisionsDriftAlarm: z = {DRIFT_ALARM_Z:g}, guard {args.guard}, {args.windows} windows per case")
    print("\nfalse pages per window, traffic exactly at the default mix (90,8,2 / 80,10,5,3,2):")
    for n in (30, 100, 300, 1000):
        rate = page_rate(
            DEFAULT, DEFAULT.outcome_percent, DEFAULT.band_percent, n, args.guard, args.windows, rng
        )
        figures["false_page"][str(n)] = rate
        print(f"  n = {n:>5} decisions: {rate:.2e}  (hourly windows: one false page per {_every(rate)})")
    print("\nfalse pages per window when the baseline was measured on a re-screen of n_b decisions:")
    for n_b, n in ((100, 100), (300, 100), (1000, 100), (1000, 1000), (10_000, 1000)):
        rate = estimated_baseline_rate(n_b, n, args.guard, args.windows, rng)
        figures["false_page_estimated_baseline"][f"{n_b}/{n}"] = rate
        print(f"  n_b = {n_b:>6}, window n = {n:>5}: {rate:.2e}")
    print("\nprobability of a page, true mix moved (against the default mix):")
    cases = {
        "PASS 90->80 (to REVIEW)": ((80.0, 18.0, 2.0), DEFAULT.band_percent),
        "PASS 90->70 (to REVIEW)": ((70.0, 28.0, 2.0), DEFAULT.band_percent),
        "PASS 90->60 (to REVIEW)": ((60.0, 38.0, 2.0), DEFAULT.band_percent),
        "REJECT 2->12 (from PASS)": ((80.0, 8.0, 12.0), DEFAULT.band_percent),
        "fakes now PASS (100,0,0 / 90,10,0,0,0)": FAKES_PASS,
    }
    for name, (outcomes, bands) in cases.items():
        row = {}
        for n in (30, 100, 225, 300, 1000):
            row[str(n)] = page_rate(DEFAULT, outcomes, bands, n, args.guard, args.windows // 10, rng)
        figures["power"][name] = row
        print(f"  {name:<40}" + "  ".join(f"n={n}: {v:.3f}" for n, v in row.items()))
    print(f"\n{time.perf_counter() - started:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def _every(rate: float) -> str:
    if rate == 0:
        return "more hours than simulated"
    hours = 1 / rate
    return f"{hours:,.0f} h ({hours / 24:,.0f} days)"


if __name__ == "__main__":
    raise SystemExit(main())
