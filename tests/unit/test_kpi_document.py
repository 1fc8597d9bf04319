"""The stored kpi document: the whole of it round-trips; the summary keeps the headline only."""

from __future__ import annotations

import json

from tests.unit.test_scorecard import sensor
from urbanpulse.kpi import SUMMARY_FIELDS, Indicators


def test_the_document_round_trips() -> None:
    ind = sensor(battery_pct=None, flag_shares={"gap": 0.01}, score=97.5)
    assert Indicators.from_json(ind.to_json()) == ind


def test_the_summary_keeps_the_headline_and_drops_nulls() -> None:
    ind = sensor(battery_pct=None, flag_shares={"gap": 0.01}, score=97.5)
    summary = json.loads(ind.summary_json())
    assert set(summary) == set(SUMMARY_FIELDS) - {"battery_pct", "district"}
    assert summary["score"] == 97.5 and summary["flag_shares"] == {"gap": 0.01}
    assert len(ind.summary_json()) < len(ind.to_json()) / 2
