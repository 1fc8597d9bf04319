"""SenML JSON, RFC 8428, on ``urbanpulse/{tenant}/{sensor}/senml``.

Specification: https://www.rfc-editor.org/rfc/rfc8428 (Sensor Measurement Lists).

A pack is a JSON array of records. Base fields (``bn``, ``bt``, ``bu``, ``bv``, ``bs``,
``bver``) apply to the records that follow until changed (RFC 8428 section 4.5). Each record's
name is ``bn + n``, its time ``bt + t``, its value ``bv + v`` and its sum ``bs + s``; a time
below 2**28 is relative to now (the time of receipt), otherwise epoch seconds.

Mapping decisions (also in docs/payloads.md):

* Sensor: the topic's sensor id. If the names of one pack carry more than one device prefix
  (RFC 5.1.6, "collection of resources"), each prefix becomes ``{sensor}:{prefix}``.
* Quantity: the last segment of the name (after ``:`` or ``/``) through the alias table;
  if that is no known quantity, the unit decides (``Cel`` → temperature, ``%RH`` →
  relative_humidity, ``lat``/``lon`` → latitude/longitude, ``%EL`` → battery_level, …);
  otherwise the name's last segment, flagged ``unknown_quantity``.
* ``v`` → value; ``vb`` → 1.0 / 0.0; ``s`` → an extra reading ``{quantity}_sum``.
  ``vs`` (string) and ``vd`` (data) cannot be numeric readings and are ignored; a pack with
  nothing else becomes a dead letter (``empty``).
* ``lat``/``lon`` records at one time also give the location of that time's readings.
* ``ut`` (update time) and unknown fields are ignored; an unknown field ending in ``_``
  ("must understand", RFC 8428 section 4.4) rejects the pack, as the RFC requires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.aliases import Resolved
from ingest.decoders import DecodeContext, DecodeError
from ingest.decoders._common import (
    MAX_READINGS,
    location_of,
    make_reading,
    number,
    parse_json,
)
from urbanpulse import mqtt_topics
from urbanpulse.model import Location, Reading

FORMAT = mqtt_topics.SENML
SUPPORTED_VERSION = 10
RELATIVE_LIMIT = 2**28  # RFC 8428 section 4.5.3: smaller times are relative to now

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-:./_]*$")
_KNOWN = frozenset(
    {"bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"}
)
_STRINGS = ("bn", "bu", "n", "u", "vs", "vd")
_NUMBERS = ("bt", "bv", "bs", "v", "s", "t", "ut")


@dataclass(frozen=True)
class _Record:
    """One resolved SenML record with a numeric value."""

    name: str
    unit: str | None
    value: float
    time: float
    has_n: bool
    is_sum: bool = False


def decode(payload: bytes, ctx: DecodeContext) -> list[Reading]:
    """Decode a SenML JSON pack into canonical readings (one per numeric record)."""
    document = parse_json(payload)
    if not isinstance(document, list) or not document:
        raise DecodeError("invalid_payload", "a SenML pack is a non-empty JSON array")
    if len(document) > MAX_READINGS:
        raise DecodeError("too_many_readings", f"a pack holds at most {MAX_READINGS} records")
    records = _resolve(document)
    return _readings(records, payload, ctx)


def _resolve(document: list[Any]) -> list[_Record]:
    base_name, base_unit = "", None
    base_time = base_value = base_sum = 0.0
    out: list[_Record] = []
    for index, raw in enumerate(document):
        record = _check(raw, index)
        if "bver" in record:
            version = record["bver"]
            if isinstance(version, bool) or not isinstance(version, int):
                raise DecodeError("invalid_payload", f"record {index}: bver must be an integer")
            if version > SUPPORTED_VERSION:
                raise DecodeError("unsupported_version", f"SenML version {version} > 10")
        base_name = record.get("bn", base_name)
        base_unit = record.get("bu", base_unit)
        base_time = _num(record, "bt", base_time)
        base_value = _num(record, "bv", base_value)
        base_sum = _num(record, "bs", base_sum)
        name = base_name + record.get("n", "")
        if not name or not _NAME.fullmatch(name):
            raise DecodeError("invalid_payload", f"record {index}: invalid name {name!r}")
        unit = record.get("u", base_unit) or None
        time = base_time + _num(record, "t", 0.0)
        has_n = "n" in record
        if "v" in record:
            out.append(_Record(name, unit, base_value + _num(record, "v", 0.0), time, has_n))
        elif "vb" in record:
            out.append(_Record(name, unit, 1.0 if record["vb"] else 0.0, time, has_n))
        if "s" in record:
            total = base_sum + _num(record, "s", 0.0)
            out.append(_Record(name, unit, total, time, has_n, is_sum=True))
    return out


def _check(raw: Any, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DecodeError("invalid_payload", f"record {index} is not a JSON object")
    for key in raw:
        if key not in _KNOWN and key.endswith("_"):
            raise DecodeError("unsupported_senml_field", f"record {index}: must-understand {key}")
    for key in _STRINGS:
        if key in raw and not isinstance(raw[key], str):
            raise DecodeError("invalid_payload", f"record {index}: {key} must be a string")
    for key in _NUMBERS:
        if key in raw and (isinstance(raw[key], bool) or number(raw[key]) is None):
            raise DecodeError("invalid_payload", f"record {index}: {key} must be a number")
    if "vb" in raw and not isinstance(raw["vb"], bool):
        raise DecodeError("invalid_payload", f"record {index}: vb must be true or false")
    if sum(key in raw for key in ("v", "vs", "vb", "vd")) > 1:
        raise DecodeError("invalid_payload", f"record {index}: more than one value field")
    return raw


def _num(record: dict[str, Any], key: str, default: float) -> float:
    if key not in record:
        return default
    value = number(record[key])
    return default if value is None else value


def _split(name: str) -> tuple[str, str]:
    """Device prefix and last segment of a SenML name."""
    cut = max(name.rfind(":"), name.rfind("/"))
    if cut < 0:
        return "", name
    return name[:cut].rstrip(":/"), name[cut + 1 :]


def _observed_at(time: float, received_at: datetime) -> datetime:
    try:
        if time < RELATIVE_LIMIT:
            return received_at + timedelta(seconds=time)
        return datetime.fromtimestamp(time, UTC)  # positional: half the time of tz=UTC
    except (OverflowError, ValueError, OSError):
        raise DecodeError("invalid_payload", f"time {time} is out of range") from None


def _quantity(record: _Record, ctx: DecodeContext) -> Resolved | None:
    table = ctx.quantities
    prefix, last = _split(record.name)
    if record.has_n or not prefix:
        known = table.canonical(last) if last else None
        if known is not None:
            return table.resolve(last, record.value, record.unit)
    by_unit = table.quantity_for_unit(record.unit) if record.unit else None
    if by_unit is not None:
        return table.resolve(last, record.value, record.unit, quantity=by_unit)
    if record.has_n and last:
        return table.resolve(last, record.value, record.unit)
    raise DecodeError(
        "unknown_quantity", f"{record.name!r}: neither its name nor its unit names a quantity"
    )


def _readings(records: list[_Record], payload: bytes, ctx: DecodeContext) -> list[Reading]:
    prefixes = {_split(r.name)[0] for r in records}
    several = len(prefixes) > 1
    resolved: list[tuple[_Record, Resolved, datetime]] = []
    positions: dict[tuple[str, datetime], dict[str, float]] = {}
    for record in records:
        quantity = _quantity(record, ctx)
        if quantity is None:
            continue
        if record.is_sum:
            quantity = Resolved(
                f"{quantity.quantity[:59]}_sum", quantity.value, quantity.unit, quantity.flags
            )
        when = _observed_at(record.time, ctx.received_at)
        resolved.append((record, quantity, when))
        if quantity.quantity in ("latitude", "longitude", "altitude") and not record.is_sum:
            prefix = _split(record.name)[0]
            positions.setdefault((prefix, when), {})[quantity.quantity] = quantity.value
    readings = []
    ids = ctx.derived_ids(payload)
    for index, (record, quantity, when) in enumerate(resolved):
        prefix = _split(record.name)[0]
        sensor = f"{ctx.sensor_id}:{prefix.replace('/', '_')}" if several and prefix else None
        readings.append(
            make_reading(
                ctx,
                quantity,
                sensor_id=sensor or ctx.sensor_id,
                observed_at=when,
                location=_location(positions.get((prefix, when))),
                source_format=FORMAT,
                message_id=ids(index),
            )
        )
    return readings


def _location(position: dict[str, float] | None) -> Location | None:
    if not position:
        return None
    return location_of(
        position.get("latitude"), position.get("longitude"), position.get("altitude")
    )
