"""From the parameters a data route was given to the filter the store answers (pure).

The route's dependencies (:mod:`api.routes.parameters`) only read and type the parameters;
whether a query can be answered is decided here, after every parameter was validated, always
in the same order: the sensors asked for, the box, a published quantity (else
:class:`~api.privacy.NotPublished`, a 404), the time range, the page size, the cursor. A
:class:`~api.params.BadQuery` says what is wrong (a 400). Every function takes its values by
name, so two of one type cannot trade places.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from api.filters import (
    AggregateFilter,
    AggregateKey,
    AlertFilter,
    AlertKey,
    AlertState,
    BBox,
    ObservationFilter,
    ObservationKey,
    Scope,
    Window,
)
from api.formats import decode_cursor, decode_keyset
from api.params import BadQuery, TimeRange, id_list, page_size, time_range
from api.privacy import OPEN_QUANTITIES, require_open
from urbanpulse.settings import ApiSettings

F = TypeVar("F")


@dataclass(frozen=True, kw_only=True)
class SpanAsked:
    """``from`` and ``to`` as the client gave them (either may be missing)."""

    start: datetime | None = None
    stop: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class PageAsked:
    """``limit`` and ``cursor`` as the client gave them."""

    limit: int | None = None
    cursor: str | None = None


@dataclass(frozen=True, kw_only=True)
class Paged(Generic[F]):
    """A checked filter and the page size; the filter asks for one row more than ``size``,
    so that a next page exists exactly when that row came back."""

    filter: F
    size: int


def observations_asked(
    *,
    sensor_id: str | None = None,
    sensor_ids: list[str] | None = None,
    span: SpanAsked,
    quantity: str | None,
    tenant: str | None,
    bbox: BBox | None = None,
    page: PageAsked,
    api: ApiSettings,
    now: datetime,
) -> Paged[ObservationFilter]:
    """The raw readings asked for: one sensor (``sensor_id``) or many (``sensor_ids``)."""
    ids = id_list("sensor_id", sensor_ids, api.max_sensors_per_query)
    require_open(quantity)
    checked = _span(span, now=now, max_days=api.max_raw_range_days)
    size = _size(page, api)
    after = observation_cursor(page.cursor) if page.cursor else None
    flt = ObservationFilter(
        start=checked.start,
        stop=checked.stop,
        limit=size + 1,
        sensor_id=sensor_id,
        sensor_ids=ids,
        tenant=tenant,
        quantity=quantity,
        bbox=bbox,
        after=after,
        allowed=OPEN_QUANTITIES,
    )
    return Paged(filter=flt, size=size)


def aggregate_keys(
    *,
    scope: Scope,
    sensor_ids: list[str] | None,
    districts: list[str] | None,
    maximum: int,
) -> tuple[str, ...]:
    """The sensors (scope ``sensor``) or districts (scope ``district``) asked for."""
    if scope == "sensor" and districts:
        raise BadQuery("'district' needs scope=district")
    if scope == "district" and sensor_ids:
        raise BadQuery("'sensor_id' needs scope=sensor")
    if scope == "sensor":
        return id_list("sensor_id", sensor_ids, maximum)
    return id_list("district", districts, maximum)


def aggregates_asked(
    *,
    scope: Scope,
    keys: tuple[str, ...],
    window: Window,
    span: SpanAsked,
    quantity: str | None,
    tenant: str | None,
    bbox: BBox | None,
    page: PageAsked,
    api: ApiSettings,
    now: datetime,
) -> Paged[AggregateFilter]:
    """The window aggregates asked for; ``keys`` are sensors or districts, by ``scope``.

    A box selects sensors by their last position, which only the route knows: it narrows
    ``keys`` after this check (and only for scope ``sensor``).
    """
    require_open(quantity)
    checked = _span(span, now=now, max_days=api.max_range_days)
    size = _size(page, api)
    after = aggregate_cursor(page.cursor) if page.cursor else None
    if bbox is not None and scope != "sensor":
        raise BadQuery("'bbox' applies to scope=sensor only")
    flt = AggregateFilter(
        start=checked.start,
        stop=checked.stop,
        limit=size + 1,
        window=window,
        scope=scope,
        keys=keys,
        tenant=tenant,
        quantity=quantity,
        after=after,
        allowed=OPEN_QUANTITIES,
    )
    return Paged(filter=flt, size=size)


def alerts_asked(
    *,
    state: AlertState | None,
    sensor_id: str | None,
    rule: str | None,
    quantity: str | None,
    tenant: str | None,
    span: SpanAsked,
    page: PageAsked,
    api: ApiSettings,
    now: datetime,
) -> Paged[AlertFilter]:
    """The alert episodes asked for; without ``from``, the longest range allowed."""
    require_open(quantity)
    longest = timedelta(days=api.max_range_days)
    checked = _span(span, now=now, max_days=api.max_range_days, default_span=longest)
    size = _size(page, api)
    after = alert_cursor(page.cursor) if page.cursor else None
    flt = AlertFilter(
        start=checked.start,
        stop=checked.stop,
        limit=size + 1,
        tenant=tenant,
        sensor_id=sensor_id,
        rule=rule,
        quantity=quantity,
        state=state,
        after=after,
        allowed=OPEN_QUANTITIES,
    )
    return Paged(filter=flt, size=size)


def _span(
    span: SpanAsked, *, now: datetime, max_days: int, default_span: timedelta = timedelta(days=1)
) -> TimeRange:
    return time_range(
        start=span.start, stop=span.stop, now=now, default_span=default_span, max_days=max_days
    )


def _size(page: PageAsked, api: ApiSettings) -> int:
    return page_size(page.limit, default=api.default_limit, maximum=api.max_limit)


def observation_cursor(cursor: str) -> ObservationKey:
    """Where a page of raw readings starts; BadQuery when the cursor is not one of ours."""
    try:
        return decode_cursor(cursor)
    except ValueError as err:
        raise BadQuery(f"'cursor': {err}") from None


def aggregate_cursor(cursor: str) -> AggregateKey:
    """Where a page of aggregates starts; BadQuery when the cursor is not one of ours."""
    try:
        moment, (tenant, key, quantity) = decode_keyset("agg", cursor, 3)
    except ValueError as err:
        raise BadQuery(f"'cursor': {err}") from None
    return moment, tenant, key, quantity


def alert_cursor(cursor: str) -> AlertKey:
    """Where a page of alerts starts; BadQuery when the cursor is not one of ours."""
    try:
        moment, (tenant, sensor_id, rule, quantity) = decode_keyset("alert", cursor, 4)
    except ValueError as err:
        raise BadQuery(f"'cursor': {err}") from None
    return moment, tenant, sensor_id, rule, quantity
