"""Line protocol: escaped per the spec, and the same lines as the client's Point wrote before.

The parser below reads a line as InfluxDB 1.8 does ("Line protocol reference"; in tags a
backslash keeps the next character from ending the value, and ``\\,``, ``\\=``, ``\\ `` stand
for the character; in string fields ``\\"`` and ``\\\\``), so the round trip checks the escapes
against the reader, not against themselves.
"""

import itertools
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client import Point, WritePrecision

from streams.alerts import AlertEvent
from streams.lineproto import escape_tag_value, series_key, string_field
from streams.pipeline import AggregateUpdate
from streams.points import SensorLabels, aggregate_line, alert_line, reading_line, reading_lines
from streams.windows import Aggregate
from urbanpulse.model import ID_PATTERN, Location, Reading

# --- a reader of line protocol ----------------------------------------------------------------


def split_unescaped(text: str, sep: str) -> list[str]:
    """Split at ``sep`` not preceded by a backslash (as InfluxDB scans keys and tags)."""
    parts, start = [], 0
    for i, char in enumerate(text):
        if char == sep and (i == 0 or text[i - 1] != "\\"):
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def unescape_tag(text: str) -> str:
    for char in ",= ":
        text = text.replace("\\" + char, char)
    return text


def parse_key(key: str) -> tuple[str, dict[str, str]]:
    """Measurement and tags of a series key."""
    measurement, *tags = split_unescaped(key, ",")
    out = {}
    for tag in tags:
        name, value = split_unescaped(tag, "=")
        out[unescape_tag(name)] = unescape_tag(value)
    return unescape_tag(measurement), out


def parse_string_field(text: str) -> str:
    """A quoted string field value."""
    assert text[0] == text[-1] == '"'
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            out.append(body[i + 1])
            i += 2
        else:
            assert body[i] != '"', "an unescaped quote ends the string early"
            out.append(body[i])
            i += 1
    return "".join(out)


# --- escapes ----------------------------------------------------------------------------------

# Any text line protocol can carry in a tag value: no newline, tab or carriage return (they
# would end or split the line; the client writes them as two characters), not ending in a
# backslash (it would escape the separator after it), not empty.
tag_text = st.text(min_size=1).filter(
    lambda t: not any(c in t for c in "\n\t\r") and not t.endswith("\\")
)


@settings(max_examples=500)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), tag_text), max_size=4))
def test_tag_values_read_back_as_written(tags: list[tuple[str, str]]) -> None:
    wanted = dict(tags)
    measurement, found = parse_key(series_key("m", list(wanted.items())))
    assert measurement == "m" and found == wanted


@settings(max_examples=500)
@given(st.text())
def test_string_fields_read_back_as_written(text: str) -> None:
    assert parse_string_field(string_field(text)) == text


def test_what_line_protocol_cannot_carry_is_written_as_the_client_did() -> None:
    assert escape_tag_value("a\nb") == "a\\nb"  # two characters, as influxdb_client
    assert escape_tag_value("ends\\") == "ends\\ "  # a backslash cannot end a tag value
    assert series_key("m", [("a", ""), ("b", None), ("c", "x")]) == "m,c=x"  # no empty tags


# --- the same lines as before ---------------------------------------------------------------


def point_before(reading: Reading, labels: SensorLabels) -> str:
    """The line of ``streams.points.to_point`` before line protocol was built by hand."""
    point = (
        Point("reading")
        .tag("tenant", reading.tenant)
        .tag("sensor_id", reading.sensor_id)
        .tag("quantity", reading.quantity)
        .tag("privacy", labels.privacy)
        .field("value", float(reading.value))
        .field("unit", reading.unit)
        .field("source_format", reading.source_format)
        .field("message_id", reading.message_id)
        .field("received_at", reading.received_at.isoformat())
        .time(reading.observed_at, WritePrecision.NS)
    )
    if reading.quality_flags:  # since 2026-12-07 only a flagged reading has the field
        point.field("quality_flags", ",".join(reading.quality_flags))
    for name in ("licence", "sensor_type", "district"):
        if getattr(labels, name):
            point.tag(name, getattr(labels, name))
    if reading.location is not None:
        point.field("lat", reading.location.lat).field("lon", reading.location.lon)
        if reading.location.alt is not None:
            point.field("alt", reading.location.alt)
    return str(point.to_line_protocol())


ids = st.from_regex(ID_PATTERN, fullmatch=True).filter(lambda t: not t.endswith("\\"))
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    observed = T0 + timedelta(microseconds=draw(st.integers(-(10**12), 10**12)))
    return Reading(
        tenant=draw(ids),
        sensor_id=draw(ids),
        quantity=draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)),
        value=draw(st.floats(allow_nan=False, allow_infinity=False)),
        unit=draw(st.from_regex(r"[^\s\x00-\x1f\x7f]{1,32}", fullmatch=True)),
        observed_at=observed,
        received_at=observed + timedelta(seconds=draw(st.integers(0, 10**6))),
        location=draw(
            st.none()
            | st.builds(
                Location,
                lat=st.floats(-90, 90),
                lon=st.floats(-180, 180),
                alt=st.none() | st.floats(-500, 9000),
            )
        ),
        source_format=draw(st.text(max_size=20)),
        message_id=draw(st.text(min_size=1, max_size=40)),
        quality_flags=tuple(draw(st.lists(st.sampled_from(["spike", "late", "gap"]), max_size=3))),
    )


labels = st.builds(
    SensorLabels,
    privacy=st.sampled_from(["open", "restricted", "personal"]),
    licence=st.none() | tag_text,
    sensor_type=st.none() | tag_text,
    district=st.none() | ids,
)


@settings(max_examples=300)
@given(readings(), labels)
def test_a_reading_line_is_the_one_the_client_wrote_before(
    reading: Reading, tags: SensorLabels
) -> None:
    assert reading_line(reading, tags) == point_before(reading, tags)


@st.composite
def messages(draw: st.DrawFn) -> list[Reading]:
    """Readings as a batch holds them: runs of one message's readings, which share most
    fields, each with its own value and at times its own id, quantity, unit, flags, place
    or receipt time."""
    out: list[Reading] = []
    for first in draw(st.lists(readings(), min_size=1, max_size=6)):
        out.append(first)
        for _ in range(draw(st.integers(0, 4))):
            changes = draw(
                st.fixed_dictionaries(
                    {"value": st.floats(allow_nan=False, allow_infinity=False)},
                    optional={
                        "unit": st.sampled_from(["Cel", "%"]),
                        "quality_flags": st.just(("spike",)),
                        "location": st.just(Location(lat=1.5, lon=2.5)),
                        "quantity": st.just("humidity"),
                        "message_id": st.text(min_size=1, max_size=8),
                        "received_at": st.just(T0),
                    },
                )
            )
            out.append(msgspec.structs.replace(first, **changes))
    return out


@settings(max_examples=200)
@given(messages(), labels)
def test_a_batch_s_lines_are_each_reading_s_line(batch: list[Reading], tags: SensorLabels) -> None:
    lines = reading_lines(batch, {batch[0].key: tags})
    assert lines == [
        reading_line(r, tags if r.key == batch[0].key else SensorLabels()) for r in batch
    ]


def test_a_probe_is_a_tag_only_when_set() -> None:
    base = Reading(
        tenant="t",
        sensor_id="dev",
        quantity="temperature",
        value=21.5,
        unit="Cel",
        observed_at=T0,
        received_at=T0,
        source_format="lpp",
        message_id="m",
    )
    assert reading_line(base).startswith("reading,privacy=open,quantity=temperature,sensor_id=dev,")
    probed = Reading(**{**{f: getattr(base, f) for f in base.__struct_fields__}, "probe": "1"})
    assert reading_line(probed).startswith(
        "reading,privacy=open,probe=1,quantity=temperature,sensor_id=dev,tenant=t "
    )


@settings(max_examples=300)
@given(
    ids,
    ids,
    st.none() | st.from_regex(r"[A-Za-z0-9_.-]{1,8}", fullmatch=True),
    tag_text,
    st.integers(2, 10**6),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=4, max_size=4),
)
def test_aggregate_and_alert_lines_are_the_ones_the_client_wrote_before(
    tenant: str, subject: str, probe: str | None, privacy: str, count: int, values: list[float]
) -> None:
    # a window of one value, and one of any count whose fields all differ
    one, several = Aggregate(1, *[values[0]] * 4), Aggregate(count, *values)
    for scope, value in itertools.product(("sensor", "district"), (one, several)):
        update = AggregateUpdate(
            tenant,
            scope,
            subject,
            "pm2_5",
            "15m",
            1_795_773_600_000_000,
            "ug/m3",
            value,
            probe if scope == "sensor" else None,
        )  # type: ignore[arg-type]
        point = (
            Point("aggregate")
            .tag("privacy", privacy)
            .tag("tenant", tenant)
            .tag("scope", scope)
            .tag("sensor_id" if scope == "sensor" else "district", subject)
            .tag("quantity", "pm2_5")
            .tag("window", "15m")
            .field("count", value.count)
            .field("mean", value.mean)
            .field("min", value.min)
            .field("max", value.max)
            .field("last", value.last)
            .field("unit", "ug/m3")
            .time(datetime(2026, 11, 27, 10, 0, tzinfo=UTC), WritePrecision.NS)
        )
        if update.probe is not None:
            point.tag("probe", update.probe)
        assert aggregate_line(update, privacy) == point.to_line_protocol()
    event = AlertEvent(
        tenant=tenant,
        sensor_id=subject,
        rule="low_battery",
        quantity="battery_level",
        state="closed",
        started_at=T0,
        ended_at=T0 + timedelta(minutes=3),
        value=9.0,
        message='battery "low" \\ 15 %',
    )
    point = (
        Point("alert")
        .tag("privacy", privacy)
        .tag("tenant", tenant)
        .tag("sensor_id", subject)
        .tag("rule", "low_battery")
        .tag("quantity", "battery_level")
        .field("state", "closed")
        .field("started_at", "2026-11-27T10:00:00Z")
        .field("ended_at", "2026-11-27T10:03:00Z")
        .field("value", 9.0)
        .field("message", event.message)
        .time(T0, WritePrecision.NS)
    )
    assert alert_line(event, privacy) == point.to_line_protocol()
