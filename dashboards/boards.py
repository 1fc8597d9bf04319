"""The eight UrbanPulse boards, each a pure function returning a grafana-foundation-sdk builder.

Folders: the city boards are public (anonymous viewers may read them), operations and the
experiment board are for staff. Every board has a ``tenant`` variable (several towns can share
one installation). Raw-reading queries run on the raw InfluxDB data source, aggregate and
alert queries on the aggregate one (``Flux(..., agg=True)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grafana_foundation_sdk.builders.dashboard import CustomVariable, Dashboard
from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards import flux
from dashboards.flux import columns, quantity, window
from dashboards.panels import (
    Flux,
    Step,
    bargauge_panel,
    district_variable,
    note,
    promql,
    query_variable,
    sensor_map,
    stat_panel,
    table_panel,
    tenant_variable,
    timeseries,
)
from urbanpulse.influx_layout import AGGREGATE_MEASUREMENT as AGG
from urbanpulse.influx_layout import ALERT_MEASUREMENT as ALERT
from urbanpulse.influx_layout import KPI_MEASUREMENT as KPI
from urbanpulse.influx_layout import READING_MEASUREMENT as READING


@dataclass(frozen=True)
class Folder:
    """A Grafana folder the boards live in; ``public`` folders are readable anonymously."""

    uid: str
    title: str
    slug: str
    public: bool


CITY = Folder("urbanpulse-city", "UrbanPulse · City", "city", public=True)
OPERATIONS = Folder("urbanpulse-operations", "UrbanPulse · Operations", "operations", public=False)
LAB = Folder("urbanpulse-lab", "UrbanPulse · Experiments", "lab", public=False)
FOLDERS = (CITY, OPERATIONS, LAB)


@dataclass(frozen=True)
class Board:
    """One board: where it lives and the function that builds it."""

    uid: str
    folder: Folder
    build: Callable[[], Dashboard]


# WHO global air quality guidelines (2021), 24-hour levels, µg/m³ (O₃: 8-hour mean).
WHO_24H = {"pm2_5": 15.0, "pm10": 45.0, "no2": 25.0, "o3": 100.0}
POLLUTANTS = (
    ("pm2_5", "PM2.5"),
    ("pm10", "PM10"),
    ("no2", "NO₂"),
    ("o3", "O₃"),
)
DISTRICTS = "r.district =~ /^${district:regex}$/"
# Grafana's unit for a share stored as 0-1 (occupancy means), shown as a percentage.
SHARE = "percentunit"
PARKING_STEPS: list[Step] = [(0, "green"), (0.8, "orange"), (0.95, "red")]
SENSORS = "r.sensor_id =~ /^${sensor:regex}$/"


def _who_steps(pollutant: str) -> list[Step]:
    limit = WHO_24H[pollutant]
    return [(0, "green"), (limit, "orange"), (limit * 2, "red")]


def _base(
    uid: str, title: str, description: str, tags: list[str], *, editable: bool = False
) -> Dashboard:
    board = (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["urbanpulse", *tags])
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
    )
    return board.editable() if editable else board.readonly()


def _district_series(name: str, size: str, field: str = "mean") -> Flux:
    return Flux(
        flux.aggregate("district", quantity(name), window(size), (field,), DISTRICTS)
        + f"\n  |> keep(columns: {columns(AGG, '_time', '_value', 'district')})",
        agg=True,
    )


def _sensor_last(name: str) -> Flux:
    return Flux(
        flux.raw(quantity(name))
        + "\n  |> last()"
        + f"\n  |> keep(columns: {columns(READING, '_time', '_value', 'sensor_id')})"
    )


def _per_sensor_window(name: str, fn: str) -> Flux:
    return Flux(
        flux.raw(quantity(name))
        + f"\n  |> aggregateWindow(every: v.windowPeriod, fn: {fn}, createEmpty: false)"
        + f"\n  |> keep(columns: {columns(READING, '_time', '_value', 'sensor_id')})"
    )


def city_overview() -> Dashboard:
    """Map of sensors with their latest values, open alerts, what reports."""
    latest = Flux(
        flux.raw(None, ("value", "lat", "lon"))
        + "\n  |> last()"
        + '\n  |> pivot(rowKey: ["_start"], columnKey: ["_field"], valueColumn: "_value")'
        + "\n  |> filter(fn: (r) => exists r.lat and exists r.lon)"
        + "\n  |> group()"
        + "\n  |> keep(columns: "
        + columns(READING, "sensor_id", "quantity", "value", "lat", "lon")
        + ")"
    )
    reporting = Flux(
        flux.raw(None)
        + "\n  |> last()"
        + "\n  |> group()"
        + '\n  |> distinct(column: "sensor_id")'
        + "\n  |> count()"
    )
    alert_count = Flux(flux.open_alerts() + '\n  |> count(column: "state")', agg=True)
    alert_rows = Flux(
        flux.open_alerts()
        + "\n  |> keep(columns: "
        + columns(ALERT, "started_at", "sensor_id", "quantity", "rule", "value", "message")
        + ")"
        + '\n  |> sort(columns: ["started_at"], desc: true)',
        agg=True,
    )
    per_quantity = Flux(
        flux.raw(None)
        + f"\n  |> group(columns: {columns(READING, 'quantity')})"
        + "\n  |> aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)"
    )
    return (
        _base(
            "urbanpulse-city-overview",
            "City overview",
            "Where the sensors are, what they measure now, and which alerts are open.",
            ["city", "public"],
        )
        .with_variable(tenant_variable())
        .with_panel(
            stat_panel(
                "Sensors reporting",
                reporting,
                description="Sensors with at least one reading in the time range.",
            )
            .height(5)
            .span(6)
        )
        .with_panel(
            stat_panel(
                "Open alerts",
                alert_count,
                description="Alert episodes still open (threshold rules and stale sensors), "
                "looked up over the last 30 days.",
                steps=[(0, "green"), (1, "orange"), (5, "red")],
                calc="sum",
            )
            .height(5)
            .span(6)
        )
        .with_panel(
            timeseries(
                "Readings per quantity",
                [per_quantity],
                description="Number of readings stored per interval, by quantity.",
                bars=True,
                display_name="${__field.labels.quantity}",
            )
            .height(5)
            .span(12)
        )
        .with_panel(
            sensor_map(
                "Sensors and their latest values",
                latest,
                "Each sensor that reported a position, with the latest value of each quantity.",
            )
            .height(14)
            .span(14)
        )
        .with_panel(
            table_panel(
                "Alerts open now",
                alert_rows,
                description="The latest episode of each sensor, rule and quantity, when open.",
            )
            .height(14)
            .span(10)
        )
    )


def air_quality() -> Dashboard:
    """Hourly district means of PM2.5, PM10, NO₂ and O₃ against the WHO guideline levels."""
    board = (
        _base(
            "urbanpulse-air-quality",
            "Air quality",
            "Pollutant concentrations per district (hourly means of the district aggregates), "
            "coloured by the WHO 2021 air quality guideline levels.",
            ["city", "public", "air"],
        )
        .with_variable(tenant_variable())
        .with_variable(district_variable())
    )
    for pollutant, label in POLLUTANTS:
        last_24h = Flux(
            flux.aggregate(
                "district", quantity(pollutant), window("1h"), ("mean",), DISTRICTS
            ).replace(flux.RANGE, "|> range(start: -24h)")
            + f"\n  |> group(columns: {columns(AGG, 'district')})"
            + "\n  |> mean()"
            + f"\n  |> keep(columns: {columns(AGG, '_value', 'district')})",
            agg=True,
        )
        board = board.with_panel(
            bargauge_panel(
                f"{label}: mean of the last 24 h",
                last_24h,
                unit="conμgm3",
                steps=_who_steps(pollutant),
                min_value=0,
                max_value=WHO_24H[pollutant] * 3,
                display_name="${__field.labels.district}",
                description=f"Green below the WHO 24-hour guideline of {WHO_24H[pollutant]:g} "
                "µg/m³, orange above it, red above twice it.",
            )
            .height(7)
            .span(6)
        )
    for pollutant, label in POLLUTANTS:
        board = board.with_panel(
            timeseries(
                f"{label} by district (hourly mean)",
                [_district_series(pollutant, "1h")],
                unit="conμgm3",
                steps=_who_steps(pollutant),
                display_name="${__field.labels.district}",
                description=f"Dashed lines: WHO guideline ({WHO_24H[pollutant]:g} µg/m³) and "
                "twice it. Hourly means are compared with a 24-hour (O₃: 8-hour) level: a "
                "guide, not a compliance test.",
            )
            .height(8)
            .span(12)
        )
    return board.with_panel(
        note(
            "About the guideline levels",
            "Thresholds are the **WHO global air quality guidelines (2021)**: PM2.5 15 µg/m³, "
            "PM10 45 µg/m³, NO₂ 25 µg/m³ as 24-hour means, O₃ 100 µg/m³ as an 8-hour mean. "
            "Low-cost sensors are indicative; official monitoring stations are the reference.",
        )
        .height(4)
        .span(24)
    )


def mobility() -> Dashboard:
    """Traffic counts and parking occupancy."""
    vehicles_by_district = Flux(
        flux.aggregate(
            "district", quantity("vehicle_count"), window("1h"), ("mean", "count"), DISTRICTS
        )
        + '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        + "\n  |> map(fn: (r) => ({_time: r._time, district: r.district, "
        + "_value: r.mean * float(v: r.count)}))",
        agg=True,
    )
    vehicles_total = Flux(flux.raw(quantity("vehicle_count")) + "\n  |> group()\n  |> sum()")
    # A parking sensor watches one space: occupancy 1 (taken) or 0 (free). The share of spaces
    # taken is the mean over sensors, shown as a percentage with Grafana's 0-1 unit.
    spaces_taken_now = Flux(
        flux.raw(quantity("occupancy"), ("value",), DISTRICTS)
        + "\n  |> last()"
        + f"\n  |> group(columns: {columns(READING, 'district')})"
        + "\n  |> mean()"
        + f"\n  |> keep(columns: {columns(READING, '_value', 'district')})"
    )
    return (
        _base(
            "urbanpulse-mobility",
            "Mobility",
            "Traffic counters and parking occupancy.",
            ["city", "public", "mobility"],
        )
        .with_variable(tenant_variable())
        .with_variable(district_variable())
        .with_panel(
            stat_panel(
                "Vehicles counted",
                vehicles_total,
                description="All vehicles counted by all counters in the time range.",
                calc="sum",
            )
            .height(6)
            .span(6)
        )
        .with_panel(
            bargauge_panel(
                "Parking spaces taken now, by district",
                spaces_taken_now,
                unit=SHARE,
                min_value=0,
                max_value=1,
                steps=PARKING_STEPS,
                display_name="${__field.labels.district}",
                description="Share of the district's parking spaces whose sensor last reported "
                "them taken (each sensor watches one space: occupancy 1 taken, 0 free).",
            )
            .height(6)
            .span(18)
        )
        .with_panel(
            timeseries(
                "Vehicles per hour by district",
                [vehicles_by_district],
                bars=True,
                display_name="${__field.labels.district}",
                description="Sum of the counters' readings per hour (mean x count of the "
                "hourly district aggregates).",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Vehicles per counter",
                [_per_sensor_window("vehicle_count", "sum")],
                display_name="${__field.labels.sensor_id}",
                description="Raw counts summed per interval.",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Parking occupancy by district (15-minute mean)",
                [_district_series("occupancy", "15m")],
                unit=SHARE,
                steps=PARKING_STEPS,
                display_name="${__field.labels.district}",
                description="Share of the district's parking-space readings that said taken, "
                "per 15 minutes (the mean of occupancy, 1 taken / 0 free).",
            )
            .height(8)
            .span(24)
        )
    )


def environment() -> Dashboard:
    """Noise, weather, water levels and waste bins."""
    # Weather stations report the precipitation of their reporting interval (mm): summed.
    precipitation = Flux(
        flux.raw(quantity("precipitation"))
        + f"\n  |> group(columns: {columns(READING, 'sensor_id')})"
        + "\n  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)"
        + f"\n  |> keep(columns: {columns(READING, '_time', '_value', 'sensor_id')})"
    )
    water = Flux(
        flux.raw(quantity("water_level"), ("value", "unit"))
        + '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        + '\n  |> map(fn: (r) => ({_time: r._time, sensor: r.sensor_id + " (" + r.unit + ")", '
        + "_value: r.value}))"
        + '\n  |> group(columns: ["sensor"])'
    )
    return (
        _base(
            "urbanpulse-environment",
            "Environment",
            "Noise, weather, water levels and waste bins.",
            ["city", "public", "environment"],
        )
        .with_variable(tenant_variable())
        .with_variable(district_variable())
        .with_panel(
            timeseries(
                "Noise level by district (hourly mean)",
                [_district_series("noise_level", "1h")],
                unit="dB",
                steps=[(0, "green"), (53, "orange"), (65, "red")],
                display_name="${__field.labels.district}",
                description="Orange line: WHO 2018 guideline for road traffic noise, 53 dB "
                "(as Lden; hourly means are indicative).",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Temperature by district (15-minute mean)",
                [_district_series("temperature", "15m")],
                unit="celsius",
                display_name="${__field.labels.district}",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Relative humidity by district",
                [_district_series("relative_humidity", "15m")],
                unit="percent",
                display_name="${__field.labels.district}",
            )
            .height(8)
            .span(8)
        )
        .with_panel(
            timeseries(
                "Air pressure",
                [_per_sensor_window("pressure", "mean")],
                unit="pressurehpa",
                display_name="${__field.labels.sensor_id}",
            )
            .height(8)
            .span(8)
        )
        .with_panel(
            timeseries(
                "Wind speed",
                [_per_sensor_window("wind_speed", "mean")],
                unit="velocityms",
                display_name="${__field.labels.sensor_id}",
            )
            .height(8)
            .span(8)
        )
        .with_panel(
            timeseries(
                "Precipitation per interval",
                [precipitation],
                unit="lengthmm",
                bars=True,
                display_name="${__field.labels.sensor_id}",
            )
            .height(8)
            .span(8)
        )
        .with_panel(
            timeseries(
                "Water level",
                [water],
                display_name="${__field.labels.sensor}",
                description="Raw readings; each gauge in its own unit (cm or m), named in the "
                "legend.",
            )
            .height(8)
            .span(8)
        )
        .with_panel(
            bargauge_panel(
                "Waste bins: fill level now",
                _sensor_last("fill_level"),
                unit="percent",
                min_value=0,
                max_value=100,
                steps=[(0, "green"), (75, "orange"), (90, "red")],
                display_name="${__field.labels.sensor_id}",
            )
            .height(8)
            .span(8)
        )
    )


def sensor_health() -> Dashboard:
    """Last seen, battery, quality flags and the dead-letter rate."""
    last_seen = Flux(
        flux.raw(None)
        + "\n  |> last()"
        + f"\n  |> group(columns: {columns(READING, 'sensor_id')})"
        + '\n  |> max(column: "_time")'
        + "\n  |> group()"
        + "\n  |> map(fn: (r) => ({sensor_id: r.sensor_id, quantity: r.quantity, "
        + "last_seen: r._time, silent_s: (int(v: now()) - int(v: r._time)) / 1000000000}))"
        + '\n  |> sort(columns: ["silent_s"], desc: true)'
    )
    flagged = Flux(
        flux.raw(None, ("quality_flags",), 'r._value != ""')
        + "\n  |> map(fn: (r) => ({_time: r._time, flags: r._value, _value: 1}))"
        + '\n  |> group(columns: ["flags"])'
        + "\n  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)"
    )
    # Flagged readings over all readings: only a flagged reading has a quality_flags field
    # (an older worker wrote an empty one, left out here). Counted per field, then divided.
    flagged_share = Flux(
        flux.raw(None, ("value", "quality_flags"))
        + '\n  |> filter(fn: (r) => r._field == "value" or string(v: r._value) != "")'
        + '\n  |> group(columns: ["_field"])'
        + "\n  |> count()"
        + "\n  |> group()"
        + "\n  |> reduce(identity: {readings: 0.0, flagged: 0.0}, fn: (r, accumulator) => ({"
        + '\n       readings: if r._field == "value"'
        + "\n         then float(v: r._value) else accumulator.readings,"
        + '\n       flagged: if r._field == "quality_flags"'
        + "\n         then float(v: r._value) else accumulator.flagged}))"
        + "\n  |> map(fn: (r) => ({_value:"
        + "\n       if r.readings > 0.0 then 100.0 * r.flagged / r.readings else 0.0}))"
    )
    stale = Flux(
        flux.open_alerts()
        + '\n  |> filter(fn: (r) => r.rule == "stale")'
        + "\n  |> keep(columns: "
        + columns(ALERT, "started_at", "sensor_id", "quantity", "message")
        + ")",
        agg=True,
    )
    return (
        _base(
            "urbanpulse-sensor-health",
            "Sensor health",
            "Which sensors went quiet, which run out of battery, which send doubtful values, "
            "and how many messages the ingestor cannot read. Dead letters come from the "
            "ingestor's Prometheus metrics.",
            ["operations", "health"],
        )
        .with_variable(tenant_variable())
        .with_panel(
            stat_panel(
                "Readings with quality flags",
                flagged_share,
                unit="percent",
                steps=[(0, "green"), (5, "orange"), (20, "red")],
                description="Share of readings in the range that carry at least one flag.",
            )
            .height(6)
            .span(6)
        )
        .with_panel(
            stat_panel(
                "Dead letters per minute",
                promql("sum(rate(urbanpulse_ingest_dead_letters_total[$__rate_interval])) * 60"),
                steps=[(0, "green"), (1, "orange"), (10, "red")],
                description="Messages the ingestor could not decode (Prometheus).",
                calc="mean",
            )
            .height(6)
            .span(6)
        )
        .with_panel(
            table_panel(
                "Stale sensors (open alerts)",
                stale,
                description="Sensors the stream worker saw go silent for longer than expected.",
            )
            .height(6)
            .span(12)
        )
        .with_panel(
            table_panel(
                "Last seen per sensor",
                last_seen,
                description="Latest reading of each sensor in the range; silent_s is the time "
                "since then in seconds.",
            )
            .height(10)
            .span(12)
        )
        .with_panel(
            bargauge_panel(
                "Battery",
                _sensor_last("battery_level"),
                unit="percent",
                min_value=0,
                max_value=100,
                steps=[(0, "red"), (20, "orange"), (40, "green")],
                display_name="${__field.labels.sensor_id}",
            )
            .height(10)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Flagged readings by flags",
                [flagged],
                bars=True,
                display_name="${__field.labels.flags}",
                description="Readings per interval, by their quality flags (comma-joined).",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Dead letters by reason",
                [
                    promql(
                        "sum by (reason) "
                        "(rate(urbanpulse_ingest_dead_letters_total[$__rate_interval])) * 60",
                        legend="{{reason}}",
                    )
                ],
                unit="short",
                description="Per minute, by the reason the ingestor gave (Prometheus).",
            )
            .height(8)
            .span(12)
        )
    )


def platform() -> Dashboard:
    """Ingest rate, consumer lag and write latency of the platform itself."""
    stored = Flux(
        f"from(bucket: {flux.BUCKET})\n  {flux.RANGE}"
        f'\n  |> filter(fn: (r) => r._measurement == "{READING}" and r._field == "value")'
        f"\n  |> group(columns: {columns(READING, 'tenant')})"
        "\n  |> aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)"
    )
    ack_quantiles = [
        promql(
            f"histogram_quantile({quantile}, sum by (le) "
            "(rate(urbanpulse_ingest_kafka_ack_seconds_bucket[$__rate_interval])))",
            legend=f"p{int(quantile * 100)}",
            ref_id=ref,
        )
        for quantile, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
    ]
    api_quantiles = [
        promql(
            f"histogram_quantile({quantile}, sum by (le) "
            "(rate(urbanpulse_api_request_seconds_bucket[$__rate_interval])))",
            legend=f"p{int(quantile * 100)}",
            ref_id=ref,
        )
        for quantile, ref in ((0.5, "A"), (0.99, "B"))
    ]
    return (
        _base(
            "urbanpulse-platform",
            "Platform",
            "How the pipeline itself is doing: ingest rate, dead letters, Kafka consumer lag, "
            "write and API latency (Prometheus), and readings stored (InfluxDB).",
            ["operations", "platform"],
        )
        .with_panel(
            timeseries(
                "Ingest rate",
                [
                    promql(
                        "sum(rate(urbanpulse_ingest_messages_received_total[$__rate_interval]))",
                        legend="messages received",
                        ref_id="A",
                    ),
                    promql(
                        "sum(rate(urbanpulse_ingest_readings_total[$__rate_interval]))",
                        legend="readings to Kafka",
                        ref_id="B",
                    ),
                    promql(
                        "sum(rate(urbanpulse_ingest_messages_acked_total[$__rate_interval]))",
                        legend="messages acked",
                        ref_id="C",
                    ),
                ],
                unit="reqps",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Dead letters by reason",
                [
                    promql(
                        "sum by (reason) "
                        "(rate(urbanpulse_ingest_dead_letters_total[$__rate_interval]))",
                        legend="{{reason}}",
                    )
                ],
                unit="reqps",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Kafka consumer lag of the stream worker",
                [
                    promql(
                        "sum by (topic) (urbanpulse_worker_consumer_lag)",
                        legend="{{topic}}",
                    )
                ],
                description="Messages in Kafka the workers have not processed yet: each "
                "worker reports the lag of the partitions assigned to it.",
                steps=[(0, "green"), (10000, "orange"), (100000, "red")],
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "InfluxDB write latency (stream worker)",
                [
                    promql(
                        "histogram_quantile(0.95, sum by (le) "
                        "(rate(urbanpulse_worker_influx_write_seconds_bucket[$__rate_interval])))",
                        legend="p95",
                    )
                ],
                unit="s",
                description="95th percentile of the worker's batch writes to InfluxDB.",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "API latency",
                api_quantiles,
                unit="s",
                description="Time to answer open-data requests, all endpoints together.",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Kafka acknowledgement latency (ingest)",
                ack_quantiles,
                unit="s",
                description="From taking an MQTT message to Kafka confirming all its readings.",
            )
            .height(8)
            .span(8)
        )
        .with_panel(
            stat_panel(
                "Messages in flight",
                promql("sum(urbanpulse_ingest_in_flight)"),
                description="Taken from MQTT, not yet acknowledged.",
            )
            .height(8)
            .span(4)
        )
        .with_panel(
            timeseries(
                "Readings stored per interval, by tenant",
                [stored],
                bars=True,
                display_name="${__field.labels.tenant}",
            )
            .height(8)
            .span(12)
        )
    )


@dataclass(frozen=True)
class SideMeans:
    """The queries of one experiment group: hourly means, and their mean over the range."""

    hourly: Flux
    overall: Flux


def _side_means(chosen: str, side: str) -> SideMeans:
    """The group's sensors (variable ``side``): the mean of their hourly means per hour, and
    over the whole range, each labelled with the group's name in a ``side`` column."""
    ref = "A" if side == "treated" else "B"
    sensors = f"r.sensor_id =~ /^${{{side}:regex}}$/"
    base = flux.aggregate("sensor", chosen, window("1h"), ("mean",), sensors)
    label = f'map(fn: (r) => ({{_time: r._time, _value: r._value, side: "{side}"}}))'
    hourly = (
        base
        + f"\n  |> group(columns: {columns(AGG, '_time')})"
        + "\n  |> mean()"
        + "\n  |> group()"
        + f"\n  |> {label}"
        + '\n  |> group(columns: ["side"])'
    )
    overall = (
        base
        + "\n  |> group()"
        + "\n  |> mean()"
        + f'\n  |> map(fn: (r) => ({{_value: r._value, side: "{side}"}}))'
        + '\n  |> group(columns: ["side"])'
    )
    return SideMeans(hourly=Flux(hourly, ref, agg=True), overall=Flux(overall, ref, agg=True))


def experiment() -> Dashboard:
    """The board a city copies to try an idea: every dimension is a variable."""
    # The quantity and window variables offer only stored values (tag values, WINDOWS).
    chosen, size = '"${quantity}"', '"${window}"'
    per_sensor = columns(READING, "_time", "_value", "sensor_id")
    sensor_aggregates = Flux(
        flux.aggregate("sensor", chosen, size, ("mean",), SENSORS)
        + f"\n  |> keep(columns: {columns(AGG, '_time', '_value', 'sensor_id')})",
        agg=True,
    )
    district_band = Flux(
        flux.aggregate("district", chosen, size, ("min", "mean", "max"), DISTRICTS)
        + f"\n  |> keep(columns: {columns(AGG, '_time', '_value', '_field', 'district')})",
        agg=True,
    )
    raw_series = Flux(
        flux.raw(chosen, ("value",), SENSORS)
        + "\n  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)"
        + f"\n  |> keep(columns: {per_sensor})"
    )
    raw_rows = Flux(
        flux.raw(chosen, ("value", "unit", "quality_flags"), SENSORS)
        + '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        + "\n  |> group()"
        + "\n  |> keep(columns: "
        + columns(READING, "_time", "sensor_id", "value", "unit", "quality_flags")
        + ")"
        + '\n  |> sort(columns: ["_time"], desc: true)'
        + "\n  |> limit(n: 200)"
    )
    latest = Flux(
        flux.raw(chosen, ("value",), SENSORS)
        + "\n  |> last()"
        + f"\n  |> keep(columns: {per_sensor})"
    )
    window_variable = (
        CustomVariable("window")
        .label("Aggregation window")
        .values(",".join(flux.WINDOWS))
        .current(dashboard_models.VariableOption(selected=True, text="15m", value="15m"))
    )
    sides = {side: _side_means(chosen, side) for side in ("treated", "control")}
    group_options = flux.tag_values(
        READING,
        "sensor_id",
        f'r.tenant == {flux.TENANT} and r.quantity == {chosen} and r._field == "value"',
    )
    return (
        _base(
            "urbanpulse-experiment",
            "Experiment",
            "Pick a tenant, quantity, sensors, districts and aggregation window. Copy this board "
            "(Save as) to try an idea; the provisioned original stays as it is.",
            ["lab", "experiment"],
            editable=True,
        )
        .with_variable(tenant_variable())
        .with_variable(
            query_variable(
                "quantity",
                "Quantity",
                flux.tag_values(
                    READING,
                    "quantity",
                    f'r.tenant == {flux.TENANT} and r._field == "value"',
                ),
            )
        )
        .with_variable(
            query_variable(
                "sensor",
                "Sensor",
                flux.tag_values(
                    READING,
                    "sensor_id",
                    f'r.tenant == {flux.TENANT} and r.quantity == {chosen} and r._field == "value"',
                ),
                multi=True,
            )
        )
        .with_variable(district_variable())
        .with_variable(window_variable)
        .with_variable(query_variable("treated", "Treated sensors", group_options, multi=True))
        .with_variable(query_variable("control", "Control sensors", group_options, multi=True))
        .with_panel(
            timeseries(
                "${quantity}: raw readings",
                [raw_series],
                display_name="${__field.labels.sensor_id}",
                description="Raw readings of the chosen sensors, averaged per interval.",
            )
            .height(9)
            .span(16)
        )
        .with_panel(
            bargauge_panel(
                "${quantity}: latest value",
                latest,
                display_name="${__field.labels.sensor_id}",
            )
            .height(9)
            .span(8)
        )
        .with_panel(
            timeseries(
                "${quantity}: ${window} mean per sensor",
                [sensor_aggregates],
                display_name="${__field.labels.sensor_id}",
                description="The stream worker's tumbling-window aggregates, per sensor.",
            )
            .height(9)
            .span(12)
        )
        .with_panel(
            timeseries(
                "${quantity}: ${window} min / mean / max per district",
                [district_band],
                display_name="${__field.labels.district} ${__field.labels._field}",
                description="District aggregates of the chosen window.",
            )
            .height(9)
            .span(12)
        )
        .with_panel(
            timeseries(
                "${quantity}: treated vs control, hourly mean",
                [sides["treated"].hourly, sides["control"].hourly],
                display_name="${__field.labels.side}",
                description="The mean of the treated sensors' hourly means against the control "
                "sensors' (variables treated, control): the gap before and after a change is "
                "the effect. /v1/experiments/{id} gives its confidence interval.",
            )
            .height(9)
            .span(16)
        )
        .with_panel(
            bargauge_panel(
                "${quantity}: treated and control, mean over the range",
                sides["treated"].overall,
                display_name="${__field.labels.side}",
                description="Mean of all hourly means in the time range, per group: set the "
                "range to before, then to after the change, to compare them.",
            )
            .with_target(sides["control"].overall)
            .height(9)
            .span(8)
        )
        .with_panel(
            table_panel(
                "${quantity}: raw readings (newest 200)",
                raw_rows,
                description="With unit and quality flags as stored.",
            )
            .height(10)
            .span(24)
        )
    )


SCORE_STEPS: list[Step] = [(0, "red"), (60, "orange"), (80, "green")]
SHARE_STEPS: list[Step] = [(0, "red"), (0.8, "orange"), (0.95, "green")]


def scorecard() -> Dashboard:
    """The pilot scorecard: the tenant's score per day, its parts, districts, weakest sensors."""
    columns_kpi = ("score", "completeness", "uptime", "latency_p95_s", "dead_letters")
    by_time = columns(KPI, "_time", "_value")
    day_score = Flux(flux.kpi("tenant", ("score",)) + f"\n  |> keep(columns: {by_time})", agg=True)
    shares = Flux(
        flux.kpi("tenant", ("completeness", "uptime"))
        + f"\n  |> keep(columns: {columns(KPI, '_time', '_value', '_field')})",
        agg=True,
    )
    districts = Flux(
        flux.kpi("district", ("score",))
        + "\n  |> last()"
        + f"\n  |> keep(columns: {columns(KPI, '_value', 'subject')})",
        agg=True,
    )
    weakest = Flux(
        flux.kpi("sensor", columns_kpi)
        + "\n  |> last()"
        + '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
        + "\n  |> group()"
        + f"\n  |> keep(columns: {columns(KPI, '_time', 'subject', *columns_kpi)})"
        + '\n  |> sort(columns: ["score"])'
        + "\n  |> limit(n: 10)",
        agg=True,
    )
    per_day = {
        name: Flux(flux.kpi("tenant", (name,)) + f"\n  |> keep(columns: {by_time})", agg=True)
        for name in ("dead_letters", "latency_p95_s")
    }
    board = (
        _base(
            "urbanpulse-scorecard",
            "Pilot scorecard",
            "The indicators of `urbanpulse kpis` (measurement kpi, docs/kpis.md): the town's "
            "0-100 score per day and what it is made of, the districts, the weakest sensors.",
            ["operations", "scorecard"],
        )
        .time("now-30d", "now")
        .refresh("10m")
        .with_variable(tenant_variable())
    )
    return (
        board.with_panel(
            stat_panel(
                "Town score (latest day)",
                day_score,
                steps=SCORE_STEPS,
                description="The tenant's scorecard, 0-100, of its latest stored day.",
            )
            .height(6)
            .span(6)
        )
        .with_panel(
            timeseries(
                "Town score per day",
                [day_score],
                steps=SCORE_STEPS,
                description="One point per day (its start), recomputed every run of the job.",
            )
            .height(6)
            .span(18)
        )
        .with_panel(
            timeseries(
                "Completeness and uptime per day",
                [shares],
                unit=SHARE,
                steps=SHARE_STEPS,
                display_name="${__field.labels._field}",
                description="Reports received / expected, and the share of reporting intervals "
                "with data, over all the tenant's sensors.",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            bargauge_panel(
                "District scores (latest day)",
                districts,
                steps=SCORE_STEPS,
                min_value=0,
                max_value=100,
                display_name="${__field.labels.subject}",
                description="The mean score of each district's sensors.",
            )
            .height(8)
            .span(12)
        )
        .with_panel(
            table_panel(
                "Weakest sensors (their latest day)",
                weakest,
                description="The ten lowest scores; /overview and /v1/kpis name each one's "
                "weakest part.",
            )
            .height(9)
            .span(12)
        )
        .with_panel(
            timeseries(
                "Dead letters per day",
                [per_day["dead_letters"]],
                bars=True,
                description="Messages or readings of the tenant refused as dead letters.",
            )
            .height(9)
            .span(6)
        )
        .with_panel(
            timeseries(
                "Delivery latency p95 per day",
                [per_day["latency_p95_s"]],
                unit="s",
                description="95th percentile of received - observed time, all sensors.",
            )
            .height(9)
            .span(6)
        )
    )


BOARDS: tuple[Board, ...] = (
    Board("urbanpulse-city-overview", CITY, city_overview),
    Board("urbanpulse-air-quality", CITY, air_quality),
    Board("urbanpulse-mobility", CITY, mobility),
    Board("urbanpulse-environment", CITY, environment),
    Board("urbanpulse-sensor-health", OPERATIONS, sensor_health),
    Board("urbanpulse-platform", OPERATIONS, platform),
    Board("urbanpulse-scorecard", OPERATIONS, scorecard),
    Board("urbanpulse-experiment", LAB, experiment),
)
