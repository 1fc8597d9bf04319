"""Sensor models of a city, per domain, as pure functions of (seed, sensor, time).

One shared environment drives every sensor, so the domains move together the way they do in a
real town: traffic has weekday rush hours and quiet weekends; weather has a season, a daily
cycle and rain spells; air quality follows traffic and is diluted by wind and washed out by
rain; noise follows traffic, lower at night; water levels rise after rain; parking and people
counts follow the working day; waste bins fill and are emptied on their collection day.
Sensor kinds are data (:data:`KINDS`): quantities with their units and ranges, and a value
function. Nothing here does I/O or keeps state; the same inputs always give the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from simulators.noise import fractal, gauss, smooth, uniform

Privacy = Literal["open", "restricted", "personal"]
HOUR = 3600.0
DAY = 86400.0
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class QuantityModel:
    """One quantity a sensor kind reports: canonical unit, rounding, range, fault sizes."""

    quantity: str
    unit: str
    decimals: int
    low: float
    high: float
    spike: float  # what an injected spike adds: beyond the stream worker's max step
    drift_per_day: float  # what an injected drift adds per day


@dataclass(frozen=True)
class City:
    """What every model of one town shares: the seed and the local time zone."""

    seed: int
    tz: ZoneInfo


@dataclass(frozen=True)
class Site:
    """One sensor's place in the models: its id (the noise key) and how busy its spot is."""

    sensor_id: str
    exposure: float  # 0 (park) … 1 (main road): traffic near the sensor
    capacity: float  # vehicles/h at full traffic, people/h, or %/day a bin fills
    offset: float  # 0 … 1: staggers schedules (bin collection day, parking turnover)


@dataclass(frozen=True)
class Weather:
    """The town's weather at one moment."""

    temperature: float  # Cel
    relative_humidity: float  # %
    pressure: float  # hPa
    wind_speed: float  # m/s
    wind_direction: float  # deg
    rain: float  # mm/h


ValueFn = Callable[[City, Site, datetime, float], dict[str, float]]


@dataclass(frozen=True)
class SensorKind:
    """A kind of sensor: its domain, the quantities it reports and how they behave."""

    name: str
    domain: str
    prefix: str
    quantities: tuple[QuantityModel, ...]
    values: ValueFn
    battery: bool
    interval_s: float
    privacy: Privacy = "open"
    description: str = ""

    def quantity(self, name: str) -> QuantityModel:
        """The model of one of this kind's quantities."""
        for q in self.quantities:
            if q.quantity == name:
                return q
        raise KeyError(name)


BATTERY = QuantityModel("battery_level", "%", 0, 0, 100, 0, 0)


# ---------------------------------------------------------------------------------------------
# The shared environment


def _local(city: City, t: datetime) -> tuple[float, int, int]:
    """Local hour of day (fractional), weekday (0 = Monday) and day of the year."""
    local = t.astimezone(city.tz)
    hours = local.hour + local.minute / 60 + local.second / 3600
    return hours, local.weekday(), local.timetuple().tm_yday


def _bump(hours: float, centre: float, width: float) -> float:
    return math.exp(-(((hours - centre) / width) ** 2))


@lru_cache(maxsize=4096)
def traffic(city: City, t: datetime) -> float:
    """Traffic intensity, 0 … about 1.1: rush hours on weekdays, a late, lower peak at weekends."""
    hours, weekday, _ = _local(city, t)
    if weekday < 5:
        daytime = 0.55 * (_bump(hours, 13.0, 4.5))
        level = 0.05 + daytime + 0.55 * _bump(hours, 8.0, 1.1) + 0.5 * _bump(hours, 17.3, 1.4)
        if weekday == 4:
            level *= 1.05
    else:
        level = 0.06 + 0.5 * _bump(hours, 14.0, 4.0)
    wobble = 0.06 * smooth(city.seed, "traffic", t.timestamp(), HOUR)
    return max(0.02, level + wobble)


@lru_cache(maxsize=4096)
def activity(city: City, t: datetime) -> float:
    """How busy the streets are with people, 0 … about 1: shops and lunch, Saturday shopping."""
    hours, weekday, _ = _local(city, t)
    if weekday < 5:
        level = 0.03 + 0.55 * _bump(hours, 12.5, 3.5) + 0.3 * _bump(hours, 17.5, 1.5)
    elif weekday == 5:
        level = 0.03 + 0.9 * _bump(hours, 14.0, 3.2)
    else:
        level = 0.02 + 0.45 * _bump(hours, 14.5, 3.0)
    return max(0.0, level)


@lru_cache(maxsize=4096)
def rain(city: City, t: datetime) -> float:
    """Rain intensity in mm/h: dry most of the time, spells of a few hours."""
    index = fractal(city.seed, "rain", t.timestamp(), 7 * HOUR)
    return max(0.0, index - 0.3) * 9.0


@lru_cache(maxsize=4096)
def weather(city: City, t: datetime) -> Weather:
    """The town's weather: season, daily cycle, passing fronts, rain spells."""
    hours, _, day_of_year = _local(city, t)
    ts = t.timestamp()
    season = -math.cos(2 * math.pi * (day_of_year - 20) / 365.25)  # -1 in January, +1 in July
    wet = rain(city, t)
    daily = (4.0 + 2.0 * season) * math.cos(2 * math.pi * (hours - 15.0) / 24)
    front = 3.0 * fractal(city.seed, "front", ts, 2.5 * DAY)
    temperature = 10.5 + 7.5 * season + daily + front - min(3.0, wet)
    humidity = 72 - 2.2 * daily - 1.5 * front + min(25.0, 8.0 * wet)
    humidity += 3 * smooth(city.seed, "hum", ts, 3 * HOUR)
    pressure = 1013 + 14 * fractal(city.seed, "pressure", ts, 3 * DAY) - 2.5 * min(4.0, wet)
    wind = 3.5 + 2.5 * fractal(city.seed, "wind", ts, 14 * HOUR) + 0.6 * min(5.0, wet)
    wind *= 0.75 + 0.25 * _bump(hours, 14.0, 5.0) * 1.4
    direction = (235 + 80 * fractal(city.seed, "wind-dir", ts, DAY)) % 360
    return Weather(
        temperature=temperature,
        relative_humidity=min(100.0, max(15.0, humidity)),
        pressure=pressure,
        wind_speed=max(0.0, wind),
        wind_direction=direction,
        rain=wet,
    )


# ---------------------------------------------------------------------------------------------
# Value functions per kind (all pure; ``interval_s`` is the reporting interval)


def _jitter(city: City, site: Site, t: datetime, what: str, sigma: float) -> float:
    return sigma * gauss(city.seed, site.sensor_id, what, int(t.timestamp()))


def air_quality(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """PM2.5, PM10, NO2, O3: traffic emissions, diluted by wind, washed out by rain."""
    w = weather(city, t)
    hours, _, _ = _local(city, t)
    dilution = 1.0 / (1.0 + w.wind_speed / 3.0)
    local_traffic = traffic(city, t) * (0.3 + 0.7 * site.exposure)
    washout = 1.0 / (1.0 + 0.5 * w.rain)
    heating = max(0.0, 12.0 - w.temperature) * 0.35 * _bump(hours, 20.0, 3.0)
    background = 6.0 + 5.0 * (1 + fractal(city.seed, "pm-bg", t.timestamp(), 2 * DAY))
    pm2_5 = (background + 16 * local_traffic * dilution + heating) * washout
    pm2_5 += _jitter(city, site, t, "pm2_5", 1.0)
    pm10 = pm2_5 * 1.45 + 6 * local_traffic * dilution * washout
    pm10 += _jitter(city, site, t, "pm10", 1.5)
    no2 = 9.0 + 62 * local_traffic * dilution + _jitter(city, site, t, "no2", 2.0)
    sun = max(0.0, math.sin(math.pi * (hours - 6.0) / 14.0)) if 6 <= hours <= 20 else 0.0
    o3 = 38 + 35 * sun + 1.2 * (w.temperature - 10) - 0.45 * no2 + 4 * w.wind_speed / 3
    o3 += _jitter(city, site, t, "o3", 2.0)
    return {"pm2_5": pm2_5, "pm10": pm10, "no2": no2, "o3": o3}


def particulates(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """A citizen-science PM sensor (airRohr): PM2.5, PM10, and its own temperature/humidity."""
    air = air_quality(city, site, t, interval_s)
    w = weather(city, t)
    # low-cost optical sensors over-read in humid air
    humid = 1.0 + max(0.0, w.relative_humidity - 80) / 40
    return {
        "pm2_5": air["pm2_5"] * humid,
        "pm10": air["pm10"] * humid,
        "temperature": w.temperature + 0.8 + _jitter(city, site, t, "t", 0.2),
        "relative_humidity": w.relative_humidity - 3 + _jitter(city, site, t, "h", 1.0),
    }


def noise(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """A-weighted sound level: traffic-driven, quiet at night, louder near main roads."""
    hours, _, _ = _local(city, t)
    level = traffic(city, t) * (0.2 + 0.8 * site.exposure)
    people = activity(city, t) * 0.3
    night = 1.0 if (hours >= 23 or hours < 6) else 0.0
    db = 38 + 10 * math.log10(1 + 60 * (level + people)) - 2 * night
    return {"noise_level": db + _jitter(city, site, t, "laeq", 1.5)}


def traffic_counter(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """Vehicles counted in the last interval."""
    expected = site.capacity * traffic(city, t) * interval_s / HOUR
    count = expected + math.sqrt(max(expected, 1.0)) * gauss(
        city.seed, site.sensor_id, "veh", int(t.timestamp())
    )
    return {"vehicle_count": max(0.0, count)}


def parking(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """One parking space: taken (1) or free (0); busier in working and shopping hours."""
    slot_s = 40 * 60.0
    slot = math.floor((t.timestamp() + site.offset * slot_s) / slot_s)
    slot_start = datetime.fromtimestamp(slot * slot_s - site.offset * slot_s, tz=UTC)
    hours, weekday, _ = _local(city, slot_start)
    demand = 0.15 + 0.55 * _bump(hours, 13.0, 4.5) + 0.2 * activity(city, slot_start)
    demand += 0.15 * site.exposure + (0.2 if weekday >= 5 and site.exposure > 0.5 else 0)
    taken = uniform(city.seed, site.sensor_id, "slot", slot) < min(0.97, demand)
    return {"occupancy": 1.0 if taken else 0.0}


def weather_station(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """A full weather station: temperature, humidity, pressure, wind, rain in the interval."""
    w = weather(city, t)
    return {
        "temperature": w.temperature + _jitter(city, site, t, "t", 0.15),
        "relative_humidity": w.relative_humidity + _jitter(city, site, t, "h", 0.8),
        "pressure": w.pressure + _jitter(city, site, t, "p", 0.1),
        "wind_speed": max(0.0, w.wind_speed * (1 + 0.25 * gauss(city.seed, site.sensor_id, t))),
        "wind_direction": (w.wind_direction + 15 * gauss(city.seed, site.sensor_id, "d", t)) % 360,
        "precipitation": w.rain * interval_s / HOUR,
    }


def climate(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """A small climate sensor (LoRaWAN): temperature, humidity, pressure."""
    w = weather(city, t)
    return {
        "temperature": w.temperature + _jitter(city, site, t, "t", 0.3),
        "relative_humidity": w.relative_humidity + _jitter(city, site, t, "h", 1.5),
        "pressure": w.pressure + _jitter(city, site, t, "p", 0.2),
    }


def waste_bin(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """Fill level: rises through the day, emptied at 07:00 on the bin's collection day."""
    period_days = 3 if site.offset < 0.5 else 7
    local = t.astimezone(city.tz)
    day_index = (local.date() - EPOCH.date()).days
    phase = int(site.offset * 1000) % period_days
    last = day_index - ((day_index - phase) % period_days)
    emptied = datetime(local.year, local.month, local.day, 7, tzinfo=city.tz) - timedelta(
        days=day_index - last
    )
    if emptied > t:  # collection day, before the truck came: the previous collection
        emptied -= timedelta(days=period_days)
    days = (t - emptied).total_seconds() / DAY
    fill = 3 + site.capacity * days + 1.5 * gauss(city.seed, site.sensor_id, int(t.timestamp()))
    return {"fill_level": min(100.0, max(0.0, fill))}


def water_level(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """Water level (m): a base level plus the rain of the last day, draining away over hours."""
    base = 0.6 + 0.4 * site.offset + 0.05 * fractal(city.seed, "gw", t.timestamp(), 10 * DAY)
    response = 0.0
    for step in range(48):  # the last 24 h in half hours, recent rain weighing most
        past = t - timedelta(minutes=30 * step)
        response += rain(city, past) * 0.5 * math.exp(-step / 10.0)
    level = base + 0.04 * response * (0.5 + site.exposure)
    return {"water_level": level + _jitter(city, site, t, "wl", 0.004)}


def people_counter(city: City, site: Site, t: datetime, interval_s: float) -> dict[str, float]:
    """Passers-by counted in the last interval (personal data: dropped at ingest)."""
    expected = site.capacity * activity(city, t) * interval_s / HOUR
    spread = math.sqrt(max(expected, 1.0))
    count = expected + spread * gauss(city.seed, site.sensor_id, "ppl", int(t.timestamp()))
    return {"people_count": max(0.0, count)}


def battery_level(city: City, site: Site, t: datetime) -> float:
    """Battery charge (%): drains slowly; replaced when it nears 25 % (a sawtooth over months)."""
    drain_per_day = 0.25 + 0.35 * uniform(city.seed, site.sensor_id, "drain")
    days = (t - EPOCH).total_seconds() / DAY + 400 * site.offset
    return 100.0 - (days * drain_per_day) % 75.0


def _q(
    name: str, unit: str, decimals: int, low: float, high: float, spike: float, drift: float
) -> QuantityModel:
    return QuantityModel(name, unit, decimals, low, high, spike, drift)


KINDS: Mapping[str, SensorKind] = MappingProxyType(
    {
        k.name: k
        for k in (
            SensorKind(
                "air_quality",
                "air",
                "air",
                (
                    _q("pm2_5", "ug/m3", 1, 0, 1000, 700, 3.0),
                    _q("pm10", "ug/m3", 1, 0, 1000, 800, 4.0),
                    _q("no2", "ug/m3", 1, 0, 1000, 700, 5.0),
                    _q("o3", "ug/m3", 1, 0, 500, 400, 4.0),
                ),
                air_quality,
                battery=False,
                interval_s=300,
                description="PM2.5, PM10, NO2, O3 (reference-grade station)",
            ),
            SensorKind(
                "particulates",
                "air",
                "pm",
                (
                    _q("pm2_5", "ug/m3", 1, 0, 1000, 700, 3.0),
                    _q("pm10", "ug/m3", 1, 0, 1000, 800, 4.0),
                    _q("temperature", "Cel", 1, -40, 60, 25, 0.5),
                    _q("relative_humidity", "%", 1, 0, 100, 45, 2.0),
                ),
                particulates,
                battery=False,
                interval_s=150,
                description="citizen-science PM sensor (airRohr / Sensor.Community)",
            ),
            SensorKind(
                "noise",
                "noise",
                "noise",
                (_q("noise_level", "dB", 1, 20, 130, 60, 1.0),),
                noise,
                battery=False,
                interval_s=60,
                description="A-weighted sound level LAeq",
            ),
            SensorKind(
                "traffic",
                "traffic",
                "traffic",
                (_q("vehicle_count", "{count}", 0, 0, 100_000, 0, 0),),
                traffic_counter,
                battery=False,
                interval_s=300,
                description="vehicles counted per interval",
            ),
            SensorKind(
                "parking",
                "parking",
                "parking",
                (_q("occupancy", "1", 0, 0, 1, 0, 0),),
                parking,
                battery=True,
                interval_s=300,
                description="one parking space: taken 1, free 0",
            ),
            SensorKind(
                "weather",
                "weather",
                "weather",
                (
                    _q("temperature", "Cel", 1, -40, 60, 25, 0.5),
                    _q("relative_humidity", "%", 1, 0, 100, 45, 2.0),
                    _q("pressure", "hPa", 1, 870, 1085, 30, 1.0),
                    _q("wind_speed", "m/s", 1, 0, 60, 45, 0.3),
                    _q("wind_direction", "deg", 0, 0, 359, 0, 0),
                    _q("precipitation", "mm", 1, 0, 200, 0, 0),
                ),
                weather_station,
                battery=False,
                interval_s=300,
                description="weather station: temperature, humidity, pressure, wind, rain",
            ),
            SensorKind(
                "climate",
                "weather",
                "climate",
                (
                    _q("temperature", "Cel", 1, -40, 60, 25, 0.5),
                    _q("relative_humidity", "%", 1, 0, 100, 45, 2.0),
                    _q("pressure", "hPa", 1, 870, 1085, 30, 1.0),
                ),
                climate,
                battery=True,
                interval_s=600,
                description="small LoRaWAN climate sensor: temperature, humidity, pressure",
            ),
            SensorKind(
                "waste",
                "waste",
                "bin",
                (_q("fill_level", "%", 0, 0, 100, 0, 6.0),),
                waste_bin,
                battery=True,
                interval_s=900,
                description="waste-bin fill level; emptied on collection days",
            ),
            SensorKind(
                "water",
                "water",
                "water",
                (_q("water_level", "m", 3, 0, 20, 4, 0.05),),
                water_level,
                battery=True,
                interval_s=600,
                description="water level of a canal or river; rises after rain",
            ),
            SensorKind(
                "people",
                "people",
                "people",
                (_q("people_count", "{count}", 0, 0, 100_000, 0, 0),),
                people_counter,
                battery=True,
                interval_s=300,
                privacy="personal",
                description="passers-by per interval: personal data, dropped at ingest",
            ),
        )
    }
)
"""Every sensor kind the simulator knows, by the name scenario files use."""


def model_values(kind: SensorKind, city: City, site: Site, t: datetime) -> dict[str, float]:
    """The readings of one sensor at one moment, rounded and kept in range (battery included)."""
    raw = kind.values(city, site, t, kind.interval_s)
    out: dict[str, float] = {}
    for q in kind.quantities:
        out[q.quantity] = clamp_round(q, raw[q.quantity])
    if kind.battery:
        out[BATTERY.quantity] = clamp_round(BATTERY, battery_level(city, site, t))
    return out


def clamp_round(q: QuantityModel, value: float) -> float:
    """A value kept in the quantity's range and rounded to its decimals."""
    value = min(q.high, max(q.low, value))
    rounded = round(value, q.decimals)
    return float(int(rounded)) if q.decimals == 0 else rounded


def quantity_model(kind: SensorKind, name: str) -> QuantityModel:
    """The model of a quantity of ``kind``, battery included."""
    return BATTERY if name == BATTERY.quantity else kind.quantity(name)


def make_site(seed: int, sensor_id: str, kind: SensorKind) -> Site:
    """A sensor's place in the models, drawn from the seed (traffic exposure, capacity)."""
    exposure = uniform(seed, sensor_id, "exposure")
    spread = uniform(seed, sensor_id, "capacity")
    capacity = {
        "traffic": 400 + 1400 * spread,
        "people": 150 + 1500 * spread,
        "waste": 12 + 25 * spread,
    }.get(kind.name, 1.0)
    return Site(sensor_id, exposure, capacity, uniform(seed, sensor_id, "offset"))
