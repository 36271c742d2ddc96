"""ShadowLiveDisagreementAlarm and ShadowFailuresAlarm as CloudWatch would evaluate template.yaml's
definitions (kyclocal.alarms) on what decide and score emit. Oracles: the rate computed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyclocal.alarms import Datapoint, breaches_at, load_alarms, period_value

ROOT = Path(__file__).resolve().parents[3]
SERVICE = (("service", "kyc-screening"),)


@pytest.fixture(scope="module")
def alarms():
    return load_alarms(ROOT / "template.yaml")


def compared(n: int, disagreed: int) -> list[Datapoint]:
    """What decide emits per recorded decision with a COMPARED shadow block (value 1 or 0)."""
    points = []
    for i in range(n):
        points.append(Datapoint("KycScreening", "ShadowLiveCompared", SERVICE, 10.0 + i, 1.0))
        points.append(
            Datapoint(
                "KycScreening", "ShadowLiveDisagreements", SERVICE, 10.0 + i, 1.0 if i < disagreed else 0.0
            )
        )
    return points


@pytest.mark.parametrize(
    ("n", "disagreed", "rate", "fires"),
    [
        (20, 5, 25.0, True),  # 5/20 = 25 % > 20 %, at the 20-decision volume guard
        (20, 4, 20.0, False),  # exactly the threshold: GreaterThanThreshold does not fire
        (19, 19, 0.0, False),  # every one disagrees, but 19 < ShadowLiveMinDecisions: reads 0
        (100, 21, 21.0, True),
    ],
)
def test_live_disagreement_is_a_rate_with_a_volume_guard(alarms, n, disagreed, rate, fires) -> None:
    alarm = alarms["ShadowLiveDisagreementAlarm"]
    points = compared(n, disagreed)
    assert round(period_value(alarm, points, 0.0, 3600.0), 6) == rate
    assert breaches_at(alarm, points, 3600.0) is fires


def test_shadow_failures_page_at_ten_an_hour(alarms) -> None:
    alarm = alarms["ShadowFailuresAlarm"]
    nine = [Datapoint("KycScreening", "ShadowFailures", SERVICE, 10.0 + i, 1.0) for i in range(9)]
    assert not breaches_at(alarm, nine, 3600.0)
    assert breaches_at(
        alarm, [*nine, Datapoint("KycScreening", "ShadowFailures", SERVICE, 99.0, 1.0)], 3600.0
    )


def _points(metric: str, n: int, start: float = 10.0) -> list[Datapoint]:
    return [Datapoint("KycScreening", metric, SERVICE, start + i, 1.0) for i in range(n)]


def test_skipped_and_unwitnessed_shadows_count_toward_the_same_page(alarms) -> None:
    """Score's ShadowSkipped (no time left for the shadow) and decide's ShadowLiveUnwitnessed (the
    witness does not name the pointer's bytes) are lost shadow evidence as failures are: 3 + 3 + 3 = 9
    does not page, one more of any kind does (hand-summed)."""
    alarm = alarms["ShadowFailuresAlarm"]
    nine = (
        _points("ShadowFailures", 3)
        + _points("ShadowSkipped", 3, 20.0)
        + _points("ShadowLiveUnwitnessed", 3, 30.0)
    )
    assert period_value(alarm, nine, 0.0, 3600.0) == 9.0
    assert not breaches_at(alarm, nine, 3600.0)
    for metric in ("ShadowFailures", "ShadowSkipped", "ShadowLiveUnwitnessed"):
        assert breaches_at(alarm, [*nine, *_points(metric, 1, 99.0)], 3600.0), metric
    # ten skips alone page (no ShadowFailures datapoint at all: FILL keeps the sum defined)
    assert breaches_at(alarm, _points("ShadowSkipped", 10), 3600.0)
    # the comparisons ShadowLiveDisagreementAlarm counts are not lost evidence
    assert not breaches_at(alarm, _points("ShadowLiveCompared", 50), 3600.0)
