"""How the web pages show each quantity: its domain, display unit and colour scale (pure table).

One table, keyed by canonical quantity (:mod:`urbanpulse.quantities`; a test keeps every key
one), that the map, its legend, the sensor page and the staff overview all read (served to the
pages as JSON, never copied into JavaScript), and that the dashboards and the pilot scorecard
can read for a quantity's domain. It lives beside the quantity table because the way a
quantity is shown is as much an agreement between parts as its unit.

A scale is a list of bands, each up to an exclusive upper bound (the last one open-ended), with
a colour and a label key of the web pages' language files (``api/web/i18n/*.json``). The sources:

* ``pm2_5``, ``pm10``, ``no2``, ``o3``, ``so2``: the European Environment Agency's European Air
  Quality Index bands (µg/m³, hourly values) and its colours;
* ``noise_level``: the WHO Environmental Noise Guidelines for Europe (2018): 53 dB Lden for
  road traffic, 45 dB at night; above 65 and 75 dB the EU's noise maps mark high exposure;
* ``uv_index``: the WHO Global Solar UV Index categories;
* ``co2``: indoor-air guidance (800 / 1000 / 1400 ppm, e.g. the German UBA's);
* the rest (temperature, humidity, wind, fill level, parking) are plain bands a town can read.

Quantities without a scale are shown in one neutral colour with their value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

NEUTRAL = "#5b6b7f"  # quantities without a scale


@dataclass(frozen=True, kw_only=True)
class Band:
    """Values below ``upper`` (and at or above the band before): this colour and label."""

    upper: float | None  # None: no upper bound (the last band)
    colour: str
    label: str  # key in the language files


@dataclass(frozen=True, kw_only=True)
class Scale:
    """A colour scale: bands in increasing order, and the source a reader can check."""

    name: str
    bands: tuple[Band, ...]
    source: str

    def band(self, value: float) -> Band:
        """The band ``value`` falls in."""
        for band in self.bands:
            if band.upper is None or value < band.upper:
                return band
        return self.bands[-1]


@dataclass(frozen=True, kw_only=True)
class Display:
    """How one quantity is shown: its domain, a unit a person reads, and its scale (if any)."""

    domain: str
    unit_label: str
    scale: Scale | None = None
    decimals: int = 1


def _bands(name: str, source: str, *bands: tuple[float | None, str, str]) -> Scale:
    return Scale(
        name=name,
        source=source,
        bands=tuple(Band(upper=u, colour=c, label=f"band.{name}.{k}") for u, c, k in bands),
    )


EAQI_SOURCE = "European Air Quality Index (European Environment Agency)"
EAQI_COLOURS = ("#50f0e6", "#50ccaa", "#f0e641", "#ff5050", "#960032", "#7d2181")
EAQI_LEVELS = ("good", "fair", "moderate", "poor", "very_poor", "extremely_poor")
UG = "µg/m³"


def _eaqi(*uppers: float) -> Scale:
    limits: tuple[float | None, ...] = (*uppers, None)
    return _bands(
        "eaqi",
        EAQI_SOURCE,
        *zip(limits, EAQI_COLOURS, EAQI_LEVELS, strict=True),
    )


NOISE = _bands(
    "noise",
    "WHO Environmental Noise Guidelines for Europe (2018); EU noise mapping",
    (45, "#1a9850", "quiet"),
    (55, "#91cf60", "moderate"),
    (65, "#fee08b", "loud"),
    (75, "#fc8d59", "very_loud"),
    (None, "#a50026", "harmful"),
)
TEMPERATURE = _bands(
    "temperature",
    "plain bands",
    (0, "#4575b4", "freezing"),
    (10, "#91bfdb", "cold"),
    (20, "#e0f3f8", "mild"),
    (25, "#fee090", "warm"),
    (30, "#fc8d59", "hot"),
    (None, "#d73027", "very_hot"),
)
HUMIDITY = _bands(
    "humidity",
    "plain bands",
    (30, "#dfc27d", "dry"),
    (60, "#80cdc1", "comfortable"),
    (None, "#018571", "humid"),
)
WIND = _bands(
    "wind",
    "Beaufort scale (force 0-3, 4-5, 6-7, 8 and more)",
    (5.5, "#c7e9c0", "calm"),
    (10.8, "#74c476", "breezy"),
    (17.2, "#fd8d3c", "strong"),
    (None, "#bd0026", "gale"),
)
UV = _bands(
    "uv",
    "WHO Global Solar UV Index",
    (3, "#4eb400", "low"),
    (6, "#f7e400", "moderate"),
    (8, "#f85900", "high"),
    (11, "#d8001d", "very_high"),
    (None, "#6b49c8", "extreme"),
)
CO2 = _bands(
    "co2",
    "indoor air guidance (German Environment Agency, UBA)",
    (800, "#1a9850", "fresh"),
    (1000, "#fee08b", "acceptable"),
    (1400, "#fc8d59", "stale"),
    (None, "#d73027", "poor"),
)
FILL = _bands(
    "fill",
    "plain bands",
    (50, "#1a9850", "empty"),
    (80, "#fee08b", "filling"),
    (95, "#fc8d59", "nearly_full"),
    (None, "#d73027", "full"),
)
PARKING = _bands(
    "parking",
    "occupancy: 0 free, 1 taken",
    (0.5, "#1a9850", "free"),
    (None, "#d73027", "taken"),
)

DISPLAY: Mapping[str, Display] = MappingProxyType(
    {
        # air quality
        "pm2_5": Display(domain="air", unit_label=UG, scale=_eaqi(10, 20, 25, 50, 75)),
        "pm10": Display(domain="air", unit_label=UG, scale=_eaqi(20, 40, 50, 100, 150)),
        "no2": Display(domain="air", unit_label=UG, scale=_eaqi(40, 90, 120, 230, 340)),
        "o3": Display(domain="air", unit_label=UG, scale=_eaqi(50, 100, 130, 240, 380)),
        "so2": Display(domain="air", unit_label=UG, scale=_eaqi(100, 200, 350, 500, 750)),
        "pm1": Display(domain="air", unit_label=UG),
        "pm4": Display(domain="air", unit_label=UG),
        "co": Display(domain="air", unit_label=UG, decimals=0),
        "co2": Display(domain="air", unit_label="ppm", scale=CO2, decimals=0),
        "voc_index": Display(domain="air", unit_label="", decimals=0),
        # noise
        "noise_level": Display(domain="noise", unit_label="dB(A)", scale=NOISE),
        # mobility
        "vehicle_count": Display(domain="traffic", unit_label="", decimals=0),
        "bicycle_count": Display(domain="traffic", unit_label="", decimals=0),
        "occupancy": Display(domain="parking", unit_label="", scale=PARKING, decimals=0),
        # waste and water
        "fill_level": Display(domain="waste", unit_label="%", scale=FILL, decimals=0),
        "water_level": Display(domain="water", unit_label="m", decimals=2),
        # weather
        "temperature": Display(domain="weather", unit_label="°C", scale=TEMPERATURE),
        "relative_humidity": Display(domain="weather", unit_label="%", scale=HUMIDITY, decimals=0),
        "pressure": Display(domain="weather", unit_label="hPa", decimals=0),
        "dew_point": Display(domain="weather", unit_label="°C"),
        "wind_speed": Display(domain="weather", unit_label="m/s", scale=WIND),
        "wind_direction": Display(domain="weather", unit_label="°", decimals=0),
        "precipitation": Display(domain="weather", unit_label="mm"),
        "illuminance": Display(domain="weather", unit_label="lx", decimals=0),
        "uv_index": Display(domain="weather", unit_label="", scale=UV),
        # soil
        "soil_moisture": Display(domain="soil", unit_label="%", decimals=0),
        "soil_temperature": Display(domain="soil", unit_label="°C"),
    }
)
"""Quantity → how it is shown. Quantities not listed are shown as ``other``, unscaled."""

# A sensor's domain is that of its quantity earliest in this order: an air-quality station that
# also reports temperature is an air sensor, not a weather station.
DOMAINS = ("air", "noise", "traffic", "parking", "waste", "water", "soil", "weather", "other")
OTHER = Display(domain="other", unit_label="")


def display(quantity: str) -> Display:
    """How ``quantity`` is shown (``other``, unscaled, when the table does not know it)."""
    return DISPLAY.get(quantity, OTHER)


def sensor_domain(quantities: list[str]) -> str:
    """The domain of a sensor that reports these quantities."""
    found = {display(q).domain for q in quantities}
    return next((d for d in DOMAINS if d in found), "other")


def quantity_order(quantities: set[str]) -> list[str]:
    """Quantities in the order the pages offer them: scaled ones by domain, then the rest."""
    rank = {d: i for i, d in enumerate(DOMAINS)}
    table = list(DISPLAY)
    return sorted(
        quantities,
        key=lambda q: (
            display(q).scale is None,
            rank[display(q).domain],
            table.index(q) if q in DISPLAY else len(table),
            q,
        ),
    )


def scales_json() -> dict[str, Any]:
    """The table as the pages read it: per quantity, domain, unit label, decimals, bands."""
    return {
        "neutral": NEUTRAL,
        "domains": list(DOMAINS),
        "quantities": {
            name: {
                "domain": shown.domain,
                "unit": shown.unit_label,
                "decimals": shown.decimals,
                "scale": None
                if shown.scale is None
                else {
                    "name": shown.scale.name,
                    "source": shown.scale.source,
                    "bands": [
                        {"upper": b.upper, "colour": b.colour, "label": b.label}
                        for b in shown.scale.bands
                    ],
                },
            }
            for name, shown in DISPLAY.items()
        },
    }


def band_labels() -> set[str]:
    """Every label key the scales use (each language file must have them all)."""
    return {band.label for shown in DISPLAY.values() if shown.scale for band in shown.scale.bands}
