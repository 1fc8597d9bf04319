"""Vendor field aliases and unit spellings onto the canonical quantities (pure tables).

Every decoder of a vendor format asks :class:`QuantityTable` what a field name means; the
canonical quantities themselves (name, UCUM unit, privacy class, range) are the platform's one
table, :mod:`urbanpulse.quantities`.

* :data:`ALIASES` — vendor field name → canonical quantity, looked up after
  :func:`normalise_name` (``batteryVoltage`` → ``battery_voltage``, ``SDS_P2`` → ``sds_p2``).
  The target :data:`IGNORE` (``-``) drops a field on purpose (firmware counters). Deployments
  add or override aliases in configuration (``URBANPULSE_DECODERS__ALIASES``).
* :data:`UNIT_SYNONYMS` and :data:`CONVERSIONS` — vendor unit spellings → UCUM codes
  (https://ucum.org/ucum), and the conversions of common non-SI inputs to canonical units.

A field that matches no alias is not lost: it becomes a reading under its own snake_case name,
flagged ``unknown_quantity``, classed ``restricted`` until someone adds an alias. The full table
is in docs/payloads.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from urbanpulse.flags import UNCONVERTED_UNIT, UNKNOWN_QUANTITY
from urbanpulse.model import QUANTITY_PATTERN, Reading
from urbanpulse.quantities import DIMENSIONLESS, QUANTITIES, privacy_of

IGNORE = "-"
"""Alias target meaning: this vendor field is deliberately not a reading."""


_QUANTITY = re.compile(QUANTITY_PATTERN)


# Keys are normalised names (see normalise_name). Canonical names map to themselves implicitly.
ALIASES: Mapping[str, str] = {
    # temperature
    "temp": "temperature",
    "air_temperature": "temperature",
    "air.temperature": "temperature",
    "ambient_temperature": "temperature",
    "sensor_temperature": "temperature",
    "temperature_sensor": "temperature",
    "bme280_temperature": "temperature",
    "bmp280_temperature": "temperature",
    "bmp_temperature": "temperature",
    "sht3x_temperature": "temperature",
    "htu21d_temperature": "temperature",
    "ds18b20_temperature": "temperature",
    "dht22_temperature": "temperature",
    # humidity
    "humidity": "relative_humidity",
    "hum": "relative_humidity",
    "rh": "relative_humidity",
    "air.relative_humidity": "relative_humidity",
    "humidity_sensor": "relative_humidity",
    "bme280_humidity": "relative_humidity",
    "sht3x_humidity": "relative_humidity",
    "htu21d_humidity": "relative_humidity",
    # pressure
    "air_pressure": "pressure",
    "air.pressure": "pressure",
    "barometric_pressure": "pressure",
    "barometer": "pressure",
    "bme280_pressure": "pressure",
    "bmp280_pressure": "pressure",
    "bmp_pressure": "pressure",
    "pressure_at_sealevel": "pressure",
    "dew_point_temperature": "dew_point",
    # wind, rain, light
    "wind.speed": "wind_speed",
    "wind.direction": "wind_direction",
    "rain": "precipitation",
    "luminosity": "illuminance",
    "lux": "illuminance",
    "air.light_intensity": "illuminance",
    "illuminance_sensor": "illuminance",
    "uv": "uv_index",
    # particulate matter and gases (Sensor.Community: P0=PM1, P1=PM10, P2=PM2.5, P4=PM4)
    "pm25": "pm2_5",
    "pm2.5": "pm2_5",
    "pm_2_5": "pm2_5",
    "p2": "pm2_5",
    "sds_p2": "pm2_5",
    "pms_p2": "pm2_5",
    "sps30_p2": "pm2_5",
    "pm_10": "pm10",
    "p1": "pm10",
    "sds_p1": "pm10",
    "pms_p1": "pm10",
    "sps30_p1": "pm10",
    "pm_1": "pm1",
    "pm1_0": "pm1",
    "p0": "pm1",
    "pms_p0": "pm1",
    "sps30_p0": "pm1",
    "p4": "pm4",
    "sps30_p4": "pm4",
    "air.co2": "co2",
    "co2_concentration": "co2",
    "scd30_co2": "co2",
    "voc": "voc_index",
    # noise (Sensor.Community DNMS)
    "noise": "noise_level",
    "laeq": "noise_level",
    "noise_laeq": "noise_level",
    "dnms_noise_laeq": "noise_level",
    "sound_level": "noise_level",
    # water, soil, waste
    "soil.moisture": "soil_moisture",
    "soil.temperature": "soil_temperature",
    "fill": "fill_level",
    "vwc": "volumetric_water_content",
    # electrical
    "battery_percentage": "battery_level",
    "battery_percent": "battery_level",
    "analog_in": "analog_input",
    "analog_out": "analog_output",
    "digital_in": "digital_input",
    "digital_out": "digital_output",
    "presence_sensor": "presence",
    "generic_sensor": "generic",
    "unix_time": IGNORE,
    # Cayenne LPP as The Things Stack and ChirpStack decode it
    "accelerometer.x": "acceleration_x",
    "accelerometer.y": "acceleration_y",
    "accelerometer.z": "acceleration_z",
    "gyrometer.x": "angular_velocity_x",
    "gyrometer.y": "angular_velocity_y",
    "gyrometer.z": "angular_velocity_z",
    "gps.latitude": "latitude",
    "gps.longitude": "longitude",
    "gps.altitude": "altitude",
    "gps_location.latitude": "latitude",
    "gps_location.longitude": "longitude",
    "gps_location.altitude": "altitude",
    "position.latitude": "latitude",
    "position.longitude": "longitude",
    "gps_lat": "latitude",
    "gps_lon": "longitude",
    "gps_height": "altitude",
    "lat": "latitude",
    "lon": "longitude",
    "lng": "longitude",
    "alt": "altitude",
    # radio metadata
    "signal": "rssi",
    "wifi_rssi": "rssi",
    "lora_snr": "snr",
    "f_cnt": "frame_counter",
    "fcnt": "frame_counter",
    # personal data
    "mac": "device_mac",
    "mac_address": "device_mac",
    "people": "people_count",
    "person_count": "people_count",
    "pax": "people_count",
    "wifi": "wifi_device_count",
    "ble": "ble_device_count",
    # firmware counters of airRohr (Sensor.Community) nodes: not measurements
    "samples": IGNORE,
    "min_micro": IGNORE,
    "max_micro": IGNORE,
    "interval": IGNORE,
}

# Vendor unit spellings → UCUM codes. Keys are compared exactly, then case-folded.
UNIT_SYNONYMS: Mapping[str, str] = {
    "°C": "Cel",
    "C": "Cel",
    "degC": "Cel",
    "celsius": "Cel",
    "°F": "[degF]",
    "F": "[degF]",
    "degF": "[degF]",
    "fahrenheit": "[degF]",
    "kelvin": "K",
    "%RH": "%",
    "%EL": "%",
    "percent": "%",
    "µg/m³": "ug/m3",
    "µg/m3": "ug/m3",
    "ug/m³": "ug/m3",
    "μg/m³": "ug/m3",
    "μg/m3": "ug/m3",
    "ppm": "[ppm]",
    "ppb": "[ppb]",
    "dBA": "dB",
    "dB(A)": "dB",
    "dBm": "dB[mW]",
    "lux": "lx",
    "lat": "deg",
    "lon": "deg",
    "°": "deg",
    "degrees": "deg",
    "count": "{count}",
    "/": DIMENSIONLESS,
    "mBar": "mbar",
    "kmh": "km/h",
    "m/s2": "m/s2",
    "G": "[g]",
    "g0": "[g]",
}


# Case-insensitive second chance, except one-letter spellings (C, F, G: g is the gram).
_FOLDED_UNITS = {k.casefold(): v for k, v in UNIT_SYNONYMS.items() if len(k) > 1}


def _factor(k: float) -> Callable[[float], float]:
    return lambda v: v * k


CONVERSIONS: Mapping[tuple[str, str], Callable[[float], float]] = {
    ("[degF]", "Cel"): lambda v: (v - 32.0) * 5.0 / 9.0,
    ("K", "Cel"): lambda v: v - 273.15,
    ("Pa", "hPa"): _factor(0.01),
    ("kPa", "hPa"): _factor(10.0),
    ("mbar", "hPa"): _factor(1.0),
    ("bar", "hPa"): _factor(1000.0),
    ("mV", "V"): _factor(0.001),
    ("mA", "A"): _factor(0.001),
    ("kW", "W"): _factor(1000.0),
    ("W.h", "kW.h"): _factor(0.001),
    ("Wh", "kW.h"): _factor(0.001),
    ("kWh", "kW.h"): _factor(1.0),
    ("km/h", "m/s"): _factor(1.0 / 3.6),
    ("cm", "m"): _factor(0.01),
    ("mm", "m"): _factor(0.001),
    ("km", "m"): _factor(1000.0),
    ("[ppb]", "[ppm]"): _factor(0.001),
    ("kHz", "Hz"): _factor(1000.0),
    ("MHz", "Hz"): _factor(1e6),
    ("m/s2", "[g]"): _factor(1.0 / 9.80665),
    (DIMENSIONLESS, "%"): _factor(100.0),  # SenML "/" ratios, e.g. humidity 0.54 → 54 %
}


def normalise_name(name: str) -> str:
    """Fold a vendor field name for alias lookup: camelCase → snake_case, lower case."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    return re.sub(r"[\s\-]+", "_", name).lower()


def snake_case(name: str) -> str | None:
    """A quantity name made from an unknown field name, or None when nothing usable is left."""
    folded = re.sub(r"[^a-z0-9]+", "_", normalise_name(name)).strip("_")
    if not folded:
        return None
    if not folded[0].isalpha():
        folded = f"q_{folded}"
    folded = folded[:64].rstrip("_")
    return folded if _QUANTITY.fullmatch(folded) else None


def ucum(unit: str) -> str:
    """The UCUM code of a vendor unit spelling (unknown spellings are returned unchanged)."""
    unit = unit.strip()
    if unit in UNIT_SYNONYMS:
        return UNIT_SYNONYMS[unit]
    return _FOLDED_UNITS.get(unit.casefold(), unit)


@dataclass(frozen=True)
class Resolved:
    """What a vendor field became: quantity, value and unit in canonical form, and flags."""

    quantity: str
    value: float
    unit: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuantityTable:
    """The alias table in force: built-in aliases plus the deployment's overrides."""

    aliases: Mapping[str, str] = field(default_factory=lambda: dict(ALIASES))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, str]) -> QuantityTable:
        """The built-in table with configured aliases added; refuses unknown targets."""
        merged = dict(ALIASES)
        for vendor, target in overrides.items():
            if target != IGNORE and target not in QUANTITIES:
                raise ValueError(
                    f"alias {vendor!r} → {target!r}: not a canonical quantity "
                    f"(one of {', '.join(sorted(QUANTITIES))}, or {IGNORE!r} to ignore)"
                )
            merged[normalise_name(vendor)] = target
        return cls(aliases=merged)

    def canonical(self, name: str) -> str | None:
        """The canonical quantity a vendor name stands for, IGNORE, or None if unknown."""
        key = normalise_name(name)
        if key in self.aliases:
            return self.aliases[key]
        if key in QUANTITIES:
            return key
        return None

    def resolve(
        self, name: str, value: float, unit: str | None = None, *, quantity: str | None = None
    ) -> Resolved | None:
        """Map one vendor field to canonical form; None when the field is deliberately ignored.

        ``quantity`` skips the alias lookup (the decoder already knows it, e.g. from LPP's
        type byte). Without a unit the quantity's canonical unit is assumed. A unit that
        cannot be converted is kept as given, flagged ``unconverted_unit``.
        """
        target = quantity or self.canonical(name)
        if target == IGNORE:
            return None
        if target is None:
            made = snake_case(name)
            if made is None:
                return None
            given = ucum(unit) if unit else DIMENSIONLESS
            return Resolved(made, value, given, (UNKNOWN_QUANTITY,))
        canonical_unit = QUANTITIES[target].unit
        if not unit:
            return Resolved(target, value, canonical_unit)
        given = ucum(unit)
        if given == canonical_unit:
            return Resolved(target, value, canonical_unit)
        convert = CONVERSIONS.get((given, canonical_unit))
        if convert is not None:
            converted = convert(value)
            if math.isfinite(converted):
                return Resolved(target, converted, canonical_unit)
        return Resolved(target, value, given, (UNCONVERTED_UNIT,))

    def quantity_for_unit(self, unit: str) -> str | None:
        """The quantity a SenML record means when only its unit says what it is."""
        return _QUANTITY_BY_SENML_UNIT.get(unit.strip())


DEFAULT_TABLE = QuantityTable()

# SenML records that carry no quantity in their name (RFC 8428 5.1.3) are known by their unit.
_QUANTITY_BY_SENML_UNIT: Mapping[str, str] = {
    "Cel": "temperature",
    "K": "temperature",
    "%RH": "relative_humidity",
    "Pa": "pressure",
    "hPa": "pressure",
    "gps_lat": "latitude",
    "gps_lon": "longitude",
    "gps_height": "altitude",
    "lat": "latitude",
    "lon": "longitude",
    "%EL": "battery_level",
    "V": "voltage",
    "A": "current",
    "W": "power",
    "Hz": "frequency",
    "lx": "illuminance",
    "dBm": "rssi",
    "ppm": "co2",
}


@dataclass(frozen=True)
class PrivacyFiltered:
    """Readings that may leave ingest, and how many personal readings were dropped."""

    kept: tuple[Reading, ...]
    dropped: int


def drop_personal(readings: Iterable[Reading]) -> PrivacyFiltered:
    """Drop readings of quantities classed ``personal``: they never leave ingest."""
    kept = []
    dropped = 0
    for reading in readings:
        if privacy_of(reading.quantity) == "personal":
            dropped += 1
        else:
            kept.append(reading)
    return PrivacyFiltered(tuple(kept), dropped)
