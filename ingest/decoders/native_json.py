"""UrbanPulse native JSON: the public, documented message of ``urbanpulse/{tenant}/{sensor}/json``.

One reading::

    {"time": "2026-11-27T10:00:00Z", "quantity": "temperature", "value": 21.5,
     "unit": "Cel", "id": "optional message id"}

or a batch ``{"readings": [ ... ]}``. ``time`` is RFC 3339 with a UTC offset, or epoch
seconds; absent, it is the time of receipt. Optional ``lat``/``lon`` (and ``alt``) give the
sensor's position. See docs/payloads.md.

This is the hot path of ingest (issue 14), so a message is parsed and checked in one pass by
msgspec, in C, into :class:`NativeReading` structs (types, ranges, lengths); what msgspec
does not check (finite value, the epoch range, lat with lon) is checked per reading in plain
Python, the names' patterns once per run of equal names (``check_names``), and the id of a
message without ids is hashed once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from ingest.decoders import DecodeContext, DecodeError
from urbanpulse import mqtt_topics
from urbanpulse.model import (
    AwareTime,
    InvalidReading,
    Location,
    Reading,
    check,
    check_names,
)

FORMAT = mqtt_topics.NATIVE_JSON
MAX_BATCH = 10_000

# Epoch seconds from 1970 to 9999: a number outside is a mistake, not a time.
EPOCH_MAX = 253402300800


class NativeReading(msgspec.Struct, forbid_unknown_fields=True):
    """One reading as a device sends it in the native JSON format.

    ``value`` is a JSON number (``true``/``false`` are not); ``time`` an RFC 3339 string with
    an offset, or epoch seconds.
    """

    quantity: str  # matched against the model's patterns by check_names (decode)
    value: float
    unit: str
    time: AwareTime | float | None = None
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    lat: float | None = None
    lon: float | None = None
    alt: float | None = None


class _Envelope(msgspec.Struct):
    """What tells a batch from a single reading: its ``readings`` member (other keys ignored)."""

    readings: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class _Batch(msgspec.Struct):
    readings: Annotated[list[NativeReading], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_ONE = msgspec.json.Decoder(NativeReading)
_BATCH = msgspec.json.Decoder(_Batch)


def decode(payload: bytes, ctx: DecodeContext) -> list[Reading]:
    """Decode one native JSON message (single reading or batch) into canonical readings."""
    items, batch = _parse(payload)
    ids = ctx.derived_ids(payload)  # hashed once, if a reading has no id of its own
    readings: list[Reading] = []
    for index, item in enumerate(items):
        try:
            # The names as check_names matches them in the worker: once per run of equal
            # names (as msgspec patterns they were 0.57 of 2 µs per reading at 50 a message).
            reading = _to_reading(item, ctx, item.id or ids(index))
            readings.append(check_names(reading, readings[-1] if readings else None))
        except InvalidReading as err:
            where = f"readings[{index}]" if batch else "reading"
            raise DecodeError("invalid_reading", f"{where}: {err}") from None
    return readings


def _parse(payload: bytes) -> tuple[list[NativeReading], bool]:
    """The message's readings, and whether it was a batch, or DecodeError."""
    try:
        if _ENVELOPE.decode(payload).readings is msgspec.UNSET:
            return [_ONE.decode(payload)], False
        return _BATCH.decode(payload).readings, True
    except msgspec.ValidationError as err:
        raise DecodeError("invalid_reading", _explain(str(err))) from None
    except msgspec.DecodeError:
        return _parse_lenient(payload)


def _parse_lenient(payload: bytes) -> tuple[list[NativeReading], bool]:
    """What msgspec cannot parse, through the standard library, to say exactly why.

    Python's json also reads NaN and Infinity (then refused as not finite, as before msgspec)
    and names the position of a syntax error; what it cannot read is ``invalid_json``.
    """
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DecodeError("invalid_json", f"not valid UTF-8 JSON: {err}") from None
    try:
        if isinstance(document, dict) and "readings" in document:
            return msgspec.convert(document, _Batch).readings, True
        return [msgspec.convert(document, NativeReading)], False
    except msgspec.ValidationError as err:
        raise DecodeError("invalid_reading", _explain(str(err))) from None


def _explain(message: str) -> str:
    """msgspec's ``what - at `$.readings[1].value``` as ``readings[1]: value: what``."""
    what, _, path = message.partition(" - at `")
    path = path.rstrip("`").removeprefix("$")
    if not path and what.startswith("Expected `object`"):
        return "expected a JSON object (a reading or a batch)"
    if path == ".readings":
        if "length <=" in what:
            return f"a batch holds at most {MAX_BATCH} readings"
        return "'readings' must be a non-empty list"
    where = "reading"
    if path.startswith(".readings["):
        index, _, path = path.removeprefix(".readings").partition("]")
        where = f"readings{index}]"
    field = path.removeprefix(".")
    return f"{where}: {field}: {what}" if field else f"{where}: {what}"


def _to_reading(native: NativeReading, ctx: DecodeContext, message_id: str) -> Reading:
    # Built directly, not through validated() (5 µs a reading): every field was checked by
    # NativeReading's constraints, by route() (tenant, sensor) or is ours; check() does the
    # rest (finite value, storable times, UTC) and decode() the names' patterns. A unit test
    # holds every reading this decoder makes to validated()'s rules.
    received = ctx.received_at
    return check(
        Reading(
            tenant=ctx.tenant,
            sensor_id=ctx.sensor_id,
            quantity=native.quantity,
            value=native.value,
            unit=native.unit,
            observed_at=_observed_at(native.time, received),
            received_at=received,
            location=_location(native),
            source_format=FORMAT,
            message_id=message_id,
            derived_id=native.id is None,
            redelivered=ctx.redelivered,
        )
    )


def _observed_at(time: datetime | float | None, received_at: datetime) -> datetime:
    if time is None:
        return received_at
    if isinstance(time, datetime):
        return time
    if not 0 <= time < EPOCH_MAX:
        raise InvalidReading("time: epoch seconds must be between 0 (1970) and 9999")
    return datetime.fromtimestamp(time, UTC)  # positional: half the time of tz=UTC (timeit)


def _location(native: NativeReading) -> Location | None:
    if native.lat is None and native.lon is None:
        return None
    if native.lat is None or native.lon is None:
        raise InvalidReading("lat and lon must be given together")
    try:
        return msgspec.convert({"lat": native.lat, "lon": native.lon, "alt": native.alt}, Location)
    except msgspec.ValidationError as err:
        raise InvalidReading(f"location: {err}") from None
