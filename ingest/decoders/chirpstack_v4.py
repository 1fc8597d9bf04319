"""ChirpStack v4 uplink event on ``application/{application_id}/device/{dev_eui}/event/up``.

Specification: https://www.chirpstack.io/docs/chirpstack/integrations/events.html (``up``
event, JSON encoding) and https://www.chirpstack.io/docs/chirpstack/integrations/mqtt.html
(topics).

Mapping decisions (also in docs/payloads.md):

* Sensor: ``deviceInfo.devEui`` in lower case (the topic's dev_eui when the event lacks it).
  Tenant: from the configured application → tenant map (see ingest/routing.py).
* ``object`` (what the device profile's codec decoded): every numeric leaf (booleans as 1/0)
  through the alias table; nested objects give dotted names; a numeric key is an LPP channel
  (ChirpStack's Cayenne LPP codec gives ``{"temperatureSensor": {"3": 27.2}}`` → temperature
  of sensor ``{devEui}``, probe ``3``). Strings and arrays are ignored.
* An event with application data (``data``) but no ``object`` is a dead letter
  (``no_decoded_payload``): ChirpStack had no codec for it, and the original bytes are kept to
  be replayed once one is configured. An event with no data gives its radio metadata only.
* Radio metadata as quantities of the device: best ``rssi`` and ``snr`` over ``rxInfo``,
  ``gateway_count``, ``fCnt`` → frame_counter.
* Time: ``time``, else the earliest gateway ``gwTime``/``nsTime``, else the time of receipt.
* Position: latitude/longitude fields of ``object`` (``rxInfo[].location`` is the gateway's
  position, not the device's, and is ignored).
* Ignored: ``deduplicationId``, ``devAddr``, ``dr``, ``adr``, ``confirmed``, ``fPort``,
  ``txInfo``, gateway ids and contexts, ``deviceInfo`` names, profile and ``tags``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingest.decoders import DecodeContext, DecodeError
from ingest.decoders._common import (
    Pending,
    build_readings,
    flatten,
    number,
    parse_json,
    parse_time,
    position,
    radio,
    require_object,
    resolve_field,
    valid_id,
)
from urbanpulse.model import Reading

FORMAT = "chirpstack_v4"


def decode(payload: bytes, ctx: DecodeContext) -> list[Reading]:
    """Decode a ChirpStack v4 uplink event into readings of the device (channels as probes)."""
    event = require_object(parse_json(payload), "a ChirpStack uplink event")
    info = event.get("deviceInfo")
    dev_eui = valid_id(info.get("devEui")) if isinstance(info, dict) else None
    sensor_id = (dev_eui or ctx.sensor_id).lower()
    rx_info = event.get("rxInfo")
    gateways: list[Any] = rx_info if isinstance(rx_info, list) else []
    observed_at = _time(event, gateways) or ctx.received_at

    decoded = event.get("object")
    if decoded is None and event.get("data"):
        raise DecodeError(
            "no_decoded_payload",
            "the event carries data but no 'object': configure a codec in ChirpStack",
        )
    pending: list[Pending] = []
    if decoded is not None:
        if not isinstance(decoded, dict):
            raise DecodeError("invalid_payload", "'object' must be a JSON object")
        for item in flatten(decoded):
            resolved, channel = resolve_field(ctx, item)
            if resolved is not None:
                pending.append(Pending(resolved, channel, observed_at))
    pending += radio(gateways, "rssi", "snr", observed_at, ctx.quantities)
    raw = event.get("fCnt")
    counter = None if isinstance(raw, bool) else number(raw)
    if counter is not None:
        resolved = ctx.quantities.resolve("frame_counter", counter, quantity="frame_counter")
        if resolved is not None:
            pending.append(Pending(resolved, None, observed_at))
    return build_readings(
        ctx,
        pending,
        sensor_id=sensor_id,
        location=position(pending),
        source_format=FORMAT,
        payload=payload,
    )


def _time(event: dict[str, Any], gateways: list[Any]) -> datetime | None:
    moment = parse_time(event.get("time"))
    if moment is not None:
        return moment
    times = [
        parse_time(g.get(key))
        for g in gateways
        if isinstance(g, dict)
        for key in ("gwTime", "nsTime")
    ]
    known = [t for t in times if t is not None]
    return min(known) if known else None
