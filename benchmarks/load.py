"""The readings a throughput run publishes, and the check that each was stored exactly once (pure).

Message ``m`` goes to sensor ``m % sensors`` and carries that sensor's next ``per_message``
readings ("rounds"), in the native JSON of the peer kit (``/work/shared/bench/gen_lines.py``):
epoch-second time, temperature, no id. Round ``r`` of every sensor is observed at
``anchor_us + r * interval_us``, and its value drifts by 0.7 °C a round (no spike, never
stuck), so every reading is a distinct InfluxDB point and which were published follows from
the number of messages published alone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LOAD_PREFIX = "s-"


def epoch_text(t_us: int) -> str:
    """Microseconds since the epoch as exact decimal epoch seconds (a JSON number)."""
    return f"{t_us // 1_000_000}.{t_us % 1_000_000:06d}"


def reading_json(t_us: int, value: float) -> str:
    """One native-JSON temperature reading."""
    return _reading_text(epoch_text(t_us), f"{value:.1f}")


def _reading_text(time: str, value: str) -> str:
    return f'{{"time":{time},"quantity":"temperature","value":{value},"unit":"Cel"}}'


# LoadShape.value's texts: it takes one of 100 values (so the load builds no float per reading).
_VALUE_TEXTS = tuple(f"{round(15 + i / 10, 1):.1f}" for i in range(100))


@dataclass(frozen=True)
class LoadShape:
    """Who publishes what: tenant, sensors, readings per message, event times."""

    tenant: str
    sensors: int
    per_message: int
    interval_us: int
    anchor_us: int

    def sensor_id(self, k: int) -> str:
        """The id of load sensor ``k``."""
        return f"{LOAD_PREFIX}{k:05d}"

    def time_us(self, r: int) -> int:
        """Event time of round ``r`` (of every sensor)."""
        return self.anchor_us + r * self.interval_us

    def value(self, k: int, r: int) -> float:
        """The value of round ``r`` of load sensor ``k`` (as published: one decimal)."""
        return round(15 + (r * 7 + k) % 100 / 10, 1)

    def line(self, m: int) -> bytes:
        """Message ``m`` as a ``topic<TAB>payload`` line for the publisher."""
        return self._line(m, {})

    def lines(self, start: int, stop: int) -> bytes:
        """Messages ``start`` to ``stop - 1``, one line each.

        The benchmark's own CPU counts in the machine's figure, so the text of a round's time
        is built once for all sensors (the messages of one call share a few rounds), and the
        values come from a table."""
        times: dict[int, str] = {}
        return b"".join(self._line(m, times) for m in range(start, stop))

    def _line(self, m: int, times: dict[int, str]) -> bytes:
        k, block = m % self.sensors, m // self.sensors
        first = block * self.per_message
        items = []
        for r in range(first, first + self.per_message):
            time = times.get(r)
            if time is None:
                time = times[r] = epoch_text(self.time_us(r))
            items.append(_reading_text(time, _VALUE_TEXTS[(r * 7 + k) % 100]))
        body = items[0] if self.per_message == 1 else '{"readings":[' + ",".join(items) + "]}"
        return f"urbanpulse/{self.tenant}/{self.sensor_id(k)}/json\t{body}\n".encode()

    def expected(self, messages: int) -> dict[str, set[int]]:
        """Event times (µs) per sensor of the readings in the first ``messages`` messages."""
        return {s: set(points) for s, points in self.expected_values(messages).items()}

    def expected_values(self, messages: int) -> dict[str, dict[int, float]]:
        """Event time (µs) → value, per sensor, of the readings in the first ``messages``."""
        out = {}
        for k in range(min(messages, self.sensors)):
            blocks = (messages - k + self.sensors - 1) // self.sensors
            rounds = blocks * self.per_message
            out[self.sensor_id(k)] = {self.time_us(r): self.value(k, r) for r in range(rounds)}
        return out


@dataclass(frozen=True)
class Tally:
    """How the points in InfluxDB compare with the readings published.

    ``lost``: published, not stored. ``duplicates``: points beyond the published set — a
    time that was never published for that sensor, a sensor that never published, or one
    observation stored in two series (same sensor and time, different tags).
    """

    published: int
    stored: int
    lost: int
    duplicates: int
    lost_by_sensor: Mapping[str, int]
    duplicates_by_sensor: Mapping[str, int]


def tally(expected: Mapping[str, set[int]], stored: Mapping[str, Iterable[int]]) -> Tally:
    """Compare the points found (sensor → their times, repeats kept) with the published set."""
    lost: dict[str, int] = {}
    duplicates: dict[str, int] = {}
    stored_total = 0
    for sensor in expected.keys() | stored.keys():
        want = expected.get(sensor, set())
        have = Counter(stored.get(sensor, ()))
        stored_total += sum(have.values())
        missing = len(want - have.keys())
        extra = sum(n if t not in want else n - 1 for t, n in have.items())
        if missing:
            lost[sensor] = missing
        if extra:
            duplicates[sensor] = extra
    return Tally(
        published=sum(len(v) for v in expected.values()),
        stored=stored_total,
        lost=sum(lost.values()),
        duplicates=sum(duplicates.values()),
        lost_by_sensor=lost,
        duplicates_by_sensor=duplicates,
    )


def altered(
    expected: Mapping[str, Mapping[int, float]], stored: Mapping[str, Iterable[tuple[int, float]]]
) -> dict[str, int]:
    """Per sensor, the published readings stored more than once or with another value.

    InfluxDB keeps one point per series and time, so a repeat overwrites rather than adds:
    a stored copy count other than one shows up only as one observation in two series
    (different tags), and a redelivery that changed anything shows up as another value.
    """
    out: dict[str, int] = {}
    for sensor, want in expected.items():
        copies: dict[int, list[float]] = {}
        for t, value in stored.get(sensor, ()):
            copies.setdefault(t, []).append(value)
        bad = sum(
            1
            for t, values in copies.items()
            if t in want and (len(values) != 1 or not math.isclose(values[0], want[t]))
        )
        if bad:
            out[sensor] = bad
    return out
