"""The monthly report: its numbers from stored days, its files, and that it names no URL."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from api.experiment_result import answer_of
from api.report.collect import month_span
from api.report.model import build_report, sensor_months
from api.report.render import csv_files, html, write
from tests.unit.api.kpi_samples import indicators
from urbanpulse.experiment_registry import ExperimentDefinition
from urbanpulse.experiments import HourlyMean, SidePlan, compare
from urbanpulse.settings import ScoreWeights

MONTH = date(2026, 11, 1)
SCHOOL = ExperimentDefinition.model_validate(
    {
        "id": "school-street",
        "name": "School <street> & co",
        "tenant": "town",
        "quantity": "noise_level",
        "treated": {"district": "centrum"},
        "period": {"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"},
        "control": {"district": "oost"},
    }
)


def experiment() -> object:
    start = datetime(2026, 11, 20, tzinfo=UTC)
    hours = [
        HourlyMean(sensor_id=s, start=start + timedelta(hours=h), mean=level + (h % 3), count=60)
        for s, level in (("n1", 57.0), ("n2", 60.0))
        for h in range(24)
    ]
    plans = [
        SidePlan(name="treated", sensors=frozenset({"n1"}), start=start, end=start + timedelta(1)),
        SidePlan(name="control", sensors=frozenset({"n2"}), start=start, end=start + timedelta(1)),
    ]
    outcome = compare("treated_vs_control", plans, hours, {"n1": 60.0, "n2": 60.0})
    return answer_of(
        SCHOOL,
        outcome,
        treated=frozenset({"n1"}),
        control=frozenset({"n2"}),
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )


def report() -> object:
    days = range(3)
    tenant_days = [indicators("town", d, scope="tenant", score=80.0 + d) for d in days]
    sensors = [indicators("air-1", d, score=90.0) for d in days]
    sensors += [indicators("air-2", d, score=50.0 + d, completeness=0.5) for d in days]
    sensors += [indicators("secret", d, score=10.0) for d in days]
    districts = [indicators("centrum", d, scope="district", score=70.0) for d in days]
    return build_report(
        tenant="town",
        month=MONTH,
        timezone="UTC",
        generated_at=datetime(2026, 12, 1, 6, tzinfo=UTC),
        tenant_days=tenant_days,
        district_days=districts,
        sensor_days=sensors,
        zone_day={i.start: i.start.date() for i in tenant_days},
        weights=ScoreWeights().model_dump(),
        experiments=[experiment()],
        hidden=frozenset({("town", "secret")}),
    )


def test_the_month_pools_its_days() -> None:
    made = report()
    assert made.score == pytest.approx(81.0) and made.completeness == 274 / 288
    assert [s.sensor_id for s in made.worst] == ["air-2", "air-1"]  # no "secret"
    weakest = made.worst[0]
    assert (weakest.score, weakest.days, weakest.completeness) == (
        51.0,
        3,
        pytest.approx(0.5, abs=0.01),
    )
    assert made.districts == [("centrum", 70.0)] and made.sensors == 2
    assert sum(made.weights.values()) == pytest.approx(1.0)
    assert sensor_months([], limit=None) == []


def test_the_html_holds_everything_inline_and_names_no_url() -> None:
    page = html(report())
    assert not re.search(r"(?i)https?:|//[a-z]|url\(|@import|<script|<link|\ssrc=", page)

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.svgs = 0
            self.hrefs: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.svgs += tag == "svg"
            self.hrefs += [v or "" for k, v in attrs if k == "href"]

    tags = Tags()
    tags.feed(page)
    assert tags.svgs == 4 and tags.hrefs == []  # days, parts, districts, experiments
    assert 'id="month-score">81<' in page
    assert "School &lt;street&gt; &amp; co" in page and "<street>" not in page
    assert "Welch" in page and "95 % confidence interval" in page
    assert "@media print" in page
    order = [page.index(f'<th scope="row">{s}</th>') for s in ("air-2", "air-1")]
    assert order == sorted(order) and "secret" not in page


def test_the_csv_files(tmp_path: Path) -> None:
    files = csv_files(report())
    assert sorted(files) == [
        "experiments-town-2026-11.csv",
        "scorecard-town-2026-11.csv",
        "worst-sensors-town-2026-11.csv",
    ]
    days = list(csv.DictReader(io.StringIO(files["scorecard-town-2026-11.csv"])))
    assert [(d["day"], d["score"]) for d in days] == [
        ("2026-11-20", "80.0"),
        ("2026-11-21", "81.0"),
        ("2026-11-22", "82.0"),
    ]
    sides = list(csv.DictReader(io.StringIO(files["experiments-town-2026-11.csv"])))
    assert [(s["side"], s["readings"], s["expected"]) for s in sides] == [
        ("treated", "1440", "1440"),
        ("control", "1440", "1440"),
    ]
    written = write(report(), tmp_path / "out")
    assert {p.name for p in written} == set(files) | {"report-town-2026-11.html"}


def test_months_are_local_and_strict() -> None:
    first, start, end = month_span("2026-03", "Europe/Amsterdam")
    assert first == date(2026, 3, 1)
    assert start.utcoffset() == timedelta(hours=1) and end.utcoffset() == timedelta(hours=2)
    assert month_span("2026-12", "UTC")[2] == datetime(2027, 1, 1, tzinfo=UTC)
    for bad in ("2026-13", "2026-1", "26-11", "2026-11-01", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            month_span(bad, "UTC")
