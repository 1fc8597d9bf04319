"""A handful of simulated sensors of a small town, as native JSON messages (pure).

Each sensor reports its quantities as one batch message on
``urbanpulse/{tenant}/{sensor_id}/json``. Values follow a daily cycle plus seeded noise, so the
same seed and start time always give the same messages.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class QuantitySpec:
    """How one quantity of a simulated sensor behaves over a day."""

    quantity: str
    unit: str
    mean: float
    daily_amplitude: float
    noise: float
    low: float
    high: float


@dataclass(frozen=True)
class SimSensor:
    """A simulated sensor at a fixed place."""

    sensor_id: str
    lat: float
    lon: float
    quantities: tuple[QuantitySpec, ...]


WEATHER = (
    QuantitySpec("temperature", "Cel", 8.0, 5.0, 0.3, -40, 60),
    QuantitySpec("relative_humidity", "%", 75.0, 12.0, 1.5, 0, 100),
)
AIR = (
    QuantitySpec("pm2_5", "ug/m3", 12.0, 6.0, 2.0, 0, 1000),
    QuantitySpec("pm10", "ug/m3", 20.0, 8.0, 3.0, 0, 1000),
)
NOISE = (QuantitySpec("noise_level", "dB", 55.0, 10.0, 3.0, 20, 130),)

KINDS = {"weather": WEATHER, "air": AIR, "noise": NOISE}


@dataclass(frozen=True)
class Message:
    """One MQTT message to publish, and the readings it carries (for tests to compare)."""

    topic: str
    payload: bytes
    readings: tuple[dict[str, object], ...]


def make_town(
    sensors: int, centre: tuple[float, float] = (52.09, 5.12), seed: int = 1
) -> list[SimSensor]:
    """``sensors`` sensors spread around ``centre``, cycling through the kinds."""
    rng = random.Random(seed)
    kinds = list(KINDS)
    town = []
    for i in range(sensors):
        kind = kinds[i % len(kinds)]
        lat = round(centre[0] + rng.uniform(-0.02, 0.02), 6)
        lon = round(centre[1] + rng.uniform(-0.03, 0.03), 6)
        town.append(SimSensor(f"{kind}-{i + 1:03d}", lat, lon, KINDS[kind]))
    return town


def value_at(spec: QuantitySpec, moment: datetime, rng: random.Random) -> float:
    """A plausible value: daily cycle peaking mid-afternoon, plus noise, clipped to the range."""
    hours = moment.hour + moment.minute / 60 + moment.second / 3600
    cycle = math.sin((hours - 9) / 24 * 2 * math.pi)
    value = spec.mean + spec.daily_amplitude * cycle + rng.gauss(0, spec.noise)
    return round(min(max(value, spec.low), spec.high), 2)


def messages(
    tenant: str,
    town: list[SimSensor],
    start: datetime,
    interval: timedelta,
    rounds: int | None,
    seed: int = 1,
) -> Iterator[tuple[datetime, Message]]:
    """Every sensor's message for each round, with the event time it is due at."""
    rng = random.Random(seed)
    n = 0
    while rounds is None or n < rounds:
        moment = start + n * interval
        for sensor in town:
            yield moment, message(tenant, sensor, moment, rng)
        n += 1


def message(tenant: str, sensor: SimSensor, moment: datetime, rng: random.Random) -> Message:
    """The native JSON batch of one sensor at one moment."""
    stamp = moment.isoformat().replace("+00:00", "Z")
    readings = tuple(
        {
            "time": stamp,
            "quantity": q.quantity,
            "value": value_at(q, moment, rng),
            "unit": q.unit,
            "lat": sensor.lat,
            "lon": sensor.lon,
        }
        for q in sensor.quantities
    )
    payload = json.dumps({"readings": list(readings)}, separators=(",", ":")).encode()
    return Message(f"urbanpulse/{tenant}/{sensor.sensor_id}/json", payload, readings)
