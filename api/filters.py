"""What the data routes ask the store for: boxes, filters and page positions (pure data).

Every class here is keyword-only: the filters carry runs of values of one type (a start and a
stop, a tenant, a sensor, a rule and a quantity), and a swap of two of them would still
type-check, so each must be named where it is built. :mod:`api.queries` builds them from a
request's parameters; :mod:`api.flux` turns them into Flux; :class:`api.store.Store` answers
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Window = Literal["1m", "15m", "1h"]
Scope = Literal["sensor", "district"]
AlertState = Literal["open", "closed"]

WINDOWS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
}

# Where a page starts: the sort key of the previous page's last row (keyset paging). The
# parts are in the order of the sort, so they stay tuples: Flux compares them column by column.
ObservationKey = tuple[datetime, str, str, str]  # (time, tenant, sensor_id, quantity)
AggregateKey = tuple[datetime, str, str, str]  # (window start, tenant, sensor or district, qty)
AlertKey = tuple[datetime, str, str, str, str]  # (start, tenant, sensor_id, rule, quantity)


@dataclass(frozen=True, kw_only=True)
class BBox:
    """A WGS 84 bounding box: west, south, east, north (degrees), as in GeoJSON."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, *, lat: float, lon: float) -> bool:
        """True when the point lies inside or on the edge of the box."""
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


@dataclass(frozen=True, kw_only=True)
class ObservationFilter:
    """Raw readings asked for: sensor(s), quantity, place, a time range ``[start, stop)``."""

    start: datetime
    stop: datetime
    limit: int
    sensor_id: str | None = None
    sensor_ids: tuple[str, ...] = ()
    tenant: str | None = None
    quantity: str | None = None
    bbox: BBox | None = None  # the position each reading reported
    after: ObservationKey | None = None
    allowed: tuple[str, ...] = ()  # the quantities that may be published; empty: any


@dataclass(frozen=True, kw_only=True)
class AggregateFilter:
    """Window aggregates asked for: scope, window, keys (sensors or districts), range, page."""

    start: datetime
    stop: datetime
    limit: int
    window: Window
    scope: Scope = "sensor"
    keys: tuple[str, ...] = ()  # sensor ids (scope sensor) or districts (scope district)
    tenant: str | None = None
    quantity: str | None = None
    after: AggregateKey | None = None
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class AlertFilter:
    """Alert episodes asked for: by start time, sensor, rule, quantity, state, page."""

    start: datetime
    stop: datetime
    limit: int
    tenant: str | None = None
    sensor_id: str | None = None
    rule: str | None = None
    quantity: str | None = None
    state: AlertState | None = None
    after: AlertKey | None = None
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DayCountFilter:
    """Readings to count per UTC day, tenant and quantity, in ``[start, stop)``."""

    start: datetime
    stop: datetime
    tenant: str | None = None
    quantity: str | None = None
    allowed: tuple[str, ...] = ()
