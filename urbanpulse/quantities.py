"""The canonical quantities: name, UCUM unit, privacy class and physical range (pure table).

Every part of the platform agrees on this one table: ingest maps vendor fields onto it
(``ingest.aliases``) and drops ``personal`` quantities, the stream worker checks readings
against a quantity's physical :class:`Range`, the API publishes only ``open`` quantities, the
dashboards and the web pages name quantities through it. The full table is in
docs/payloads.md (names, units, privacy) and docs/streams.md (ranges).

Privacy classes: ``open`` (published), ``restricted`` (operational, staff only) and
``personal`` (dropped at ingest, never published). A quantity that is not in the table (a
vendor field nobody mapped yet) is ``restricted``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Privacy = Literal["open", "restricted", "personal"]

DIMENSIONLESS = "1"


@dataclass(frozen=True)
class Range:
    """Physically possible values of a quantity, and the largest plausible step between two.

    A value outside ``[low, high]`` cannot be true (the worker dead-letters it); a jump of more
    than ``max_step`` between two consecutive readings is flagged ``spike``.
    """

    low: float
    high: float
    max_step: float


@dataclass(frozen=True)
class Quantity:
    """A canonical quantity: its name, the UCUM unit readings use, and its privacy class."""

    name: str
    unit: str
    privacy: Privacy = "open"
    description: str = ""
    range: Range | None = None


def _table(*quantities: Quantity) -> Mapping[str, Quantity]:
    return MappingProxyType({q.name: q for q in quantities})


QUANTITIES: Mapping[str, Quantity] = _table(
    # weather and air
    Quantity("temperature", "Cel", description="air temperature", range=Range(-60, 70, 10)),
    Quantity(
        "relative_humidity",
        "%",
        description="relative humidity of the air",
        range=Range(0, 100, 40),
    ),
    Quantity("pressure", "hPa", description="barometric air pressure", range=Range(850, 1090, 10)),
    Quantity("dew_point", "Cel", range=Range(-80, 40, 10)),
    Quantity("wind_speed", "m/s", range=Range(0, 115, 40)),
    Quantity(
        "wind_direction",
        "deg",
        description="where the wind comes from, clockwise from N",
        range=Range(0, 360, 360),
    ),
    Quantity("precipitation", "mm", range=Range(0, 500, 200)),
    Quantity("illuminance", "lx", range=Range(0, 200_000, 200_000)),
    Quantity("uv_index", DIMENSIONLESS, range=Range(0, 25, 10)),
    # air quality
    Quantity("pm1", "ug/m3", description="particulate matter < 1 um", range=Range(0, 2000, 500)),
    Quantity(
        "pm2_5", "ug/m3", description="particulate matter < 2.5 um", range=Range(0, 2000, 500)
    ),
    Quantity("pm4", "ug/m3", description="particulate matter < 4 um", range=Range(0, 2000, 500)),
    Quantity("pm10", "ug/m3", description="particulate matter < 10 um", range=Range(0, 2000, 500)),
    Quantity("co2", "[ppm]", description="carbon dioxide", range=Range(0, 40_000, 5000)),
    Quantity("co", "ug/m3", description="carbon monoxide", range=Range(0, 150_000, 50_000)),
    Quantity("no2", "ug/m3", description="nitrogen dioxide", range=Range(0, 2000, 500)),
    Quantity("o3", "ug/m3", description="ozone", range=Range(0, 1000, 300)),
    Quantity("so2", "ug/m3", description="sulphur dioxide", range=Range(0, 3000, 1000)),
    Quantity("voc_index", DIMENSIONLESS, description="volatile organic compounds index"),
    Quantity("concentration", "[ppm]", description="gas concentration of an unnamed gas"),
    # noise
    Quantity(
        "noise_level",
        "dB",
        description="sound pressure level (usually A-weighted)",
        range=Range(0, 194, 50),
    ),
    # water, soil, waste, parking, traffic
    Quantity("water_level", "m", range=Range(-20, 200, 2)),
    Quantity("distance", "m"),
    Quantity(
        "fill_level", "%", description="waste bin or tank fill level", range=Range(0, 100, 100)
    ),
    Quantity("soil_moisture", "%", range=Range(0, 100, 50)),
    Quantity("soil_temperature", "Cel", range=Range(-40, 60, 10)),
    Quantity("dielectric_permittivity", DIMENSIONLESS),
    Quantity("volumetric_water_content", "m3/m3"),
    Quantity(
        "occupancy",
        DIMENSIONLESS,
        description="parking space taken: 1, free: 0",
        range=Range(0, 1, 1),
    ),
    Quantity("vehicle_count", "{count}", range=Range(0, 1_000_000, 1_000_000)),
    Quantity("bicycle_count", "{count}", range=Range(0, 1_000_000, 1_000_000)),
    # electrical and generic device values
    Quantity("voltage", "V"),
    Quantity("current", "A"),
    Quantity("power", "W"),
    Quantity("energy", "kW.h"),
    Quantity("frequency", "Hz"),
    Quantity("analog_input", DIMENSIONLESS),
    Quantity("analog_output", DIMENSIONLESS),
    Quantity("digital_input", DIMENSIONLESS),
    Quantity("digital_output", DIMENSIONLESS),
    Quantity("switch", DIMENSIONLESS),
    Quantity("presence", DIMENSIONLESS, description="presence detected: 1, none: 0"),
    Quantity("percentage", "%"),
    Quantity("generic", DIMENSIONLESS, description="Cayenne LPP generic sensor value"),
    Quantity("direction", "deg"),
    Quantity("acceleration_x", "[g]"),
    Quantity("acceleration_y", "[g]"),
    Quantity("acceleration_z", "[g]"),
    Quantity("angular_velocity_x", "deg/s"),
    Quantity("angular_velocity_y", "deg/s"),
    Quantity("angular_velocity_z", "deg/s"),
    Quantity("colour_red", DIMENSIONLESS),
    Quantity("colour_green", DIMENSIONLESS),
    Quantity("colour_blue", DIMENSIONLESS),
    # position
    Quantity("latitude", "deg"),
    Quantity("longitude", "deg"),
    Quantity("altitude", "m"),
    # device health and radio metadata: operational, not published raw
    Quantity("battery_voltage", "V", "restricted", range=Range(0, 60, 60)),
    Quantity("battery_level", "%", "restricted", range=Range(0, 100, 100)),
    Quantity("rssi", "dB[mW]", "restricted", "received signal strength (dBm)"),
    Quantity("snr", "dB", "restricted", "signal-to-noise ratio"),
    Quantity("gateway_count", "{count}", "restricted", "gateways that received the uplink"),
    Quantity("frame_counter", "{count}", "restricted", "LoRaWAN uplink frame counter"),
    # personal data: dropped at ingest, never published
    Quantity("people_count", "{count}", "personal"),
    Quantity("device_mac", DIMENSIONLESS, "personal", "a device MAC address"),
    Quantity("wifi_device_count", "{count}", "personal", "phones seen by Wi-Fi sniffing"),
    Quantity("ble_device_count", "{count}", "personal", "phones seen by Bluetooth sniffing"),
)


DEVICE_QUANTITIES: frozenset[str] = frozenset(
    {"battery_voltage", "battery_level", "rssi", "snr", "gateway_count", "frame_counter"}
)
"""Quantities about the device rather than the city (health and radio): the pilot scorecard
judges a sensor's data quality by the other quantities it reports (docs/kpis.md)."""


STEADY_QUANTITIES: frozenset[str] = frozenset(
    {
        "occupancy",
        "presence",
        "precipitation",
        "switch",
        "digital_input",
        "digital_output",
        "vehicle_count",
        "bicycle_count",
    }
)
"""Quantities whose value may rightly stay the same for many readings in a row (a free parking
space, a dry day's rain gauge, a quiet road at night): a ``stuck`` flag on them says little,
so the pilot scorecard does not count it against a sensor (docs/kpis.md)."""


def privacy_of(quantity: str) -> Privacy:
    """The privacy class of a quantity (a ``_sum`` has its quantity's); unknown: restricted."""
    known = QUANTITIES.get(quantity) or QUANTITIES.get(quantity.removesuffix("_sum"))
    return known.privacy if known else "restricted"


OPEN_QUANTITIES: tuple[str, ...] = tuple(
    sorted(name for name, q in QUANTITIES.items() if q.privacy == "open")
)
"""Every quantity published as open data, sorted."""


def require(name: str) -> str:
    """``name`` if it is a canonical quantity, else ValueError (for names written in code)."""
    if name not in QUANTITIES:
        raise ValueError(f"{name!r} is not a canonical quantity (urbanpulse.quantities)")
    return name
