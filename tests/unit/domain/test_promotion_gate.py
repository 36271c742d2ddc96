"""The gate's targets apply to the 95 % Wilson upper bound of APCER per attack type (issue 21 item 2).

Every expected bound and count is worked out by hand below from z = 1.959964 (z^2 = 3.841459), never
taken from the code under test. Zero errors in n: upper bound z^2 / (n + z^2); a target t is reachable
at zero errors when n >= z^2 (1 - t) / t.
"""

from __future__ import annotations

import pytest

from kyc.domain.evaluation import Rate, propose_thresholds
from kyc.domain.promotion import attacks_needed, gate

Z2 = 1.959964**2  # 3.841459


def _rates(apcer: dict[str, tuple[int, int]], bpcer: tuple[int, int] = (0, 3), review=(0, 6)) -> dict:
    return {
        "apcer_by_type": {kind: Rate.of(*counts).to_dict() for kind, counts in apcer.items()},
        "bpcer": Rate.of(*bpcer).to_dict(),
        "review_rate": Rate.of(*review).to_dict(),
    }


def test_zero_error_bounds_are_the_hand_computed_ones() -> None:
    # 0 of 3: 3.841459 / (3 + 3.841459) = 3.841459 / 6.841459 = 0.56150
    assert Rate.of(0, 3).high == pytest.approx(0.56150, abs=5e-5)
    # 0 of 73: 3.841459 / 76.841459 = 0.049992 (just under 5 %); 0 of 72: 3.841459 / 75.841459 = 0.050651
    assert Rate.of(0, 73).high == pytest.approx(0.049992, abs=5e-6)
    assert Rate.of(0, 72).high == pytest.approx(0.050651, abs=5e-6)


@pytest.mark.parametrize(
    ("total", "target", "missing"),
    [
        (3, 0.5, 1),  # 3.841459 * 0.5 / 0.5 = 3.84 -> n >= 4: one more
        (3, 0.6, 0),  # 3.841459 * 0.4 / 0.6 = 2.56 -> n >= 3: none
        (3, 0.05, 70),  # 3.841459 * 0.95 / 0.05 = 72.99 -> n >= 73: seventy more
        (72, 0.05, 1),
        (73, 0.05, 0),
        (10, 0.01, 371),  # 3.841459 * 0.99 / 0.01 = 380.30 -> n >= 381
        (3, 0.0, -1),  # no finite split lets a bound reach 0
    ],
)
def test_attacks_needed_is_the_zero_error_sample_size(total: int, target: float, missing: int) -> None:
    assert attacks_needed(total, target) == missing


def test_a_target_the_measured_rate_meets_but_the_bound_cannot_is_refused_naming_the_type() -> None:
    # 0 of 3 replay attacks PASSed: measured 0 %, bound 0.5615 > 0.5; BPCER 0/3 meets 0.05 as measured
    candidate = _rates({"replay_screen": (0, 3)})
    refused = gate(candidate, None, max_apcer=0.5, max_bpcer=0.05, max_review_rate=0.5)
    assert not refused.passed
    (reason,) = refused.reasons
    assert "APCER[replay_screen]" in reason and "0/3" in reason and "1 more replay_screen" in reason
    bound = refused.to_dict()["apcer_bounds"]["replay_screen"]
    assert bound["meets_target"] is False and bound["attacks_needed_at_zero_errors"] == 1
    assert bound["upper"] == pytest.approx(Z2 / (3 + Z2), abs=1e-6)
    # the same candidate at a target the bound can meet (0.5615 <= 0.6) is registered
    assert gate(candidate, None, max_apcer=0.6, max_bpcer=0.05, max_review_rate=0.5).passed


def test_the_worst_attack_type_decides() -> None:
    # face_swap 0/73 (bound 0.049992) meets 5 %; mask 0/72 (bound 0.050651) does not: one more mask
    candidate = _rates({"face_swap": (0, 73), "mask": (0, 72)}, bpcer=(0, 200), review=(0, 345))
    result = gate(candidate, None, max_apcer=0.05, max_bpcer=0.05, max_review_rate=0.5)
    assert not result.passed
    assert len(result.reasons) == 1 and "APCER[mask]" in result.reasons[0]
    assert "1 more mask" in result.reasons[0]
    bounds = result.to_dict()["apcer_bounds"]
    assert bounds["face_swap"]["meets_target"] and bounds["face_swap"]["attacks_needed_at_zero_errors"] == 0
    assert gate(
        _rates({"face_swap": (0, 73), "mask": (0, 73)}, bpcer=(0, 200), review=(0, 346)),
        None,
        max_apcer=0.05,
        max_bpcer=0.05,
        max_review_rate=0.5,
    ).passed


def test_errors_on_a_split_large_enough_for_zero_errors_still_fail_on_the_bound() -> None:
    # 1 of 100: p = 0.01, z^2/n = 0.0384146, denominator 1.0384146,
    # centre (0.01 + 0.0192073) / 1.0384146 = 0.028127,
    # half (1.959964 / 1.0384146) * sqrt(0.01 * 0.99 / 100 + 3.841459 / 40000)
    #    = 1.887455 * 0.013966 = 0.026360
    # upper 0.054487 > 0.05, and 100 >= 73 attacks: it is the error, not the split size
    candidate = _rates({"face_swap": (1, 100)}, bpcer=(0, 100), review=(0, 200))
    assert candidate["apcer_by_type"]["face_swap"]["ci95"][1] == pytest.approx(0.054487, abs=2e-5)
    result = gate(candidate, None, max_apcer=0.05, max_bpcer=0.05, max_review_rate=0.5)
    assert not result.passed and "errors are too many" in result.reasons[0]
    assert gate(candidate, None, max_apcer=0.06, max_bpcer=0.05, max_review_rate=0.5).passed


def test_bpcer_and_review_rate_stay_measured_and_the_champion_comparison_stays() -> None:
    candidate = _rates({"replay_screen": (0, 3)}, bpcer=(1, 3), review=(4, 6))
    result = gate(candidate, None, max_apcer=0.6, max_bpcer=0.3, max_review_rate=0.5)
    assert [r.split(" ")[0] for r in result.reasons] == ["BPCER", "review"]
    champion = _rates({"replay_screen": (0, 30)})  # bound 3.841459 / 33.841459 = 0.1135 < 0.5615
    worse = gate(
        _rates({"replay_screen": (0, 3)}), champion, max_apcer=0.6, max_bpcer=0.05, max_review_rate=1
    )
    assert not worse.passed and "worse than the champion" in worse.reasons[0]


def test_retrain_calibrates_thresholds_for_the_bound_the_gate_will_apply() -> None:
    # validation: 3 attacks scored 0.6, 0.7, 0.8 and 3 genuine 0.1, 0.2, 0.3; target APCER 0.6.
    # Measured, 1 of 3 may PASS (floor(0.6 * 3) = 1): t_pass = 0.7. On the bound, 1 of 3 is
    # p = 1/3, centre (0.333333 + 0.640243) / 2.280486 = 0.426916,
    # half (1.959964 / 2.280486) * sqrt(0.333333 * 0.666667 / 3 + 3.841459 / 36) = 0.859449 * 0.425183
    # = 0.365425, upper 0.792341 > 0.6: none may PASS, t_pass = 0.6 (the lowest attack).
    # t_reject = just above 0.3 (BPCER 0), below t_pass: both go to the midpoint.
    scores = [0.6, 0.7, 0.8, 0.1, 0.2, 0.3]
    labels = ["attack"] * 3 + ["genuine"] * 3
    types = ["replay_screen"] * 3 + [None] * 3
    measured = propose_thresholds(scores, labels, types, max_apcer=0.6, max_bpcer=0.05)
    bounded = propose_thresholds(scores, labels, types, max_apcer=0.6, max_bpcer=0.05, apcer_on_bound=True)
    assert measured.pass_threshold == pytest.approx((0.7 + 0.3) / 2)
    assert bounded.pass_threshold == pytest.approx((0.6 + 0.3) / 2)
    assert bounded.feasible  # 0 of 3: upper 0.5615 <= 0.6
    at_half = propose_thresholds(scores, labels, types, max_apcer=0.5, max_bpcer=0.05, apcer_on_bound=True)
    assert not at_half.feasible  # 0 of 3 cannot reach 0.5
