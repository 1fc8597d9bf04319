"""Checking and completing what a client asked for (pure): ranges, boxes, pages, formats.

Every function raises :class:`BadQuery` with a message for a person; the app turns it into a
400 problem (:mod:`api.problems`). Nothing here talks to a server.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

from api.filters import BBox

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def _rfc3339_text(value: Any) -> Any:
    """Refuse what pydantic would otherwise read as a time: epoch numbers, bare dates."""
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 time, e.g. 2026-11-27T10:00:00Z")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339_text)]
"""A time parameter: RFC 3339 text only (the offset is checked by :func:`time_range`)."""


class BadQuery(ValueError):
    """The client's query cannot be answered as asked; the message says why."""


# InfluxDB keeps nanoseconds since 1970 in 64 bits: 1677-09-21 to 2262-04-11, rounded inwards.
EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC range ``[start, stop)``."""

    start: datetime
    stop: datetime


def time_range(
    start: datetime | None,
    stop: datetime | None,
    *,
    now: datetime,
    default_span: timedelta,
    max_days: int,
) -> TimeRange:
    """Complete and check a from/to pair: offsets required, ordered, at most ``max_days``."""
    for name, moment in (("from", start), ("to", stop)):
        if moment is not None and moment.tzinfo is None:
            raise BadQuery(f"'{name}' needs a UTC offset, e.g. 2026-11-27T10:00:00Z")
        if moment is not None and not EARLIEST <= moment <= LATEST:
            raise BadQuery(f"'{name}' must lie in the years 1678 to 2261 (what InfluxDB stores)")
    stop = stop or now
    start = start or stop - default_span
    if start >= stop:
        raise BadQuery("'from' must be before 'to'")
    if stop - start > timedelta(days=max_days):
        raise BadQuery(f"the range may span at most {max_days} days")
    return TimeRange(start.astimezone(UTC), stop.astimezone(UTC))


def parse_bbox(text: str | None) -> BBox | None:
    """``west,south,east,north`` in degrees (WGS 84, as GeoJSON orders it) → a box."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise BadQuery("'bbox' is four numbers: west,south,east,north (degrees)")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise BadQuery("'bbox' is four numbers: west,south,east,north (degrees)") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise BadQuery("'bbox' numbers must be finite")
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise BadQuery("'bbox' needs -180 <= west <= east <= 180 and -90 <= south <= north <= 90")
    return BBox(min_lon=west, min_lat=south, max_lon=east, max_lat=north)


def page_size(limit: int | None, *, default: int, maximum: int) -> int:
    """The page size to use: the default when none is asked, never above ``maximum``."""
    limit = limit or default
    if limit > maximum:
        raise BadQuery(f"'limit' may be at most {maximum}")
    return limit


def id_list(name: str, values: list[str] | None, maximum: int) -> tuple[str, ...]:
    """Repeated id parameters, deduplicated and sorted, at most ``maximum`` of them."""
    found = tuple(sorted(set(values or ())))
    if len(found) > maximum:
        raise BadQuery(f"at most {maximum} values of '{name}' per query")
    return found


RAW_GRACE = timedelta(minutes=5)  # late readings may still land this long after they happen


def is_closed(stop: datetime, now: datetime, grace: timedelta) -> bool:
    """True when everything up to ``stop`` is final: ``stop`` plus ``grace`` has passed."""
    return stop + grace <= now


MEDIA_FORMATS = {
    "application/geo+json": "geojson",
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json": "json",
}


def negotiate(asked: str | None, accept: str | None, offered: tuple[str, ...]) -> str:
    """The output format: ``?format=`` wins, else the first offered type ``Accept`` names."""
    if asked is not None:
        return asked
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        fmt = MEDIA_FORMATS.get(media)
        if fmt in offered:
            return fmt
    return offered[0]
