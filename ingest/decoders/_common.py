"""Helpers the vendor decoders share: JSON parsing, times, numbers, flattening, readings."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from ingest.aliases import QuantityTable, Resolved
from ingest.decoders import DecodeContext, DecodeError
from urbanpulse.model import ID_PATTERN, InvalidReading, Location, Reading, validated

MAX_READINGS = 10_000
MAX_DEPTH = 8
EPOCH_MAX = 253402300800.0  # 10000-01-01: a larger number is a mistake, not a time

_ID = re.compile(ID_PATTERN)
_NUMBER = re.compile(r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$")
_CHANNEL_SUFFIX = re.compile(r"^(.+?)_([0-9]{1,3})$")


def parse_json(payload: bytes) -> Any:
    """Parse UTF-8 JSON or raise DecodeError(invalid_json)."""
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DecodeError("invalid_json", f"not valid UTF-8 JSON: {err}") from None


def require_object(document: Any, what: str) -> dict[str, Any]:
    """The document as a JSON object, or DecodeError(invalid_payload)."""
    if not isinstance(document, dict):
        raise DecodeError("invalid_payload", f"expected a JSON object ({what})")
    return document


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time with a zone, or epoch seconds, as UTC; None when absent or unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not 0 <= value < EPOCH_MAX:
            return None
        return datetime.fromtimestamp(float(value), UTC)  # positional: faster than tz=UTC
    if isinstance(value, str) and 0 < len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if moment.tzinfo is None or moment.utcoffset() is None:
            return None
        return moment.astimezone(UTC)
    return None


def number(value: Any, *, strings: bool = False) -> float | None:
    """A finite float from a JSON number (booleans count as 1/0), or from a numeric string."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:
            return None
        return result if math.isfinite(result) else None
    if strings and isinstance(value, str) and len(value) <= 64 and _NUMBER.match(value):
        result = float(value)
        return result if math.isfinite(result) else None
    return None


@dataclass(frozen=True)
class Field:
    """One numeric leaf of a vendor JSON object: dotted name, LPP-style channel, value."""

    name: str
    channel: int | None
    value: float


def flatten(obj: Any, *, strings: bool = False) -> Iterator[Field]:
    """Walk a decoded-payload object; yield its numeric leaves with dotted names.

    A purely numeric key is a channel (ChirpStack's Cayenne LPP shape
    ``{"temperatureSensor": {"3": 27.2}}``). Arrays, strings (unless ``strings``), nulls and
    anything deeper than MAX_DEPTH are skipped.
    """
    yield from _walk(obj, (), None, 0, strings)


def _walk(
    obj: Any, path: tuple[str, ...], channel: int | None, depth: int, strings: bool
) -> Iterator[Field]:
    if depth > MAX_DEPTH:
        return
    if isinstance(obj, dict):
        for key, inner in obj.items():
            key = str(key)
            if key.isascii() and key.isdigit() and len(key) <= 3:
                yield from _walk(inner, path, int(key), depth + 1, strings)
            elif key:
                yield from _walk(inner, (*path, key), channel, depth + 1, strings)
        return
    if isinstance(obj, list):
        return  # arrays (raw bytes, histories) have no agreed meaning: ignored
    value = number(obj, strings=strings)
    if value is not None and path:
        yield Field(".".join(path), channel, value)


def resolve_field(
    ctx: DecodeContext, item: Field, unit: str | None = None
) -> tuple[Resolved | None, int | None]:
    """Resolve a flattened field, peeling a ``_N`` channel suffix (``temperature_3``) if needed.

    The suffix is only read as a channel when the full name is unknown and the name without
    it is known, so ``pm2_5`` stays PM2.5.
    """
    table = ctx.quantities
    if table.canonical(item.name) is None:
        parts = item.name.split(".")
        peeled = [_CHANNEL_SUFFIX.match(part) for part in parts]
        channels = [int(m.group(2)) for m in peeled if m]
        if len(channels) == 1:
            name = ".".join(
                m.group(1) if m else part for m, part in zip(peeled, parts, strict=True)
            )
            if table.canonical(name) is not None:
                return table.resolve(name, item.value, unit), channels[0]
    return table.resolve(item.name, item.value, unit), item.channel


def probe_of(channel: int | None) -> str | None:
    """The probe a Cayenne LPP channel names: one of several probes of the device (or None).

    The device is the sensor whichever decoder read it (our LPP decoder, TTS's
    ``temperature_3``, ChirpStack's ``{"temperatureSensor": {"3": ..}}``); the channel tells
    its probes apart, so two temperature probes stay two series of one sensor.
    """
    return None if channel is None else str(channel)


def valid_id(value: Any) -> str | None:
    """The value as an UrbanPulse id (sensor or tenant) if it is one, else None."""
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    return None


def make_reading(
    ctx: DecodeContext,
    resolved: Resolved,
    *,
    sensor_id: str,
    observed_at: datetime,
    location: Location | None,
    source_format: str,
    message_id: str,
    probe: str | None = None,
) -> Reading:
    """Build one canonical reading (its id derived), turning a validation failure into DecodeError.

    Vendor decoders carry no message id of the device: ``message_id`` comes from
    :meth:`DecodeContext.derived_ids`.
    """
    try:
        return validated(
            tenant=ctx.tenant,
            sensor_id=sensor_id,
            quantity=resolved.quantity,
            value=resolved.value,
            unit=resolved.unit,
            observed_at=observed_at,
            received_at=ctx.received_at,
            location=location,
            source_format=source_format,
            message_id=message_id,
            quality_flags=resolved.flags,
            probe=probe,
            derived_id=True,
            redelivered=ctx.redelivered,
        )
    except InvalidReading as err:
        raise DecodeError("invalid_reading", f"{resolved.quantity}: {err}") from None


def location_of(lat: Any, lon: Any, alt: Any = None) -> Location | None:
    """A Location from loose numbers, or None when they are missing or out of range."""
    la, lo = number(lat, strings=True), number(lon, strings=True)
    if la is None or lo is None or isinstance(lat, bool) or isinstance(lon, bool):
        return None
    al = None if isinstance(alt, bool) else number(alt, strings=True)
    try:
        return msgspec.convert({"lat": la, "lon": lo, "alt": al}, Location)
    except msgspec.ValidationError:
        return None


def check_count(readings: list[Reading]) -> None:
    """Refuse messages that would explode into too many readings."""
    if len(readings) > MAX_READINGS:
        raise DecodeError("too_many_readings", f"more than {MAX_READINGS} readings")


@dataclass(frozen=True)
class Pending:
    """A resolved value waiting to become a reading: its channel and observation time."""

    resolved: Resolved
    channel: int | None
    observed_at: datetime


def position(pending: list[Pending]) -> Location | None:
    """The position a message reports about its device (latitude/longitude values), if any."""
    found: dict[str, float] = {}
    for item in pending:
        name = item.resolved.quantity
        if name in ("latitude", "longitude", "altitude") and name not in found:
            found[name] = item.resolved.value
    return location_of(found.get("latitude"), found.get("longitude"), found.get("altitude"))


def build_readings(
    ctx: DecodeContext,
    pending: list[Pending],
    *,
    sensor_id: str,
    location: Location | None,
    source_format: str,
    payload: bytes,
) -> list[Reading]:
    """Turn resolved values into readings of ``sensor_id`` (a channel is a probe of it)."""
    if len(pending) > MAX_READINGS:
        raise DecodeError("too_many_readings", f"more than {MAX_READINGS} readings")
    ids = ctx.derived_ids(payload)
    return [
        make_reading(
            ctx,
            item.resolved,
            sensor_id=sensor_id,
            observed_at=item.observed_at,
            location=location,
            source_format=source_format,
            message_id=ids(index),
            probe=probe_of(item.channel),
        )
        for index, item in enumerate(pending)
    ]


def radio(
    gateways: list[Any],
    rssi_key: str,
    snr_key: str,
    observed_at: datetime,
    table: QuantityTable,
) -> list[Pending]:
    """Radio metadata of an uplink as device quantities: best RSSI, best SNR, gateway count."""
    rssis = [
        v
        for g in gateways
        if isinstance(g, dict)
        and (v := number(g.get(rssi_key))) is not None
        and not isinstance(g.get(rssi_key), bool)
    ]
    snrs = [
        v
        for g in gateways
        if isinstance(g, dict)
        and (v := number(g.get(snr_key))) is not None
        and not isinstance(g.get(snr_key), bool)
    ]
    values: list[tuple[str, float]] = []
    if rssis:
        values.append(("rssi", max(rssis)))
    if snrs:
        values.append(("snr", max(snrs)))
    if gateways:
        values.append(("gateway_count", float(len(gateways))))
    out = []
    for name, value in values:
        resolved = table.resolve(name, value, quantity=name)
        if resolved is not None:
            out.append(Pending(resolved, None, observed_at))
    return out
