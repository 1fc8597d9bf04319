"""The Things Stack v3 uplink (``ApplicationUp``) on ``v3/{app}[@{tenant}]/devices/{device}/up``.

Specification: https://www.thethingsindustries.com/docs/integrations/data-formats/ (uplink
message), https://www.thethingsindustries.com/docs/integrations/other-integrations/mqtt/
(topics) and https://www.thethingsindustries.com/docs/integrations/payload-formatters/
(``decoded_payload``, ``normalized_payload``, Cayenne LPP).

Mapping decisions (also in docs/payloads.md):

* Sensor: ``end_device_ids.device_id`` (the topic's device id when the message lacks it).
  Tenant: from the configured application → tenant map (see ingest/routing.py).
* ``uplink_message.normalized_payload``: each measurement's fields (``air.temperature``, …)
  through the alias table, at the measurement's ``time`` if it has one.
* ``uplink_message.decoded_payload``: every numeric leaf (booleans as 1/0) through the alias
  table; nested objects give dotted names (``air.temperature``); a ``_N`` suffix or a numeric key
  is an LPP channel, the reading's probe (``temperature_3`` → temperature of the device, probe
  ``3``: the same sensor and probe as our own LPP decoder gives for the same bytes). Fields
  already given by the normalized payload are not repeated. Strings and arrays are ignored.
* A ``normalized_payload`` list of several measurements without a time: measurement ``i`` is
  probe ``i`` of the device.
* ``uplink_message.frm_payload`` is decoded as Cayenne LPP only when there is neither a decoded
  nor a normalized payload; if it is not LPP either, the message is a dead letter
  (``undecodable_payload``) so it can be replayed once a payload formatter is set up.
* Radio metadata as quantities of the device: best ``rssi`` and ``snr`` over
  ``rx_metadata``, ``gateway_count``, ``f_cnt`` → frame_counter,
  ``last_battery_percentage.value`` → battery_level.
* Position: ``uplink_message.locations`` (``user``, else any other source), else latitude /
  longitude fields of the payload.
* Time: ``uplink_message.received_at`` (network server), else ``received_at``, else the
  earliest gateway ``time`` in ``rx_metadata``, else the time of receipt.
* Ignored: correlation ids, session keys, ``settings`` (data rate, frequency), gateway ids,
  ``consumed_airtime``, ``version_ids``, ``network_ids``, ``attributes``, warnings.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from ingest.decoders import DecodeContext, DecodeError, cayenne_lpp
from ingest.decoders._common import (
    Pending,
    build_readings,
    flatten,
    location_of,
    number,
    parse_json,
    parse_time,
    position,
    radio,
    require_object,
    resolve_field,
    valid_id,
)
from urbanpulse.model import Location, Reading

FORMAT = "tts_v3"


def decode(payload: bytes, ctx: DecodeContext) -> list[Reading]:
    """Decode a The Things Stack v3 uplink into readings of the device (channels as probes)."""
    document = require_object(parse_json(payload), "a The Things Stack uplink")
    uplink = document.get("uplink_message")
    if not isinstance(uplink, dict):
        raise DecodeError("invalid_payload", "no 'uplink_message': not an uplink")
    ids = document.get("end_device_ids")
    device = valid_id(ids.get("device_id")) if isinstance(ids, dict) else None
    sensor_id = device or ctx.sensor_id
    observed_at = _time(document, uplink) or ctx.received_at

    pending = _normalized(uplink.get("normalized_payload"), ctx, observed_at)
    decoded = uplink.get("decoded_payload")
    pending += _decoded(
        decoded, ctx, observed_at, {(p.resolved.quantity, p.channel) for p in pending}
    )
    lpp_location: Location | None = None
    if decoded is None and "normalized_payload" not in uplink and uplink.get("frm_payload"):
        frame = _lpp(uplink["frm_payload"])
        lpp_location = frame.location
        for item in frame.values:
            resolved = ctx.quantities.resolve(item.quantity, item.value, quantity=item.quantity)
            if resolved is not None:
                pending.append(Pending(resolved, item.channel, frame.time or observed_at))
    pending += _metadata(uplink, ctx, observed_at)
    location = _locations(uplink.get("locations")) or lpp_location or position(pending)
    return build_readings(
        ctx, pending, sensor_id=sensor_id, location=location, source_format=FORMAT, payload=payload
    )


def _time(document: dict[str, Any], uplink: dict[str, Any]) -> datetime | None:
    for candidate in (uplink.get("received_at"), document.get("received_at")):
        moment = parse_time(candidate)
        if moment is not None:
            return moment
    gateways = uplink.get("rx_metadata")
    if isinstance(gateways, list):
        times = [parse_time(g.get("time")) for g in gateways if isinstance(g, dict)]
        known = [t for t in times if t is not None]
        if known:
            return min(known)
    return None


def _normalized(value: Any, ctx: DecodeContext, observed_at: datetime) -> list[Pending]:
    if value is None:
        return []
    measurements = value if isinstance(value, list) else [value]
    out: list[Pending] = []
    for index, measurement in enumerate(measurements):
        if not isinstance(measurement, dict):
            continue
        when = parse_time(measurement.get("time"))
        channel = index if len(measurements) > 1 and when is None else None
        body = {k: v for k, v in measurement.items() if k != "time"}
        for item in flatten(body):
            resolved, _ = resolve_field(ctx, item)
            if resolved is not None:
                out.append(Pending(resolved, channel, when or observed_at))
    return out


def _decoded(
    value: Any, ctx: DecodeContext, observed_at: datetime, seen: set[tuple[str, int | None]]
) -> list[Pending]:
    if not isinstance(value, dict):
        return []
    out: list[Pending] = []
    for item in flatten(value):
        resolved, channel = resolve_field(ctx, item)
        if resolved is not None and (resolved.quantity, channel) not in seen:
            out.append(Pending(resolved, channel, observed_at))
    return out


def _lpp(frm_payload: Any) -> cayenne_lpp.LppFrame:
    if not isinstance(frm_payload, str):
        raise DecodeError("invalid_payload", "frm_payload must be a base64 string")
    try:
        data = base64.b64decode(frm_payload, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("invalid_payload", "frm_payload is not valid base64") from None
    try:
        return cayenne_lpp.parse(data)
    except DecodeError as err:
        raise DecodeError(
            "undecodable_payload",
            f"no decoded_payload, and frm_payload is not Cayenne LPP ({err.reason}: {err.detail})",
        ) from None


def _metadata(uplink: dict[str, Any], ctx: DecodeContext, observed_at: datetime) -> list[Pending]:
    gateways = uplink.get("rx_metadata")
    out = radio(
        gateways if isinstance(gateways, list) else [], "rssi", "snr", observed_at, ctx.quantities
    )
    extras = [("frame_counter", uplink.get("f_cnt"))]
    battery = uplink.get("last_battery_percentage")
    if isinstance(battery, dict):
        extras.append(("battery_level", battery.get("value")))
    for name, raw in extras:
        value = None if isinstance(raw, bool) else number(raw)
        if value is None:
            continue
        resolved = ctx.quantities.resolve(name, value, quantity=name)
        if resolved is not None:
            out.append(Pending(resolved, None, observed_at))
    return out


def _locations(value: Any) -> Location | None:
    if not isinstance(value, dict):
        return None
    ordered = [value.get("user"), *(v for k, v in value.items() if k != "user")]
    for source in ordered:
        if isinstance(source, dict):
            found = location_of(
                source.get("latitude"), source.get("longitude"), source.get("altitude")
            )
            if found is not None:
                return found
    return None
