"""Cayenne Low Power Payload (binary) on ``urbanpulse/{tenant}/{sensor}/lpp``.

Specification: myDevices, https://docs.mydevices.com/docs/lorawan/cayenne-lpp (types from the
IPSO Smart Objects, LPP type = IPSO object id - 3200), with the extended types of the
ElectronicCats CayenneLPP library (https://github.com/ElectronicCats/CayenneLPP, API.md).

A frame is a sequence of ``channel (1 byte) | type (1 byte) | value (big-endian)`` records.
Mapping decisions (also in docs/payloads.md):

* The device is the sensor (the topic's sensor id), whichever decoder read its bytes: ours,
  The Things Stack's or ChirpStack's. The LPP channel ("data channel: uniquely identifies each
  sensor in the device across frames") is the reading's ``probe``: two temperature probes on
  channels 3 and 5 stay two series of one sensor, probes ``3`` and ``5``.
* Multi-axis types give one reading per axis (acceleration_x/y/z in ``[g]``,
  angular_velocity_x/y/z in ``deg/s``); GPS gives latitude, longitude, altitude readings and
  the location of every reading of the frame; colour gives colour_red/green/blue.
* The Unix-time type (133) is the observation time of the frame's readings; without it the
  time of receipt is used.
* An unknown type, or a record cut short, rejects the frame (``unknown_lpp_type``,
  ``truncated``): the length of an unknown type is unknown, so nothing after it can be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.decoders import DecodeContext, DecodeError
from ingest.decoders._common import location_of, make_reading, probe_of
from urbanpulse import mqtt_topics
from urbanpulse.model import Location, Reading

FORMAT = mqtt_topics.CAYENNE_LPP


@dataclass(frozen=True)
class LppType:
    """One LPP data type: its quantities (one per axis), bytes per axis, sign and divisor."""

    code: int
    name: str
    quantities: tuple[str, ...]
    size: int
    signed: bool
    divisor: float


def _types(*types: LppType) -> dict[int, LppType]:
    return {t.code: t for t in types}


TYPES = _types(
    LppType(0, "digital_input", ("digital_input",), 1, False, 1),
    LppType(1, "digital_output", ("digital_output",), 1, False, 1),
    LppType(2, "analog_input", ("analog_input",), 2, True, 100),
    LppType(3, "analog_output", ("analog_output",), 2, True, 100),
    LppType(100, "generic_sensor", ("generic",), 4, False, 1),
    LppType(101, "illuminance", ("illuminance",), 2, False, 1),
    LppType(102, "presence", ("presence",), 1, False, 1),
    LppType(103, "temperature", ("temperature",), 2, True, 10),
    LppType(104, "humidity", ("relative_humidity",), 1, False, 2),
    LppType(
        113, "accelerometer", ("acceleration_x", "acceleration_y", "acceleration_z"), 2, True, 1000
    ),
    LppType(115, "barometer", ("pressure",), 2, False, 10),
    LppType(116, "voltage", ("voltage",), 2, False, 100),
    LppType(117, "current", ("current",), 2, False, 1000),
    LppType(118, "frequency", ("frequency",), 4, False, 1),
    LppType(120, "percentage", ("percentage",), 1, False, 1),
    LppType(121, "altitude", ("altitude",), 2, True, 1),
    LppType(125, "concentration", ("concentration",), 2, False, 1),
    LppType(128, "power", ("power",), 2, False, 1),
    LppType(130, "distance", ("distance",), 4, False, 1000),
    LppType(131, "energy", ("energy",), 4, False, 1000),
    LppType(132, "direction", ("direction",), 2, False, 1),
    LppType(133, "unix_time", ("unix_time",), 4, False, 1),
    LppType(
        134,
        "gyrometer",
        ("angular_velocity_x", "angular_velocity_y", "angular_velocity_z"),
        2,
        True,
        100,
    ),
    LppType(135, "colour", ("colour_red", "colour_green", "colour_blue"), 1, False, 1),
    LppType(136, "gps", ("latitude", "longitude", "altitude"), 3, True, 0),  # see _gps
    LppType(142, "switch", ("switch",), 1, False, 1),
)

GPS = 136
UNIX_TIME = 133


@dataclass(frozen=True)
class LppValue:
    """One decoded value: the channel it came on, the canonical quantity and the value."""

    channel: int
    quantity: str
    value: float


@dataclass(frozen=True)
class LppFrame:
    """A decoded frame: its values, the position from a GPS record, the time from type 133."""

    values: tuple[LppValue, ...]
    location: Location | None = None
    time: datetime | None = None


def parse(data: bytes) -> LppFrame:
    """Decode LPP bytes into values, or raise DecodeError; shared with the LoRaWAN decoders."""
    if not data:
        raise DecodeError("empty", "an LPP frame needs at least one record")
    values: list[LppValue] = []
    location: Location | None = None
    time: datetime | None = None
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise DecodeError("truncated", f"byte {at}: a record needs channel and type")
        channel, code = data[at], data[at + 1]
        kind = TYPES.get(code)
        if kind is None:
            raise DecodeError("unknown_lpp_type", f"byte {at + 1}: unknown LPP type {code}")
        width = kind.size * len(kind.quantities)
        body = data[at + 2 : at + 2 + width]
        if len(body) < width:
            raise DecodeError("truncated", f"byte {at}: {kind.name} needs {width} bytes")
        raw = [
            int.from_bytes(body[i : i + kind.size], "big", signed=kind.signed)
            for i in range(0, width, kind.size)
        ]
        if code == GPS:
            lat, lon, alt = raw[0] / 10_000, raw[1] / 10_000, raw[2] / 100
            values += [
                LppValue(channel, q, v)
                for q, v in zip(kind.quantities, (lat, lon, alt), strict=True)
            ]
            location = location or location_of(lat, lon, alt)
        elif code == UNIX_TIME:
            time = datetime.fromtimestamp(raw[0], tz=UTC)
        else:
            values += [
                LppValue(channel, q, _scaled(r, kind.divisor))
                for q, r in zip(kind.quantities, raw, strict=True)
            ]
        at += 2 + width
    return LppFrame(tuple(values), location, time)


def _scaled(raw: int, divisor: float) -> float:
    return raw / divisor if divisor != 1 else float(raw)


def decode(payload: bytes, ctx: DecodeContext) -> list[Reading]:
    """Decode one Cayenne LPP frame into canonical readings of the device, a probe per channel."""
    return frame_readings(parse(payload), ctx, payload, ctx.sensor_id, FORMAT, ctx.received_at)


def frame_readings(
    frame: LppFrame,
    ctx: DecodeContext,
    payload: bytes,
    sensor_id: str,
    source_format: str,
    default_time: datetime,
    first_index: int = 0,
) -> list[Reading]:
    """Turn a decoded LPP frame into readings of ``sensor_id``, the channel as the probe."""
    readings = []
    ids = ctx.derived_ids(payload)
    for index, item in enumerate(frame.values, start=first_index):
        resolved = ctx.quantities.resolve(item.quantity, item.value, quantity=item.quantity)
        if resolved is None:
            continue
        readings.append(
            make_reading(
                ctx,
                resolved,
                sensor_id=sensor_id,
                observed_at=frame.time or default_time,
                location=frame.location,
                source_format=source_format,
                message_id=ids(index),
                probe=probe_of(item.channel),
            )
        )
    return readings
