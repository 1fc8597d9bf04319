"""The Flux of the indicator and experiment reads: only what was asked, values as literals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.kpi_filters import HourlyFilter, KpiFilter
from api.kpi_flux import hourly_query, kpi_query

START, STOP = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


def test_the_indicator_query_reads_one_field_with_pushed_down_tags() -> None:
    query = kpi_query("urbanpulse/agg", KpiFilter(start=START, stop=STOP, scope="sensor"))
    text = query.inline()
    assert 'r._field == "summary"' in text and 'r.scope == "sensor"' in text
    assert "tenant" not in query.params and "subject" not in text.split("keep")[0]
    asked = KpiFilter(
        start=START,
        stop=STOP,
        scope="district",
        period="week",
        tenant='to"wn',
        subjects=("a", "b$"),
        document="indicators",
    )
    text = kpi_query("urbanpulse/agg", asked).inline()
    assert 'r._field == "indicators"' in text and 'r.period == "week"' in text
    assert 'r.tenant == "to\\"wn"' in text
    assert '(r.subject == "a" or r.subject == "b\\x24")' in text
    assert "contains" not in text and "r._time < 2026-12-01T00:00:00.000000Z" in text


def test_the_hourly_query_reads_mean_and_count_of_open_sensors() -> None:
    flt = HourlyFilter(
        start=START, stop=STOP, tenant="demo", quantity="noise_level", sensors=("n1", "n2")
    )
    text = hourly_query("urbanpulse/agg", flt).inline()
    assert '(r._field == "mean" or r._field == "count")' in text
    assert '(r.sensor_id == "n1" or r.sensor_id == "n2")' in text
    assert 'r["window"] == "1h"' in text and 'r.privacy != "open"' in text
    with pytest.raises(ValueError, match="no sensor"):
        hourly_query(
            "b", HourlyFilter(start=START, stop=STOP, tenant="t", quantity="q", sensors=())
        )
