"""``/v1/kpis`` answers from stored summaries, mostly without parsing them (pure).

Each ``kpi`` point stores its headline indicators as a small JSON object (``summary``,
:meth:`urbanpulse.kpi.Indicators.summary_json`). A JSON answer is those objects spliced
together: the point's tags and start are written in front of each stored object, which is
copied as it is — no ``json.loads`` and no ``json.dumps`` of 15,000 documents (measured in
benchmarks/kpi_api.py). Two decisions are made on the text itself, exactly:

* **battery**: ``battery_pct`` comes from a restricted quantity, so an open answer drops it
  (:func:`without_battery`);
* **district** of a sensor row: ``"district":<the JSON string>`` occurs in a stored summary
  only as that key (a ``"`` inside any string value is escaped), so a substring test on the
  district as the same serializer writes it is an exact match (:func:`in_districts`).

CSV has a column per indicator, so there each summary is parsed (``json.loads``).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pydantic_core

from api.formats import _csv_cell
from api.kpi_filters import KpiRow
from urbanpulse.kpi import SUMMARY_FIELDS

RESTRICTED_FIELDS = ("battery_pct",)
"""Summary fields only an admin key gets: the battery level is a restricted quantity."""
_BATTERY = re.compile(r',"battery_pct":-?[0-9][0-9.eE+-]*')
HEAD_FIELDS = ("tenant", "scope", "subject", "period", "start")
CSV_CHUNK = 500


def without_battery(summary: str) -> str:
    """The stored summary without its ``battery_pct`` (never the first key: ``complete`` is)."""
    return _BATTERY.sub("", summary, count=1)


def district_needles(districts: Iterable[str]) -> tuple[str, ...]:
    """What a summary of a sensor in one of ``districts`` contains, as its serializer writes it."""
    return tuple(f'"district":{pydantic_core.to_json(d).decode()}' for d in districts)


def in_districts(summary: str, needles: tuple[str, ...]) -> bool:
    """True when the summary's sensor lies in one of the districts (:func:`district_needles`)."""
    return any(needle in summary for needle in needles)


def row_json(row: KpiRow, *, battery: bool) -> str:
    """One row of the answer: the point's tags and start, then the stored summary's keys."""
    summary = row.document if battery else without_battery(row.document)
    head = (
        f'{{"tenant":{_string(row.tenant)},"scope":"{row.scope}",'
        f'"subject":{_string(row.subject)},"period":"{row.period}","start":"{row.time}"'
    )
    inner = summary[1:-1]  # the stored JSON is compact: "{" first, "}" last
    return f"{head},{inner}}}" if inner else f"{head}}}"


@functools.lru_cache(maxsize=4096)
def _string(text: str) -> str:
    # Cached: a month of a tenant has 30 rows per sensor, and json.dumps is the row's dearest
    # step. The ids are bounded (at most 4096 kept), the texts short.
    return json.dumps(text, ensure_ascii=False)


def json_body(rows: Iterable[KpiRow], *, battery: bool, extra: Mapping[str, Any]) -> bytes:
    """``{"data": [...rows...], **extra}`` as bytes; ``extra`` (small) is serialised normally."""
    data = ",".join(row_json(row, battery=battery) for row in rows)
    tail = json.dumps(dict(extra), ensure_ascii=False, separators=(",", ":"))[1:]
    return f'{{"data":[{data}]{"," if tail != "}" else ""}{tail}'.encode()


def csv_columns(*, battery: bool) -> tuple[str, ...]:
    """The CSV header: the tags and start, then every summary field (battery only if shown)."""
    kept = [f for f in SUMMARY_FIELDS if battery or f not in RESTRICTED_FIELDS]
    return (*HEAD_FIELDS, *kept)


def csv_lines(rows: Iterable[KpiRow], *, battery: bool) -> Iterator[str]:
    """The rows as CSV, header first; ``flag_shares`` as ``flag:share`` pairs split by ``;``.

    Yielded :data:`CSV_CHUNK` rows at a time: each piece a streamed answer sends is one trip
    through the middlewares and the server, and 15,000 one-line pieces took seconds.
    """
    columns = csv_columns(battery=battery)
    buffer = io.StringIO()
    # CRLF, as RFC 4180 has it: the writer then also quotes a cell holding a lone CR.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for number, row in enumerate(rows, start=1):
        summary = json.loads(row.document)
        head = {
            "tenant": row.tenant,
            "scope": row.scope,
            "subject": row.subject,
            "period": row.period,
            "start": row.time,
        }
        summary["flag_shares"] = ";".join(
            f"{flag}:{share}" for flag, share in sorted(summary.get("flag_shares", {}).items())
        )
        values = head | summary
        writer.writerow([_csv_cell(values.get(column)) for column in columns])
        if number % CSV_CHUNK == 0:
            yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
