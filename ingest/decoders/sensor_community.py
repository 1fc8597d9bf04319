"""Sensor.Community (luftdaten, airRohr) JSON on ``urbanpulse/{tenant}/{sensor}/sensorcommunity``.

The format airRohr nodes POST to api.sensor.community ``/v1/push-sensor-data/``, to madavi.de
and to a "custom API" (https://github.com/opendata-stuttgart/meta/wiki/EN-APIs, firmware
https://github.com/opendata-stuttgart/sensors-software)::

    {"esp8266id": "1497234", "software_version": "NRZ-2020-129",
     "sensordatavalues": [{"value_type": "SDS_P1", "value": "3.00"}, ...]}

Mapping decisions (also in docs/payloads.md):

* Sensor: the topic's sensor id; ``esp8266id`` and ``software_version`` are ignored.
* ``value_type`` → quantity through the alias table (``P1``/``SDS_P1`` → pm10, ``P2``/``SDS_P2``
  → pm2_5, ``P0`` → pm1, ``BME280_temperature`` → temperature, ``signal`` → rssi, …). Values
  are numeric strings; non-numeric ones (``GPS_date``) are ignored, and the firmware counters
  ``samples``, ``min_micro``, ``max_micro`` are ignored on purpose.
* Units are not sent; they are those the firmware uses: ``*_pressure`` in Pa (converted to
  hPa), ``signal`` in dBm, PM in ug/m3, temperature in Cel, humidity in %.
* Time: the push carries none, so the time of receipt. The read API's shape (a JSON array of
  such objects with ``timestamp`` and ``location``) is accepted too: its zone-less
  ``timestamp`` is UTC, as the API serves it, and ``location`` gives the position.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest.decoders import DecodeContext, DecodeError, DerivedIds
from ingest.decoders._common import (
    MAX_READINGS,
    location_of,
    make_reading,
    number,
    parse_json,
    parse_time,
)
from urbanpulse import mqtt_topics
from urbanpulse.model import Location, Reading

FORMAT = mqtt_topics.SENSOR_COMMUNITY

# Units the airRohr firmware uses, by value_type suffix (after normalising to lower case).
_UNIT_BY_SUFFIX = (
    ("pressure_at_sealevel", "Pa"),
    ("_pressure", "Pa"),
    ("signal", "dBm"),
)


def decode(payload: bytes, ctx: DecodeContext) -> list[Reading]:
    """Decode a Sensor.Community push body (or read-API array) into canonical readings."""
    document = parse_json(payload)
    items = document if isinstance(document, list) else [document]
    if not items or len(items) > MAX_READINGS:
        raise DecodeError("invalid_payload", "expected a push object or a non-empty array")
    readings: list[Reading] = []
    ids = ctx.derived_ids(payload)
    for item in items:
        if not isinstance(item, dict) or "sensordatavalues" not in item:
            raise DecodeError("invalid_payload", "expected an object with 'sensordatavalues'")
        readings += _measurement(item, ctx, ids, len(readings))
        if len(readings) > MAX_READINGS:
            raise DecodeError("too_many_readings", f"more than {MAX_READINGS} readings")
    return readings


def _measurement(
    item: dict[str, Any], ctx: DecodeContext, ids: DerivedIds, first_index: int
) -> list[Reading]:
    values = item["sensordatavalues"]
    if not isinstance(values, list):
        raise DecodeError("invalid_payload", "'sensordatavalues' must be an array")
    observed_at = _timestamp(item.get("timestamp")) or ctx.received_at
    location = _location(item.get("location"))
    readings: list[Reading] = []
    for entry in values:
        if not isinstance(entry, dict):
            raise DecodeError("invalid_payload", "each sensordatavalue must be an object")
        value_type, raw = entry.get("value_type"), entry.get("value")
        if not isinstance(value_type, str) or not value_type:
            raise DecodeError("invalid_payload", "a sensordatavalue has no 'value_type'")
        value = number(raw, strings=True)
        if value is None or isinstance(raw, bool):
            continue
        resolved = ctx.quantities.resolve(value_type, value, _unit(value_type))
        if resolved is None:
            continue
        readings.append(
            make_reading(
                ctx,
                resolved,
                sensor_id=ctx.sensor_id,
                observed_at=observed_at,
                location=location,
                source_format=FORMAT,
                message_id=ids(first_index + len(readings)),
            )
        )
    return readings


def _unit(value_type: str) -> str | None:
    folded = value_type.lower()
    for suffix, unit in _UNIT_BY_SUFFIX:
        if folded.endswith(suffix):
            return unit
    return None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)  # the read API serves UTC without a designator
        return moment.astimezone(UTC)
    return parse_time(value)


def _location(value: Any) -> Location | None:
    if not isinstance(value, dict):
        return None
    return location_of(value.get("latitude"), value.get("longitude"), value.get("altitude"))
