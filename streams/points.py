"""How readings, window aggregates and alerts become InfluxDB line protocol (pure).

Measurement ``reading``; tags ``tenant``, ``sensor_id``, ``quantity``, and ``probe`` when the
reading has one; time ``observed_at``. Those decide the series and timestamp, so the same
observation written twice is the same point: replays and retries overwrite instead of
duplicating. The sensor's registry labels (:class:`SensorLabels`: ``privacy``, and
``licence``, ``sensor_type`` and ``district`` when registered) are tags too: one value per
sensor, so they add no series, and the API filters on them cheaply. They stay the same for a
sensor unless the registry entry changes (docs/registry.md). Everything else is a field.

Aggregates (measurement ``aggregate``) and alerts (measurement ``alert``) go to the aggregate
bucket, with the schema agreed with the API (``urbanpulse.influx_layout``, docs/streams.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from streams.lineproto import (
    escape_tag_value,
    float_field,
    line,
    series_key,
    string_field,
)
from streams.quality import epoch_us
from urbanpulse.influx_layout import (
    AGGREGATE_MEASUREMENT,
    ALERT_MEASUREMENT,
    PROBE_TAG,
    READING_MEASUREMENT,
)
from urbanpulse.model import Reading

if TYPE_CHECKING:
    from streams.alerts import AlertEvent
    from streams.pipeline import AggregateUpdate
    from urbanpulse.registry import SensorInfo


@dataclass(frozen=True)
class SensorLabels:
    """What the registry says about a sensor that travels with its points (as tags)."""

    privacy: str = "open"
    licence: str | None = None
    sensor_type: str | None = None
    district: str | None = None

    @classmethod
    def of(cls, info: SensorInfo | None) -> SensorLabels:
        """The labels of a registered sensor; an unregistered one is ``open`` (as before)."""
        if info is None:
            return cls()
        return cls(info.privacy, info.licence, info.sensor_type, info.district)

    def tags(self) -> list[tuple[str, str | None]]:
        """The label tags: ``privacy`` always, the others when known."""
        return [
            ("privacy", self.privacy),
            ("licence", self.licence),
            ("sensor_type", self.sensor_type),
            ("district", self.district),
        ]


OPEN = SensorLabels()


def reading_series(reading: Reading, labels: SensorLabels = OPEN) -> str:
    """The series key of a reading's point: measurement and tags, escaped."""
    return series_key(
        READING_MEASUREMENT,
        [
            ("tenant", reading.tenant),
            ("sensor_id", reading.sensor_id),
            ("quantity", reading.quantity),
            (PROBE_TAG, reading.probe),
            *labels.tags(),
        ],
    )


def reading_line(reading: Reading, labels: SensorLabels = OPEN) -> str:
    """The line of one reading (:func:`reading_lines` of it alone)."""
    return reading_lines([reading], {reading.key: labels})[0]


def _shared_fields(reading: Reading) -> tuple[str, str]:
    """The fields in key order (alt, lat, lon, message_id, quality_flags, received_at,
    source_format, unit, value) before the message id, and from after it to ``value=``: the
    readings of one message share them.

    ``quality_flags`` only when the reading has flags: most readings have none, and InfluxDB
    spends about a microsecond a point on each field it stores (docs/performance.md); an
    absent field reads as no flags (docs/streams.md, "Stored points").
    """
    where = reading.location
    place = ""
    if where is not None:
        alt = "" if where.alt is None else f"alt={float_field(where.alt)},"
        place = f"{alt}lat={float_field(where.lat)},lon={float_field(where.lon)},"
    flags = ",".join(reading.quality_flags)
    flagged = f"quality_flags={string_field(flags)}," if flags else ""
    rest = (
        f'{flagged}received_at="{reading.received_at.isoformat()}",'
        f"source_format={string_field(reading.source_format)},"
        f"unit={string_field(reading.unit)},value="
    )
    return place, rest


def reading_lines(readings: list[Reading], labels: dict[bytes, SensorLabels]) -> list[str]:
    """The lines of a batch of readings (``labels`` by sensor key; missing: ``open``).

    Each line is the reading's line alone. This runs for every reading stored, so the text a
    line shares with others is built once: its series key once per series, the fields but
    the value and the message id once per run of readings of one message (a message's
    readings of one sensor come one after the other, and share one receipt time, source
    and unit). At 50 readings per message a line costs about half as much
    (docs/performance.md).
    """
    series: dict[tuple[str, str, str, str | None], str] = {}
    out = []
    before: Reading | None = None  # the reading before, whose fields may be this one's
    place = rest = ""
    for reading in readings:
        which = (reading.tenant, reading.sensor_id, reading.quantity, reading.probe)
        key = series.get(which)
        if key is None:
            key = series[which] = reading_series(reading, labels.get(reading.key, OPEN))
        if before is None or not _same_fields(reading, before):
            place, rest = _shared_fields(reading)
        before = reading
        out.append(
            f"{key} {place}message_id={string_field(reading.message_id)},{rest}"
            f"{float_field(reading.value)} {epoch_us(reading.observed_at) * 1000}"
        )
    return out


def _same_fields(reading: Reading, other: Reading) -> bool:
    """Whether two readings have the same fields but the value and the message id (the
    receipt time first: the one that differs between messages)."""
    return (
        reading.received_at == other.received_at
        and reading.unit == other.unit
        and reading.quality_flags == other.quality_flags
        and reading.source_format == other.source_format
        and reading.location == other.location
    )


def aggregate_line(update: AggregateUpdate, privacy: str = "open") -> str:
    """The line of a window's running aggregate: time = window start, so rewrites overwrite.

    ``privacy`` is the sensor's class (a district aggregate is ``open``: only open sensors
    feed it), so the API can leave out a restricted sensor's aggregates.
    """
    # Tags written out in key order (this runs for every window a batch touched). Quantity,
    # probe, scope and window names never need escaping (urbanpulse.model patterns).
    subject = escape_tag_value(update.subject)
    if update.scope == "sensor":
        probe = "" if update.probe is None else f",{PROBE_TAG}={update.probe}"
        tags = (
            f"privacy={escape_tag_value(privacy)}{probe},quantity={update.quantity},"
            f"scope=sensor,sensor_id={subject}"
        )
    else:
        tags = (
            f"district={subject},privacy={escape_tag_value(privacy)},"
            f"quantity={update.quantity},scope={update.scope}"
        )
    value = update.value
    return (
        f"{AGGREGATE_MEASUREMENT},{tags},tenant={escape_tag_value(update.tenant)},"
        f"window={update.window} count={value.count}i,last={float_field(value.last)},"
        f"max={float_field(value.max)},mean={float_field(value.mean)},"
        f"min={float_field(value.min)},unit={string_field(update.unit)} "
        f"{update.start_us * 1000}"
    )


def alert_line(event: AlertEvent, privacy: str = "open") -> str:
    """The line of an alert episode: time = episode start, so closing overwrites opening."""
    key = series_key(
        ALERT_MEASUREMENT,
        [
            ("privacy", privacy),
            ("tenant", event.tenant),
            ("sensor_id", event.sensor_id),
            ("rule", event.rule),
            ("quantity", event.quantity),
        ],
    )
    fields = [
        ("state", string_field(event.state)),
        ("started_at", string_field(_rfc3339(event.started_at))),
        ("ended_at", string_field("" if event.ended_at is None else _rfc3339(event.ended_at))),
        ("value", float_field(event.value)),
        ("message", string_field(event.message)),
    ]
    return line(key, fields, epoch_us(event.started_at) * 1000)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
