"""From an MQTT message to readings or a dead letter: topic routing and safe decoding (pure)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime

from ingest.decoders import DecodeContext, DecodeError, Decoder, native_json
from urbanpulse.model import ID_PATTERN, DeadLetter, Reading

# Decoders by the last level of ``urbanpulse/{tenant}/{sensor_id}/{format}``.
DECODERS: dict[str, Decoder] = {
    native_json.FORMAT: native_json.decode,
}

_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True)
class Route:
    """Where a message comes from, read off its topic."""

    tenant: str
    sensor_id: str
    format: str


@dataclass(frozen=True)
class Decoded:
    """The outcome of one message: readings, or one dead letter; never both, never neither."""

    readings: tuple[Reading, ...] = ()
    dead_letter: DeadLetter | None = None


def route(topic: str) -> Route:
    """Read tenant, sensor and format from an UrbanPulse topic, or raise DecodeError."""
    levels = topic.split("/")
    if len(levels) != 4 or levels[0] != "urbanpulse":
        raise DecodeError("unknown_topic", "not an urbanpulse/<tenant>/<sensor>/<format> topic")
    _, tenant, sensor_id, fmt = levels
    for name, value in (("tenant", tenant), ("sensor id", sensor_id)):
        if not _ID.match(value):
            raise DecodeError("invalid_topic", f"{name} {value!r} is empty, too long or has spaces")
    if fmt not in DECODERS:
        raise DecodeError("unknown_format", f"no decoder for format {fmt!r}")
    return Route(tenant, sensor_id, fmt)


def decode_message(
    topic: str, payload: bytes, received_at: datetime, max_payload_bytes: int
) -> Decoded:
    """Turn one MQTT message into readings or a dead letter with the reason. Never raises."""
    try:
        if len(payload) > max_payload_bytes:
            raise DecodeError("oversized", f"{len(payload)} bytes > limit {max_payload_bytes}")
        where = route(topic)
        ctx = DecodeContext(where.tenant, where.sensor_id, topic, received_at)
        readings = DECODERS[where.format](payload, ctx)
        if not readings:
            raise DecodeError("empty", "the message holds no readings")
        return Decoded(readings=tuple(readings))
    except DecodeError as err:
        return Decoded(dead_letter=dead_letter(topic, payload, received_at, err.reason, err.detail))
    except Exception as err:  # a decoder bug must cost one message, not the ingestor
        detail = f"decoder failed: {type(err).__name__}: {err}"
        return Decoded(
            dead_letter=dead_letter(topic, payload, received_at, "decoder_error", detail)
        )


def dead_letter(
    topic: str, payload: bytes, received_at: datetime, reason: str, detail: str
) -> DeadLetter:
    """Build the dead letter of a refused message, keeping its original bytes."""
    return DeadLetter(
        reason=reason,
        detail=detail[:1000],
        stage="ingest",
        topic=topic,
        payload_b64=base64.b64encode(payload).decode(),
        received_at=received_at,
    )
