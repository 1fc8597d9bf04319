"""Rows the API publishes (observations, aggregates, alerts), their JSON, CSV and JSON Lines
forms, and the page cursors (pure)."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from api.params import EARLIEST, LATEST

OBSERVATION_FIELDS = (
    "time",
    "tenant",
    "sensor_id",
    "quantity",
    "value",
    "unit",
    "lat",
    "lon",
    "quality_flags",
)


class Observation(BaseModel):
    """One raw reading as the API publishes it."""

    time: datetime = Field(description="when it was observed (UTC, RFC 3339)")
    tenant: str
    sensor_id: str
    quantity: str
    value: float
    unit: str = Field(description="UCUM code")
    lat: float | None = None
    lon: float | None = None
    quality_flags: list[str] = Field(default_factory=list)


def rfc3339(moment: datetime) -> str:
    """UTC time as RFC 3339 with a ``Z``, fractions of a second only when there are any."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


AGGREGATE_FIELDS = (
    "window_start",
    "window_end",
    "window",
    "tenant",
    "scope",
    "sensor_id",
    "district",
    "quantity",
    "count",
    "mean",
    "min",
    "max",
    "last",
    "unit",
)


class Aggregate(BaseModel):
    """Statistics of one quantity of one sensor (or district) over one tumbling window."""

    window_start: datetime = Field(description="start of the window (UTC), inclusive")
    window_end: datetime = Field(description="end of the window (UTC), exclusive")
    window: str = Field(description="window length: 1m, 15m or 1h")
    tenant: str
    scope: str = Field(description="sensor or district")
    sensor_id: str | None = Field(None, description="the sensor (scope sensor)")
    district: str | None = Field(None, description="the district (scope district)")
    quantity: str
    count: int = Field(description="readings in the window")
    mean: float
    min: float
    max: float
    last: float = Field(description="the latest reading in the window")
    unit: str = Field(description="UCUM code")


ALERT_FIELDS = (
    "started_at",
    "ended_at",
    "state",
    "tenant",
    "sensor_id",
    "rule",
    "quantity",
    "value",
    "message",
)


class Alert(BaseModel):
    """One alert episode: a rule that fired for a sensor's quantity, open or closed."""

    started_at: datetime = Field(description="when the episode began (UTC)")
    ended_at: datetime | None = Field(None, description="when it ended; null while open")
    state: str = Field(description="open or closed")
    tenant: str
    sensor_id: str
    rule: str = Field(description="the rule that fired")
    quantity: str
    value: float = Field(description="the value that triggered it")
    message: str = ""


def row_dict(row: BaseModel) -> dict[str, Any]:
    """The JSON object of one published row, times as RFC 3339 with ``Z``."""
    data: dict[str, Any] = _plain(row.model_dump())
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def observation_dict(obs: Observation) -> dict[str, object]:
    """The JSON object of one observation."""
    return row_dict(obs)


def csv_lines(
    rows: Iterable[BaseModel], fields: tuple[str, ...] = OBSERVATION_FIELDS
) -> Iterator[str]:
    """CSV text, header first, one line at a time (for streaming); lists joined by ``;``.

    Text cells that a spreadsheet would run as a formula get a leading ``'``
    (:func:`spreadsheet_safe`): tenant and sensor ids come from MQTT topics, which anyone
    allowed to publish chooses. Numbers are written as numbers (``-3.5`` stays ``-3.5``).
    """
    buffer = io.StringIO()
    # CRLF, as RFC 4180 has it: the writer then also quotes a cell holding a lone CR, which
    # with LF line ends it leaves bare, and readers take it for the end of the row.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    yield _take(buffer)
    for item in rows:
        row = row_dict(item)
        writer.writerow([_csv_cell(row[f]) for f in fields])
        yield _take(buffer)


# Spreadsheets run a cell that starts with one of these as a formula (``=HYPERLINK(...)``,
# ``@SUM(...)``, DDE ``=cmd|...``); tab and CR open a cell that some of them read the same way.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula (OWASP CSV
    injection); other text unchanged. For text cells only: numbers stay numbers."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


def jsonl_lines(rows: Iterable[BaseModel]) -> Iterator[str]:
    """JSON Lines: one JSON object per row and line (for streaming)."""
    for row in rows:
        yield json.dumps(row_dict(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


Cursor = tuple[datetime, str, str, str]


def encode_keyset(kind: str, moment: datetime, *parts: str) -> str:
    """An opaque cursor of one endpoint ``kind`` resuming after the row with this sort key."""
    raw = "\x1f".join([kind, rfc3339(moment), *parts])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_keyset(kind: str, cursor: str, parts: int) -> tuple[datetime, tuple[str, ...]]:
    """Parse a cursor of :func:`encode_keyset`; ValueError when it is not one for ``kind``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found_kind, time_text, *rest = raw.split("\x1f")
        moment = _cursor_time(time_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise ValueError("not a cursor this API issued") from err
    if found_kind != kind or len(rest) != parts:
        raise ValueError("not a cursor this API issued for this endpoint")
    return moment, tuple(rest)


def encode_cursor(obs: Observation) -> str:
    """An opaque cursor that resumes right after ``obs``."""
    raw = "\x1f".join([rfc3339(obs.time), obs.tenant, obs.sensor_id, obs.quantity])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    """Parse a cursor made by :func:`encode_cursor`; ValueError when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time_text, tenant, sensor_id, quantity = raw.split("\x1f")
        moment = _cursor_time(time_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise ValueError("not a cursor this API issued") from err
    return moment, tenant, sensor_id, quantity


def _cursor_time(text: str) -> datetime:
    """The time of a cursor, in UTC; ValueError unless it is one a stored row can have.

    A cursor is the client's text: a forged year 1 at ``+01:00`` has no UTC form in Python
    (OverflowError when it is written into a query), and a time outside what InfluxDB stores
    cannot be the sort key of a row this API returned.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or not EARLIEST <= moment < LATEST:
        raise ValueError("not a time of a stored row")
    return moment.astimezone(UTC)
