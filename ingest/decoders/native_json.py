"""UrbanPulse native JSON: the public, documented message of ``urbanpulse/{tenant}/{sensor}/json``.

One reading::

    {"time": "2026-11-27T10:00:00Z", "quantity": "temperature", "value": 21.5,
     "unit": "Cel", "id": "optional message id"}

or a batch ``{"readings": [ ... ]}``. ``time`` is RFC 3339 with a UTC offset, or epoch
seconds; absent, it is the time of receipt. Optional ``lat``/``lon`` (and ``alt``) give the
sensor's position. See docs/payloads.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from ingest.decoders import DecodeContext, DecodeError
from urbanpulse import mqtt_topics
from urbanpulse.model import QUANTITY_PATTERN, UNIT_PATTERN, Location, Reading

FORMAT = mqtt_topics.NATIVE_JSON
MAX_BATCH = 10_000

# Epoch seconds from 1970 to 9999: a number outside is a mistake, not a time.
EPOCH_MAX = 253402300800
_RFC3339 = TypeAdapter(AwareDatetime)


class NativeReading(BaseModel):
    """One reading as a device sends it in the native JSON format."""

    model_config = ConfigDict(extra="forbid", strict=False)

    time: datetime | None = None
    quantity: str = Field(pattern=QUANTITY_PATTERN)
    value: float = Field(strict=True)  # strict: true/false are not numbers
    unit: str = Field(pattern=UNIT_PATTERN)
    id: str | None = Field(None, min_length=1, max_length=200)
    lat: float | None = None
    lon: float | None = None
    alt: float | None = None

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: object) -> datetime | None:
        """RFC 3339 with an offset, or epoch seconds (1970 to 9999)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("time must be an RFC 3339 string or epoch seconds")
        if isinstance(value, str):
            return _RFC3339.validate_python(value)
        if not 0 <= value < EPOCH_MAX:
            raise ValueError("epoch seconds must be between 0 (1970) and 9999")
        return datetime.fromtimestamp(value, tz=UTC)


def decode(payload: bytes, ctx: DecodeContext) -> list[Reading]:
    """Decode one native JSON message (single reading or batch) into canonical readings."""
    document = _parse_json(payload)
    items = _items(document)
    readings = []
    for index, item in enumerate(items):
        try:
            native = NativeReading.model_validate(item)
            readings.append(_to_reading(native, ctx, ctx.message_id(payload, index)))
        except ValidationError as err:
            where = f"readings[{index}]" if len(items) > 1 or "readings" in document else "reading"
            raise DecodeError("invalid_reading", f"{where}: {_first_error(err)}") from None
    return readings


def _parse_json(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as err:
        raise DecodeError("invalid_json", f"not valid UTF-8 JSON: {err}") from None
    if not isinstance(document, dict):
        raise DecodeError("invalid_reading", "expected a JSON object (a reading or a batch)")
    return document


def _items(document: dict[str, Any]) -> list[Any]:
    if "readings" not in document:
        return [document]
    items = document["readings"]
    if not isinstance(items, list) or not items:
        raise DecodeError("invalid_reading", "'readings' must be a non-empty list")
    if len(items) > MAX_BATCH:
        raise DecodeError("invalid_reading", f"a batch holds at most {MAX_BATCH} readings")
    return items


def _to_reading(native: NativeReading, ctx: DecodeContext, derived_id: str) -> Reading:
    return Reading(
        tenant=ctx.tenant,
        sensor_id=ctx.sensor_id,
        quantity=native.quantity,
        value=native.value,
        unit=native.unit,
        observed_at=_observed_at(native.time, ctx.received_at),
        received_at=ctx.received_at,
        location=_location(native),
        source_format=FORMAT,
        message_id=native.id or derived_id,
    )


def _observed_at(time: datetime | None, received_at: datetime) -> datetime:
    return received_at if time is None else time


def _location(native: NativeReading) -> Location | None:
    if native.lat is None and native.lon is None:
        return None
    if native.lat is None or native.lon is None:
        raise DecodeError("invalid_reading", "lat and lon must be given together")
    try:
        return Location(lat=native.lat, lon=native.lon, alt=native.alt)
    except ValidationError as err:
        raise DecodeError("invalid_reading", f"location: {_first_error(err)}") from None


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "value"
    return f"{field}: {first['msg']}"
