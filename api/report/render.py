"""The monthly report as files: one self-contained HTML page and its CSV tables (pure text,
then one function that writes them).

The HTML holds its CSS and its SVG charts inline and names no URL at all, so it opens
offline, from a USB stick or an e-mail, sends no request anywhere, and prints on A4 (a
print style sheet: black on white, no section split across pages where it can be helped).
The words for components, designs, methods and verdicts are the web pages' English ones
(``api/web/i18n/en.json``), so the report and the pages say the same thing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.report.charts import Bar, Interval, bar_chart, column_chart, interval_chart
from api.report.model import MonthReport
from api.web import i18n
from urbanpulse.display import display

TEMPLATES = Path(__file__).parent / "templates"


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def charts(report: MonthReport) -> dict[str, str]:
    """The report's SVG charts, by name (pure)."""
    words = i18n.strings("en")
    days = [Bar(label=f"{d.day.day}", value=d.score) for d in report.days]
    parts = [
        Bar(label=words[f"component.{name}"].split(":")[0], value=100 * value)
        for name, value in report.components.items()
    ]
    districts = [Bar(label=name, value=score) for name, score in report.districts]
    effects = [
        Interval(label=e.name, estimate=e.estimate, low=e.low, high=e.high)
        for e in report.experiments
        if e.estimate is not None and e.low is not None and e.high is not None
    ]
    units = {e.unit for e in report.experiments}
    return {
        "days": column_chart(f"Score per day, {report.title_month}", days),
        "components": bar_chart("What the score is made of, % achieved", parts, unit=" %"),
        "districts": bar_chart("Score per district, mean of the days", districts),
        "experiments": interval_chart(
            "Experiments: effect and confidence interval",
            effects,
            unit=units.pop() if len(units) == 1 else "",
        )
        if effects
        else "",
    }


def html(report: MonthReport) -> str:
    """The report as one HTML document (pure)."""
    template = _environment().get_template("report.html")
    return template.render(
        r=report,
        t=i18n.strings("en"),
        charts=charts(report),
        units={e.quantity: display(e.quantity).unit_label or e.unit for e in report.experiments},
        files=file_names(report),
    )


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def csv_files(report: MonthReport) -> dict[str, str]:
    """The report's tables as CSV text, by file name (pure)."""
    names = file_names(report)
    experiments = report.experiments
    return {
        names["scorecard"]: _csv(
            [
                "day", "complete", "score", "completeness", "uptime", "reports", "expected",
                "dead_letters", "latency_p95_s",
            ],
            [
                (d.day.isoformat(), d.complete, d.score, d.completeness, d.uptime, d.reports,
                 d.expected, d.dead_letters, d.latency_p95_s)
                for d in report.days
            ],
        ),
        names["worst"]: _csv(
            [
                "rank", "sensor_id", "district", "days", "score", "completeness", "uptime",
                "dead_letters", "weakest",
            ],
            [
                (n, s.sensor_id, s.district, s.days, s.score, s.completeness, s.uptime,
                 s.dead_letters, s.weakest)
                for n, s in enumerate(report.worst, start=1)
            ],
        ),
        names["experiments"]: _csv(
            [
                "id", "name", "quantity", "unit", "design", "method", "confidence", "estimate",
                "low", "high", "verdict", "side", "side_start", "side_end", "sensors",
                "hourly_means", "readings", "expected", "completeness", "mean",
            ],
            [
                (e.id, e.name, e.quantity, e.unit, e.design, e.method, e.confidence,
                 e.estimate, e.low, e.high, e.verdict, s.name, s.start, s.end, s.sensors,
                 s.values, s.readings, s.expected, s.completeness, s.mean)
                for e in experiments
                for s in e.sides
            ],
        ),
    }  # fmt: skip


def file_names(report: MonthReport) -> dict[str, str]:
    """The names of the report's files (one HTML, three CSV)."""
    stem = f"{report.tenant}-{report.title_month}"
    return {
        "html": f"report-{stem}.html",
        "scorecard": f"scorecard-{stem}.csv",
        "worst": f"worst-sensors-{stem}.csv",
        "experiments": f"experiments-{stem}.csv",
    }


def write(report: MonthReport, folder: Path) -> list[Path]:
    """Write the HTML page and the CSV files into ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {file_names(report)["html"]: html(report)} | csv_files(report)
    written = []
    for name, text in texts.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
