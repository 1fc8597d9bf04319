"""Flux query text and its parameters (pure): the filters of :mod:`api.filters` as Flux.

User values never become Flux text. Every query refers to them as ``params.<name>``; the
values travel either as the API's ``extern`` parameters (InfluxDB 2.x) or, because InfluxDB 1.8
ignores ``extern`` (measured: "undefined identifier params"), as one ``params`` record of
literals rendered by :func:`urbanpulse.flux.literal`, which escapes everything a Flux string
can terminate or interpolate with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from api.filters import AggregateFilter, AlertFilter, DayCountFilter, ObservationFilter

# The one escape of values written into Flux, shared with the other parts; re-exported because
# the API's query modules and their tests name it from here.
from urbanpulse.flux import FluxValue
from urbanpulse.flux import literal as literal
from urbanpulse.influx_layout import (
    AGGREGATE_MEASUREMENT,
    ALERT_MEASUREMENT,
    READING_MEASUREMENT,
)

ParamValue = FluxValue


def params_record(params: dict[str, ParamValue]) -> str:
    """The ``params = {...}`` line that stands in for ``extern`` parameters."""
    body = ", ".join(f"{name}: {literal(value)}" for name, value in sorted(params.items()))
    return f"params = {{{body}}}\n"


@dataclass(frozen=True)
class FluxQuery:
    """Flux text that reads its inputs from ``params``, and those inputs."""

    text: str
    params: dict[str, ParamValue]

    def inline(self) -> str:
        """The query as one self-contained Flux program (for InfluxDB 1.8).

        Each ``params.<name>`` becomes its escaped :func:`literal` where it is used, rather
        than one ``params = {...}`` record: InfluxDB 1.8 pushes a tag filter down to its
        storage index only when it compares with a literal, and reads every series of the
        range otherwise (measured: one sensor's day of 1-minute aggregates 14.4 s with the
        record, 0.3 s with literals). The names are the code's own identifiers, never input.
        """
        return _PARAM_USE.sub(lambda m: literal(self.params[m.group(1)]), self.text)


_PARAM_USE = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)\b")


# The tag that names what an aggregate is about, per scope (constants: never user text).
SCOPE_KEY = {"sensor": "sensor_id", "district": "district"}
OBSERVATION_COLUMNS = ("_time", "tenant", "sensor_id", "quantity")
ALERT_COLUMNS = ("_time", "tenant", "sensor_id", "rule", "quantity")


def keyset_predicate(columns: tuple[str, ...]) -> str:
    """Flux test "row sorts after ``params.after_<i>``" over ``columns`` (constant names)."""
    names = [f"params.after_{i}" for i in range(len(columns))]
    expr = f'r["{columns[-1]}"] > {names[-1]}'
    for column, name in reversed(list(zip(columns[:-1], names[:-1], strict=True))):
        expr = f'r["{column}"] > {name} or (r["{column}"] == {name} and ({expr}))'
    return expr


class _Where:
    """Collects one query's predicates and parameters.

    Only predicates for what the client actually asked are written, all in one ``filter``:
    InfluxDB 1.8 evaluates every ``filter`` row by row, so each unused ``params.x == "" or``
    test costs a pass over the whole range (measured: 0.4 s → 0.9 s for a one-sensor day).
    Which predicates appear depends only on which parameters are set; the values themselves
    are still only ever ``params.<name>``.
    """

    def __init__(self, base: dict[str, ParamValue]) -> None:
        self.params: dict[str, ParamValue] = dict(base)
        self.tags: list[str] = []  # tag tests the storage engine can evaluate on its index
        self.tests: list[str] = []  # the rest, evaluated row by row

    def equal(self, column: str, value: str | None) -> None:
        if value:
            self.params[column] = value
            self.tags.append(f'r["{column}"] == params.{column}')

    def one_of(self, column: str, name: str, values: tuple[str, ...]) -> None:
        """``column`` is one of ``values``: ``or``-ed equalities, which 1.8 pushes down to
        storage (``contains`` it does not: 4.4 s instead of 0.3 s for one sensor-day)."""
        if values:
            names = [f"{name}_{i}" for i in range(len(values))]
            self.params |= dict(zip(names, values, strict=True))
            self.tags.append("(" + " or ".join(f"r.{column} == params.{n}" for n in names) + ")")

    def after(self, columns: tuple[str, ...], key: tuple[datetime | str, ...] | None) -> None:
        if key is not None:
            for i, value in enumerate(key):
                self.params[f"after_{i}"] = value
            self.tests.append(f"({keyset_predicate(columns)})")

    def filter(self) -> str:
        """Two ``filter`` steps: tag tests first (pushed down to storage), then the rest.

        A range's ``stop`` is exclusive as the API documents it, though InfluxDB 1.8's
        ``range`` also returns points lying exactly on ``stop`` (measured), hence the test.
        """
        tests = [*self.tests, "r._time < params.stop"] if "stop" in self.params else self.tests
        return "".join(
            f"  |> filter(fn: (r) => {_AND.join(group)})\n" for group in (self.tags, tests) if group
        )

    def quantity_in(self, names: tuple[str, ...]) -> None:
        """Only these quantities, as a regex literal: ``contains`` over a long array costs
        InfluxDB 1.8 three times the whole query (measured), a regex almost nothing. The names
        come from the code's quantity table, never from a client, and are checked to be plain
        snake_case, so the literal can only ever be an alternation of words."""
        if names:
            for name in names:
                if not _PLAIN_NAME.match(name):
                    raise ValueError(f"not a plain quantity name: {name!r}")
            self.tags.append(f"r.quantity =~ /^({'|'.join(names)})$/")

    def open_sensors(self, strict: bool = True) -> None:
        """Only points of sensors whose registry privacy class is ``open`` (``privacy`` tag).

        The stream worker tags every point it writes; ``strict`` also leaves out points with
        no tag (raw readings: only ever written by the worker). Aggregate and alert points of
        other writers may lack it, so there ``strict=False`` excludes only a tag saying
        ``restricted`` or ``personal``."""
        if strict:
            self.tags.append('r.privacy == "open"')
        else:
            self.tests.append('not (exists r.privacy and r.privacy != "open")')


_AND = " and\n       "
_PLAIN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _published(
    where: _Where, quantity: str | None, allowed: tuple[str, ...], strict: bool = True
) -> None:
    """Restrict to open sensors, and to one quantity or else the allowed (published) ones."""
    where.open_sensors(strict)
    if quantity:
        where.equal("quantity", quantity)
    else:
        where.quantity_in(allowed)


def observations_query(bucket: str, flt: ObservationFilter) -> FluxQuery:
    """Raw readings in a range, one row per reading, ordered by time then series (keyset)."""
    where = _Where({"bucket": bucket, "start": flt.start, "stop": flt.stop, "limit": flt.limit})
    where.equal("sensor_id", flt.sensor_id)
    where.one_of("sensor_id", "sensor_ids", flt.sensor_ids)
    where.equal("tenant", flt.tenant)
    _published(where, flt.quantity, flt.allowed)
    where.after(OBSERVATION_COLUMNS, flt.after)
    in_box = ""
    if flt.bbox is not None:
        box = flt.bbox
        where.params |= {
            "min_lon": float(box.min_lon),
            "min_lat": float(box.min_lat),
            "max_lon": float(box.max_lon),
            "max_lat": float(box.max_lat),
        }
        in_box = (
            "  |> filter(fn: (r) => exists r.lat and exists r.lon and r.lat >= params.min_lat"
            " and\n       r.lat <= params.max_lat and r.lon >= params.min_lon and "
            "r.lon <= params.max_lon)\n"
        )
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start, stop: params.stop)
  |> filter(fn: (r) => r._measurement == "{READING_MEASUREMENT}" and
       (r._field == "value" or r._field == "unit" or r._field == "lat" or r._field == "lon" or
        r._field == "quality_flags"))
{where.filter()}  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
{in_box}  |> group()
  |> sort(columns: ["_time", "tenant", "sensor_id", "quantity"])
  |> limit(n: params.limit)
"""
    return FluxQuery(text, where.params)


def sensors_query(
    bucket: str, start: datetime, tenant: str | None, allowed: tuple[str, ...] = ()
) -> FluxQuery:
    """The latest value, unit, quality flags and position of every series since ``start``."""
    where = _Where({"bucket": bucket, "start": start})
    where.equal("tenant", tenant)
    where.open_sensors()
    where.quantity_in(allowed)
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start)
  |> filter(fn: (r) => r._measurement == "{READING_MEASUREMENT}" and
       (r._field == "value" or r._field == "unit" or r._field == "lat" or r._field == "lon" or
        r._field == "quality_flags"))
{where.filter()}  |> last()
  |> keep(columns: ["_time", "_value", "_field", "tenant", "sensor_id", "quantity", "district"])
"""
    return FluxQuery(text, where.params)


def aggregates_query(bucket: str, flt: AggregateFilter) -> FluxQuery:
    """Window aggregates in a range, one row per window and series, in keyset order."""
    key = SCOPE_KEY[flt.scope]
    columns = ("_time", "tenant", key, "quantity")
    where = _Where({"bucket": bucket, "start": flt.start, "stop": flt.stop, "limit": flt.limit})
    # Scope first, in a filter of its own: it drops the tables of the other scope, which lack
    # the key column that ``contains`` needs.
    where.params |= {"scope": flt.scope, "window": flt.window}
    where.equal("tenant", flt.tenant)
    where.one_of(key, "keys", flt.keys)
    _published(where, flt.quantity, flt.allowed, strict=False)
    where.after(columns, flt.after)
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start, stop: params.stop)
  |> filter(fn: (r) => r._measurement == "{AGGREGATE_MEASUREMENT}" and r.scope == params.scope and
       r["window"] == params.window)
{where.filter()}  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time", "tenant", "{key}", "quantity"])
  |> limit(n: params.limit)
"""
    return FluxQuery(text, where.params)


def alerts_query(bucket: str, flt: AlertFilter) -> FluxQuery:
    """Alert episodes that started in a range, oldest first (keyset order)."""
    where = _Where({"bucket": bucket, "start": flt.start, "stop": flt.stop, "limit": flt.limit})
    where.equal("tenant", flt.tenant)
    where.equal("sensor_id", flt.sensor_id)
    where.equal("rule", flt.rule)
    _published(where, flt.quantity, flt.allowed, strict=False)
    where.after(ALERT_COLUMNS, flt.after)
    state = ""
    if flt.state:
        where.params["state"] = flt.state
        state = "  |> filter(fn: (r) => r.state == params.state)\n"
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start, stop: params.stop)
  |> filter(fn: (r) => r._measurement == "{ALERT_MEASUREMENT}")
{where.filter()}  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
{state}  |> group()
  |> sort(columns: ["_time", "tenant", "sensor_id", "rule", "quantity"])
  |> limit(n: params.limit)
"""
    return FluxQuery(text, where.params)


def daily_counts_query(bucket: str, flt: DayCountFilter) -> FluxQuery:
    """Readings per UTC day, tenant and quantity in ``[start, stop)`` (the bulk listing).

    ``window(every: 1d)`` aligns to the epoch, so each window is one UTC day and its ``_start``
    is midnight; counting the ``value`` field counts readings. Flux 0.65 (InfluxDB 1.8) also
    emits an empty-width window (``_start == _stop``) at the range start holding a reading that
    lies exactly on a later midnight, counted again in its real day (measured); the caller
    drops those rows (a ``filter`` on ``_start``/``_stop`` here loses real rows on 1.8, measured).
    """
    where = _Where({"bucket": bucket, "start": flt.start, "stop": flt.stop})
    where.equal("tenant", flt.tenant)
    _published(where, flt.quantity, flt.allowed)
    text = f"""
from(bucket: params.bucket)
  |> range(start: params.start, stop: params.stop)
  |> filter(fn: (r) => r._measurement == "{READING_MEASUREMENT}" and r._field == "value")
{where.filter()}  |> group(columns: ["tenant", "quantity"])
  |> window(every: 1d)
  |> count()
"""
    return FluxQuery(text, where.params)
