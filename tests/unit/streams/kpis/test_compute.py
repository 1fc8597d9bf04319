"""Who gets indicators for a day, and how dead letters reach sensors, districts and tenants."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from streams.kpis.compute import Inputs, day_results, sensor_keys
from streams.kpis.letters import tally
from tests.unit.streams.kpis.helpers import at, evaluation, on_grid, span
from urbanpulse.kpi import Indicators
from urbanpulse.letter_subjects import LetterSubject
from urbanpulse.registry import SensorInfo

NOW = at(11)


def info(tenant: str, sensor: str, **extra: object) -> SensorInfo:
    return SensorInfo.model_validate(
        {"tenant": tenant, "sensor_id": sensor, "district": "centre", "interval_s": 300} | extra
    )


def letter(tenant: str | None, sensor: str | None, reason: str = "invalid_json") -> LetterSubject:
    return LetterSubject(tenant=tenant, sensor_id=sensor, at=at(9), reason=reason, stage="ingest")


def carried(sensor: str, last: datetime) -> Indicators:
    return Indicators(
        tenant="t",
        scope="sensor",
        subject=sensor,
        period="day",
        start=at(-24),
        end=at(0),
        evaluated_at=at(0),
        complete=True,
        expected=1,
        reports=1,
        slots=1,
        readings=1,
        completeness=1.0,
        uptime=1.0,
        first_seen=last,
        last_reading_at=last,
    )


def test_the_sensors_of_a_day() -> None:
    registry = {
        ("t", "active"): info("t", "active"),
        ("t", "retired"): info("t", "retired", status="retired"),
        ("t", "lpp-1:1"): info("t", "lpp-1:1"),
        ("t", "lpp-1:2"): info("t", "lpp-1:2"),
    }
    observations = {
        ("t", "unregistered"): on_grid(first=at(9), interval_s=60, count=5, sensor_id="x"),
        ("t", "retired"): on_grid(first=at(9), interval_s=60, count=5),
        ("u", "other"): on_grid(first=at(9), interval_s=60, count=5),
    }
    carry = {
        ("t", "gone-quiet"): carried("gone-quiet", at(-24 * 3)),
        ("t", "long-gone"): carried("long-gone", at(-24 * 8)),  # beyond forget_after_days
    }
    letters = tally([letter("t", "only-letters"), letter("t", "lpp-1"), letter(None, None)], span())
    inputs = Inputs(observations=observations, registry=registry, carry=carry, letters=letters)
    assert sensor_keys(inputs, evaluation(NOW)) == [
        ("t", "active"),
        ("t", "gone-quiet"),
        ("t", "lpp-1:1"),
        ("t", "lpp-1:2"),
        ("t", "only-letters"),
        ("t", "unregistered"),
        ("u", "other"),
    ]
    only_t = Inputs(
        observations=observations, registry=registry, carry=carry, letters=letters, tenant="t"
    )
    assert all(key[0] == "t" for key in sensor_keys(only_t, evaluation(NOW)))
    assert letters.unattributed == Counter({"invalid_json": 1})


def test_dead_letters_count_for_the_sensor_its_district_and_its_tenant() -> None:
    registry = {("t", "lpp-1:1"): info("t", "lpp-1:1"), ("t", "a"): info("t", "a")}
    letters = tally(
        [
            letter("t", "a", "out_of_range"),
            letter("t", "lpp-1"),  # the LPP device of lpp-1:1: its district, no sensor
            letter("t", "stranger"),  # unregistered, no readings: a sensor of its own
            letter("t", None, "personal_only"),  # dropped on purpose: not a failure
            LetterSubject(
                tenant="t", sensor_id="a", at=at(30), reason="x", stage="ingest"
            ),  # another day
        ],
        span(),
    )
    results = {
        (r.indicators.scope, r.indicators.subject): r.indicators
        for r in day_results(
            Inputs(observations={}, registry=registry, carry={}, letters=letters),
            evaluation(NOW),
        )
    }
    assert results[("sensor", "a")].dead_letters == 1
    assert results[("sensor", "lpp-1:1")].dead_letters == 0
    assert results[("sensor", "stranger")].dead_letters == 1
    assert results[("district", "centre")].dead_letters == 2
    assert results[("tenant", "t")].dead_letters == 3
    assert results[("tenant", "t")].sensors == 3
    assert results[("district", "centre")].sensors == 2


def test_every_subject_of_a_day_has_the_period_and_the_evaluation() -> None:
    registry = {("t", "a"): info("t", "a")}
    inputs = Inputs(
        observations={("t", "a"): on_grid(first=at(9), interval_s=300, count=24)},
        registry=registry,
        carry={},
        letters=tally([], span()),
    )
    results = day_results(inputs, evaluation(NOW))
    assert [(r.indicators.scope, r.indicators.subject) for r in results] == [
        ("sensor", "a"),
        ("district", "centre"),
        ("tenant", "t"),
    ]
    for r in results:
        assert r.indicators.start == datetime(2026, 11, 25, tzinfo=UTC)
        assert r.indicators.end - r.indicators.start == timedelta(days=1)
        assert r.indicators.evaluated_at == NOW and not r.indicators.complete
        assert r.indicators.completeness == 1.0
