"""Indicators as kpi points: one point per subject and period, and back."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from streams.kpis.indicators import Result
from streams.kpis.points import kpi_point, results_from_rows
from streams.kpis.sketch import LatencySketch
from tests.unit.test_scorecard import sensor


def test_a_point_is_keyed_by_subject_and_period_and_carries_every_indicator() -> None:
    ind = sensor(subject="noise 1", district="centre", battery_pct=None, score=88.0)
    line = kpi_point(
        Result(indicators=ind, sketch=LatencySketch(Counter({3: 2})))
    ).to_line_protocol()
    fields, time_s = line, line.rsplit(" ", 1)[1]
    assert line.startswith("kpi,period=day,scope=sensor,subject=noise\\ 1,tenant=t ")
    assert int(time_s) == int(datetime(2026, 11, 25, tzinfo=UTC).timestamp())
    assert ",score=88," in fields and 'district="centre"' in fields
    assert not re.search(r"[ ,]battery_pct=", fields)  # no value, no field (the document: null)
    assert "latency_sketch=" in fields and "summary=" in fields and "indicators=" in fields


def test_rows_read_back_into_results() -> None:
    day = sensor(subject="a")
    later = sensor(subject="a", start=datetime(2026, 11, 26, tzinfo=UTC),
                   end=datetime(2026, 11, 27, tzinfo=UTC))  # fmt: skip
    rows = []
    for ind in (later, day):
        base = {"tenant": "t", "scope": "sensor", "subject": "a", "_time": ind.start.isoformat()}
        rows.append(base | {"_field": "indicators", "_value": ind.to_json()})
        rows.append(base | {"_field": "latency_sketch", "_value": '{"0":4}'})
    found = results_from_rows(rows)
    assert [r.indicators for r in found[("t", "sensor", "a")]] == [day, later]
    assert found[("t", "sensor", "a")][0].sketch.count == 4
