"""Payload encoders: one simulated device's values as each format's message, on its topic (pure).

Each encoder returns a :class:`Message`: the MQTT topic and bytes, and the readings the
simulator means the ingestor to make of them (:class:`Intended`: sensor id as the platform
sees it, canonical quantity, value and UCUM unit, observation time). Tests decode every
message with ``ingest.routing.decode_message`` and compare it with these.

Formats, topics and what they carry (docs/payloads.md, docs/simulators.md):

* ``json`` — ``urbanpulse/{tenant}/{device}/json``: a batch with time and position.
* ``senml`` — ``urbanpulse/{tenant}/{device}/senml``: RFC 8428 pack, base name and time;
  pressure in Pa (the ingestor converts to hPa), humidity in ``%RH``, counts in ``count``.
* ``lpp`` — ``urbanpulse/{tenant}/{device}/lpp``: Cayenne LPP with a Unix-time record; each
  quantity on its own channel, so the platform sees sensors ``{device}:{channel}``; values
  quantised to LPP's resolution (0.1 °C, 0.5 %, 0.1 hPa).
* ``sensorcommunity`` — ``urbanpulse/{tenant}/{device}/sensorcommunity``: the airRohr push
  body, which has no time (the ingestor uses the time of receipt); with ``timestamps`` on
  (accelerated, backfill) the read-API shape instead, with its UTC ``timestamp``.
* ``tts`` — ``v3/{app}@{tts_tenant}/devices/{device}/up``: The Things Stack v3 uplink with
  ``decoded_payload``, gateway metadata and the battery percentage.
* ``chirpstack`` — ``application/{uuid}/device/{dev_eui}/event/up``: ChirpStack v4 ``up``
  event with ``object`` and gateway metadata; the platform's sensor id is the DevEUI.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from simulators.models import quantity_model
from simulators.noise import uniform
from simulators.scenario import Device, Format, Scenario, lpp_channels
from urbanpulse.quantities import privacy_of


@dataclass(frozen=True)
class Intended:
    """A reading the simulator means the platform to make of a message."""

    sensor_id: str
    quantity: str
    value: float
    unit: str
    observed_at: datetime | None  # None: the format carries no time; the ingestor stamps it


@dataclass(frozen=True)
class Point:
    """One model value to encode: quantity, value (canonical unit) and the device's clock time."""

    observed_at: datetime
    quantity: str
    value: float


@dataclass(frozen=True)
class Message:
    """One MQTT message to publish, what it should become, and the faults injected into it."""

    topic: str
    payload: bytes
    readings: tuple[Intended, ...]
    device_id: str
    format: Format
    observed_at: datetime  # the true event time (before any clock skew)
    faults: tuple[str, ...] = ()
    dead_letter: str | None = None  # the reason the ingestor must refuse it with, if any
    personal: tuple[Intended, ...] = ()  # readings the ingestor must drop (personal data)


@dataclass(frozen=True)
class Wire:
    """What encoders need to know about the town: tenant and network-server applications."""

    tenant: str
    tts_topic_application: str
    tts_application: str
    chirpstack_application: str
    timestamps: bool = True  # Sensor.Community: send the read-API shape with a timestamp
    seed: int = 1

    @classmethod
    def of(cls, scenario: Scenario, *, timestamps: bool = True) -> Wire:
        """The wire context of a scenario."""
        return cls(
            tenant=scenario.tenant,
            tts_topic_application=scenario.tts_topic_application(),
            tts_application=scenario.tts_application(),
            chirpstack_application=scenario.chirpstack_application(),
            timestamps=timestamps,
            seed=scenario.seed,
        )


def stamp(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _unit(device: Device, quantity: str) -> str:
    return quantity_model(device.kind, quantity).unit


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# native JSON and SenML


def encode_json(
    wire: Wire, device: Device, points: Sequence[Point], counter: int, ids: bool = False
) -> Message:
    """The native JSON batch: every point with its time, unit and the device's position."""
    readings = []
    for index, p in enumerate(points):
        item: dict[str, object] = {
            "time": stamp(p.observed_at),
            "quantity": p.quantity,
            "value": p.value,
            "unit": _unit(device, p.quantity),
            "lat": device.lat,
            "lon": device.lon,
        }
        if ids:
            item["id"] = f"{device.device_id}-{counter}-{index}"
        readings.append(item)
    intended = tuple(
        Intended(device.sensor_id, p.quantity, p.value, _unit(device, p.quantity), p.observed_at)
        for p in points
    )
    topic = f"urbanpulse/{wire.tenant}/{device.device_id}/json"
    return _message(topic, _json({"readings": readings}), intended, device, points)


# SenML units the simulator sends, and the factor from the canonical unit to them.
_SENML_UNITS: Mapping[str, tuple[str, float]] = {
    "pressure": ("Pa", 100.0),
    "relative_humidity": ("%RH", 1.0),
    "battery_level": ("%EL", 1.0),
    "vehicle_count": ("count", 1.0),
    "people_count": ("count", 1.0),
    "occupancy": ("/", 1.0),
}


def encode_senml(wire: Wire, device: Device, points: Sequence[Point], counter: int) -> Message:
    """An RFC 8428 pack with a base name and base time; some values in non-canonical units."""
    base_time = int(points[0].observed_at.timestamp())
    records: list[dict[str, object]] = []
    for index, p in enumerate(points):
        unit, factor = _SENML_UNITS.get(p.quantity, (_unit(device, p.quantity), 1.0))
        record: dict[str, object] = {"n": p.quantity, "u": unit, "v": round(p.value * factor, 6)}
        offset = p.observed_at.timestamp() - base_time
        if offset:
            record["t"] = offset
        if index == 0:
            record = {"bn": f"urn:dev:{device.device_id}:", "bt": base_time, **record}
        records.append(record)
    intended = tuple(
        Intended(device.sensor_id, p.quantity, p.value, _unit(device, p.quantity), p.observed_at)
        for p in points
    )
    topic = f"urbanpulse/{wire.tenant}/{device.device_id}/senml"
    return _message(topic, _json(records), intended, device, points)


# ---------------------------------------------------------------------------------------------
# Cayenne LPP

# quantity → (LPP type, bytes, signed, resolution)
_LPP: Mapping[str, tuple[int, int, bool, float]] = {
    "temperature": (103, 2, True, 0.1),
    "relative_humidity": (104, 1, False, 0.5),
    "pressure": (115, 2, False, 0.1),
}
LPP_UNIX_TIME = 133


def lpp_quantise(quantity: str, value: float) -> float:
    """A value as LPP can carry it (rounded to the type's resolution)."""
    resolution = _LPP[quantity][3]
    steps = round(value / resolution)
    return round(steps * resolution, 4)


def encode_lpp(wire: Wire, device: Device, points: Sequence[Point], counter: int) -> Message:
    """A Cayenne LPP frame: a Unix-time record, then one channel per quantity."""
    when = points[0].observed_at
    frame = bytearray([0, LPP_UNIX_TIME]) + int(when.timestamp()).to_bytes(4, "big")
    names = [q.quantity for q in device.kind.quantities]
    channels = dict(zip(names, lpp_channels(device.kind), strict=True))
    intended = []
    for p in points:
        if p.quantity not in _LPP:
            continue  # battery: LPP devices of ours do not report it
        code, size, signed, resolution = _LPP[p.quantity]
        raw = round(p.value / resolution)
        frame += bytes([channels[p.quantity], code]) + raw.to_bytes(size, "big", signed=signed)
        intended.append(
            Intended(  # the device is the sensor; the channel is the reading's probe
                device.sensor_id,
                p.quantity,
                lpp_quantise(p.quantity, p.value),
                _unit(device, p.quantity),
                when.replace(microsecond=0),
            )
        )
    topic = f"urbanpulse/{wire.tenant}/{device.device_id}/lpp"
    return _message(topic, bytes(frame), tuple(intended), device, points)


# ---------------------------------------------------------------------------------------------
# Sensor.Community

# quantity → (push value_type, read-API value_type, factor from canonical unit)
_SENSOR_COMMUNITY: Mapping[str, tuple[str, str, float]] = {
    "pm10": ("SDS_P1", "P1", 1.0),
    "pm2_5": ("SDS_P2", "P2", 1.0),
    "temperature": ("BME280_temperature", "temperature", 1.0),
    "relative_humidity": ("BME280_humidity", "humidity", 1.0),
    "pressure": ("BME280_pressure", "pressure", 100.0),
    "noise_level": ("DNMS_noise_LAeq", "noise_LAeq", 1.0),
}


def encode_sensor_community(
    wire: Wire, device: Device, points: Sequence[Point], counter: int
) -> Message:
    """The airRohr push body (no time), or with ``wire.timestamps`` the read-API shape."""
    when = points[0].observed_at.replace(microsecond=0)
    values = []
    for p in points:
        push, read, factor = _SENSOR_COMMUNITY[p.quantity]
        value_type = read if wire.timestamps else push
        values.append({"value_type": value_type, "value": f"{p.value * factor:.2f}"})
    rssi = -55 - int(30 * uniform(wire.seed, device.device_id, "wifi", counter))
    values.append({"value_type": "signal", "value": str(rssi)})
    chip = str(1_000_000 + int(8_000_000 * uniform(wire.seed, device.device_id, "esp")))
    observed = when if wire.timestamps else None
    document: object
    if wire.timestamps:
        document = [
            {
                "id": counter,
                "sampling_rate": None,
                "timestamp": when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "location": {
                    "latitude": f"{device.lat:.6f}",
                    "longitude": f"{device.lon:.6f}",
                    "country": "NL",
                    "indoor": 0,
                },
                "sensor": {"id": int(chip) % 100_000, "sensor_type": {"name": "SDS011"}},
                "sensordatavalues": values,
            }
        ]
    else:
        document = {
            "esp8266id": chip,
            "software_version": "NRZ-2024-135",
            "sensordatavalues": values,
        }
    intended = [
        Intended(
            device.sensor_id,
            p.quantity,
            round(p.value * _SENSOR_COMMUNITY[p.quantity][2], 2) / _SENSOR_COMMUNITY[p.quantity][2],
            _unit(device, p.quantity),
            observed,
        )
        for p in points
    ]
    intended.append(Intended(device.sensor_id, "rssi", float(rssi), "dB[mW]", observed))
    topic = f"urbanpulse/{wire.tenant}/{device.device_id}/sensorcommunity"
    return _message(topic, _json(document), tuple(intended), device, points)


# ---------------------------------------------------------------------------------------------
# LoRaWAN network servers

# quantity → field name in a decoded payload (the names payload formatters commonly use)
_LORAWAN_NAMES: Mapping[str, str] = {
    "temperature": "temperature",
    "relative_humidity": "humidity",
    "pressure": "pressure",
    "wind_speed": "windSpeed",
    "wind_direction": "windDirection",
    "precipitation": "rain",
    "pm2_5": "pm25",
    "pm10": "pm10",
    "no2": "no2",
    "o3": "o3",
    "noise_level": "laeq",
    "vehicle_count": "vehicleCount",
    "occupancy": "occupancy",
    "fill_level": "fillLevel",
    "water_level": "waterLevel",
    "people_count": "pax",
}


def _radio(wire: Wire, device: Device, counter: int) -> tuple[int, float, int]:
    key = (device.device_id, "radio", counter)
    rssi = -118 + int(60 * uniform(wire.seed, *key, "rssi"))
    snr = round(-8 + 18 * uniform(wire.seed, *key, "snr"), 1)
    gateways = 1 + int(2.5 * uniform(wire.seed, *key, "gw"))
    return rssi, snr, gateways


def _radio_intended(
    sensor_id: str, rssi: int, snr: float, gateways: int, counter: int, when: datetime
) -> list[Intended]:
    return [
        Intended(sensor_id, "rssi", float(rssi), "dB[mW]", when),
        Intended(sensor_id, "snr", snr, "dB", when),
        Intended(sensor_id, "gateway_count", float(gateways), "{count}", when),
        Intended(sensor_id, "frame_counter", float(counter), "{count}", when),
    ]


def encode_tts(wire: Wire, device: Device, points: Sequence[Point], counter: int) -> Message:
    """A The Things Stack v3 uplink with a decoded payload and gateway metadata."""
    when = points[0].observed_at.replace(microsecond=0)
    at = stamp(when)
    decoded = {_LORAWAN_NAMES[p.quantity]: p.value for p in points if p.quantity in _LORAWAN_NAMES}
    battery = [p for p in points if p.quantity == "battery_level"]
    rssi, snr, gateways = _radio(wire, device, counter)
    uplink: dict[str, object] = {
        "session_key_id": base64.b64encode(device.dev_eui.encode()).decode(),
        "f_port": 1,
        "f_cnt": counter,
        "frm_payload": base64.b64encode(_json(decoded)[:51]).decode(),
        "decoded_payload": decoded,
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": f"{wire.tenant}-gw-{g + 1}"},
                "time": at,
                "rssi": rssi - 6 * g,
                "channel_rssi": rssi - 6 * g,
                "snr": round(snr - 2.5 * g, 1),
                "uplink_token": "AAAA",
            }
            for g in range(gateways)
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
            "frequency": "868100000",
        },
        "received_at": at,
        "consumed_airtime": "0.061696s",
        "network_ids": {"net_id": "000013", "tenant_id": "ttn"},
    }
    if battery:
        uplink["last_battery_percentage"] = {
            "f_cnt": counter,
            "value": battery[0].value,
            "received_at": at,
        }
    document = {
        "end_device_ids": {
            "device_id": device.device_id,
            "application_ids": {"application_id": wire.tts_application},
            "dev_eui": device.dev_eui.upper(),
            "dev_addr": device.dev_eui[-8:].upper(),
        },
        "correlation_ids": [f"as:up:{device.dev_eui}{counter:08d}"],
        "received_at": at,
        "uplink_message": uplink,
    }
    intended = [
        Intended(device.sensor_id, p.quantity, p.value, _unit(device, p.quantity), when)
        for p in points
    ]
    intended += _radio_intended(device.sensor_id, rssi, snr, gateways, counter, when)
    topic = f"v3/{wire.tts_topic_application}/devices/{device.device_id}/up"
    return _message(topic, _json(document), tuple(intended), device, points)


def encode_chirpstack(wire: Wire, device: Device, points: Sequence[Point], counter: int) -> Message:
    """A ChirpStack v4 ``up`` event with the codec's ``object`` and gateway metadata."""
    when = points[0].observed_at.replace(microsecond=0)
    decoded: dict[str, object] = {
        _LORAWAN_NAMES[p.quantity]: p.value for p in points if p.quantity in _LORAWAN_NAMES
    }
    for p in points:
        if p.quantity == "battery_level":
            decoded["batteryLevel"] = p.value
    rssi, snr, gateways = _radio(wire, device, counter)
    document = {
        "deduplicationId": f"{device.dev_eui}-{counter:08d}",
        "time": stamp(when),
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": wire.tenant,
            "applicationId": wire.chirpstack_application,
            "applicationName": f"{wire.tenant} sensors",
            "deviceProfileId": "bd6a4bbf-2a13-4e4b-9f5a-0c4e0f9b6a3e",
            "deviceProfileName": device.kind.name,
            "deviceName": device.device_id,
            "devEui": device.dev_eui,
            "tags": {"district": device.district},
        },
        "devAddr": device.dev_eui[-8:],
        "adr": True,
        "dr": 5,
        "fCnt": counter,
        "fPort": 1,
        "confirmed": False,
        "data": base64.b64encode(_json(decoded)[:51]).decode(),
        "object": decoded,
        "rxInfo": [
            {
                "gatewayId": f"0016c001ff10{g:04x}",
                "uplinkId": 1000 + counter % 60000,
                "rssi": rssi - 6 * g,
                "snr": round(snr - 2.5 * g, 1),
                "channel": 2,
                "location": {"latitude": device.lat, "longitude": device.lon},
                "context": "AAAAAA==",
                "crcStatus": "CRC_OK",
            }
            for g in range(gateways)
        ],
        "txInfo": {
            "frequency": 868100000,
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7}},
        },
    }
    intended = [
        Intended(device.sensor_id, p.quantity, p.value, _unit(device, p.quantity), when)
        for p in points
    ]
    intended += _radio_intended(device.sensor_id, rssi, snr, gateways, counter, when)
    topic = f"application/{wire.chirpstack_application}/device/{device.dev_eui}/event/up"
    return _message(topic, _json(document), tuple(intended), device, points)


Encoder = Callable[[Wire, Device, Sequence[Point], int], Message]
ENCODERS: Mapping[Format, Encoder] = {
    "json": encode_json,
    "senml": encode_senml,
    "lpp": encode_lpp,
    "sensorcommunity": encode_sensor_community,
    "tts": encode_tts,
    "chirpstack": encode_chirpstack,
}


def encode(wire: Wire, device: Device, points: Sequence[Point], counter: int) -> Message:
    """The device's message in its own format."""
    return ENCODERS[device.format](wire, device, points, counter)


def _message(
    topic: str,
    payload: bytes,
    intended: tuple[Intended, ...],
    device: Device,
    points: Sequence[Point],
) -> Message:
    kept = tuple(r for r in intended if privacy_of(r.quantity) != "personal")
    personal = tuple(r for r in intended if privacy_of(r.quantity) == "personal")
    return Message(
        topic=topic,
        payload=payload,
        readings=kept,
        device_id=device.device_id,
        format=device.format,
        observed_at=points[0].observed_at,
        dead_letter="personal_only" if personal and not kept else None,
        personal=personal,
    )


# ---------------------------------------------------------------------------------------------
# Malformed messages: what a broken device or a misconfigured network server sends


def malform(message: Message) -> Message:
    """The message broken the way its format typically breaks, with the refusal reason."""
    if message.format == "lpp":
        payload = message.payload[:6] + bytes([1, 0xFF, 0x00, 0x10])  # an unknown LPP type
        reason = "unknown_lpp_type"
    elif message.format == "chirpstack":
        document = json.loads(message.payload)
        del document["object"]  # the device profile lost its codec: data but no object
        payload, reason = _json(document), "no_decoded_payload"
    else:
        payload = message.payload[: max(1, len(message.payload) // 2)]  # cut short in transit
        reason = "invalid_json"
    return replace(message, payload=payload, readings=(), dead_letter=reason)


def unpack_lpp_time(payload: bytes) -> int:
    """The Unix time of a frame this module wrote (for tests)."""
    return int(struct.unpack(">I", payload[2:6])[0])
