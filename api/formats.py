"""Observation rows and their JSON and CSV forms, and the page cursor (pure)."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from pydantic import BaseModel, Field

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


def observation_dict(obs: Observation) -> dict[str, object]:
    """The JSON object of one observation."""
    row = obs.model_dump()
    row["time"] = rfc3339(obs.time)
    return row


def csv_lines(observations: Iterable[Observation]) -> Iterator[str]:
    """CSV text, header first, one line at a time (for streaming)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OBSERVATION_FIELDS)
    yield _take(buffer)
    for obs in observations:
        row = observation_dict(obs)
        row["quality_flags"] = ";".join(obs.quality_flags)
        writer.writerow(["" if row[f] is None else row[f] for f in OBSERVATION_FIELDS])
        yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


Cursor = tuple[datetime, str, str, str]


def encode_cursor(obs: Observation) -> str:
    """An opaque cursor that resumes right after ``obs``."""
    raw = "\x1f".join([rfc3339(obs.time), obs.tenant, obs.sensor_id, obs.quantity])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    """Parse a cursor made by :func:`encode_cursor`; ValueError when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time_text, tenant, sensor_id, quantity = raw.split("\x1f")
        moment = datetime.fromisoformat(time_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise ValueError("not a cursor this API issued") from err
    if moment.tzinfo is None:
        raise ValueError("not a cursor this API issued")
    return moment, tenant, sensor_id, quantity
