"""The models have the cycles and correlations a city has."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from statistics import mean
from zoneinfo import ZoneInfo

from simulators.models import (
    KINDS,
    City,
    air_quality,
    make_site,
    model_values,
    rain,
    traffic,
    weather,
)

CITY = City(3, ZoneInfo("Europe/Amsterdam"))
MONDAY = datetime(2026, 3, 2, tzinfo=ZoneInfo("Europe/Amsterdam"))


def at(day: int, hour: float) -> datetime:
    return (MONDAY + timedelta(days=day, hours=hour)).astimezone(UTC)


def test_traffic_has_rush_hours_on_weekdays_and_quiet_weekends() -> None:
    for day in range(5):
        assert traffic(CITY, at(day, 8)) > 3 * traffic(CITY, at(day, 3))
        assert traffic(CITY, at(day, 17.5)) > traffic(CITY, at(day, 11))
    assert traffic(CITY, at(5, 8)) < 0.6 * traffic(CITY, at(0, 8))  # Saturday morning


def test_air_quality_follows_traffic_and_noise_is_lower_at_night() -> None:
    site = make_site(3, "air-x", KINDS["air_quality"])
    rush = mean(air_quality(CITY, site, at(d, 8), 300)["no2"] for d in range(5))
    night = mean(air_quality(CITY, site, at(d, 3), 300)["no2"] for d in range(5))
    assert rush > 1.4 * night
    noise = KINDS["noise"]
    loud = make_site(3, "noise-x", noise)
    day = mean(model_values(noise, CITY, loud, at(d, 12))["noise_level"] for d in range(5))
    quiet = mean(model_values(noise, CITY, loud, at(d, 3))["noise_level"] for d in range(5))
    assert day > quiet + 5


def test_weather_has_a_daily_cycle_and_rain_raises_water_levels() -> None:
    afternoons = [weather(CITY, at(d, 15)).temperature for d in range(14)]
    dawns = [weather(CITY, at(d, 5)).temperature for d in range(14)]
    assert mean(afternoons) > mean(dawns) + 3
    hours = [at(0, h) for h in range(24 * 30)]
    wet = [t for t in hours if rain(CITY, t) > 1]
    assert 0.05 < len(wet) / len(hours) < 0.6
    water = KINDS["water"]
    site = make_site(3, "water-x", water)
    after_rain = mean(
        model_values(water, CITY, site, t + timedelta(hours=2))["water_level"] for t in wet
    )
    dry = [t for t in hours if all(rain(CITY, t - timedelta(hours=h)) == 0 for h in range(24))]
    assert dry
    dry_level = mean(model_values(water, CITY, site, t)["water_level"] for t in dry)
    assert after_rain > dry_level + 0.02


def test_bins_fill_and_are_emptied_and_parking_is_busier_by_day() -> None:
    bins = KINDS["waste"]
    site = make_site(3, "bin-x", bins)
    levels = [model_values(bins, CITY, site, at(0, h))["fill_level"] for h in range(0, 24 * 14, 1)]
    drops = [a - b for a, b in itertools.pairwise(levels) if a - b > 15]
    assert len(drops) >= 2  # emptied at least twice in two weeks
    parking = KINDS["parking"]
    spaces = [make_site(3, f"parking-{i}", parking) for i in range(40)]
    noon = mean(
        model_values(parking, CITY, s, at(d, 12))["occupancy"] for s in spaces for d in range(5)
    )
    night = mean(
        model_values(parking, CITY, s, at(d, 3))["occupancy"] for s in spaces for d in range(5)
    )
    assert noon > night + 0.2


def test_values_stay_in_range_and_are_pure() -> None:
    for kind in KINDS.values():
        site = make_site(9, f"{kind.prefix}-x", kind)
        for hour in range(0, 24 * 7, 5):
            values = model_values(kind, CITY, site, at(0, hour))
            assert values == model_values(kind, CITY, site, at(0, hour))
            for q in kind.quantities:
                assert q.low <= values[q.quantity] <= q.high
            if kind.battery:
                assert 0 <= values["battery_level"] <= 100
