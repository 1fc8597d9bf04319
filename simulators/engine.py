"""The simulated fleet as one time-ordered stream of outgoing messages (pure, deterministic).

Each device reports on its own fixed grid: every ``interval`` seconds at a phase drawn from
the seed, aligned to the epoch, so overlapping runs (a backfill, then a live run) agree on
times and values. :func:`fleet_stream` merges the devices' ticks in event time, passes each
through the :class:`~simulators.faults.FaultInjector`, and re-orders what it returns by send
time (late messages go out later, out-of-order ones after their successor).

Modes only choose the simulated time window and how send times map to the wall clock
(:func:`plan`); the publisher does the waiting. :func:`load_stream` is the load-test stream:
native JSON messages of ``readings_per_message`` readings, for a target message rate.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from simulators.faults import FaultInjector, Outgoing
from simulators.formats import Point, Wire, encode_json
from simulators.models import City, model_values
from simulators.noise import uniform
from simulators.scenario import Device

Mode = Literal["realtime", "accelerated", "backfill", "load"]
MODES: tuple[Mode, ...] = ("realtime", "accelerated", "backfill", "load")


def first_tick(device: Device, seed: int, start: datetime) -> datetime:
    """The device's first reporting time at or after ``start`` on its own grid."""
    interval = device.interval_s
    phase = math.floor(uniform(seed, device.device_id, "phase") * interval)
    at = start.timestamp()
    k = math.ceil((at - phase) / interval)
    return datetime.fromtimestamp(k * interval + phase, tz=start.tzinfo)


def ticks(
    fleet: Iterable[Device], seed: int, start: datetime, end: datetime | None
) -> Iterator[tuple[datetime, Device]]:
    """Every device's reporting times in ``[start, end)``, merged in time order."""
    devices = list(fleet)
    heap = [(first_tick(d, seed, start), i) for i, d in enumerate(devices)]
    heapq.heapify(heap)
    while heap:
        at, index = heapq.heappop(heap)
        if end is not None and at >= end:
            return
        device = devices[index]
        yield at, device
        heapq.heappush(heap, (at + timedelta(seconds=device.interval_s), index))


def fleet_stream(
    fleet: Iterable[Device],
    injector: FaultInjector,
    start: datetime,
    end: datetime | None,
) -> Iterator[Outgoing]:
    """Every outgoing message of the fleet in ``[start, end)``, in send order."""
    pending: list[tuple[datetime, int, Outgoing]] = []
    sequence = itertools.count()
    for at, device in ticks(fleet, injector.city.seed, start, end):
        for item in injector.tick(device, at):
            heapq.heappush(pending, (item.due, next(sequence), item))
        while pending and pending[0][0] <= at:
            yield heapq.heappop(pending)[2]
    for item in injector.flush():
        heapq.heappush(pending, (item.due, next(sequence), item))
    while pending:
        yield heapq.heappop(pending)[2]


@dataclass(frozen=True)
class Plan:
    """When a run's simulated time starts and ends, and how fast it runs against the wall."""

    start: datetime
    end: datetime | None
    speed: float | None  # simulated seconds per wall second; None: as fast as possible


def plan(mode: Mode, now: datetime, duration_s: float | None, speed: float) -> Plan:
    """The simulated window of a mode.

    * realtime: from now, for ``duration_s`` or for ever, at the wall clock's pace;
    * accelerated: ``duration_s`` of simulated time at ``speed`` x, ending when the run does,
      so event times are real past times and the last ones are (about) now;
    * backfill: the ``duration_s`` before now, as fast as the broker takes it.
    """
    if mode == "realtime":
        end = None if duration_s is None else now + timedelta(seconds=duration_s)
        return Plan(now, end, 1.0)
    if duration_s is None:
        raise ValueError(f"the {mode} mode needs a duration")
    if mode == "accelerated":
        wall = duration_s / speed
        start = now - timedelta(seconds=duration_s - wall)
        return Plan(start.replace(microsecond=0), start + timedelta(seconds=duration_s), speed)
    if mode == "backfill":
        return Plan((now - timedelta(seconds=duration_s)).replace(microsecond=0), now, None)
    raise ValueError(f"no simulated window for mode {mode!r}")


def load_stream(
    fleet: list[Device],
    city: City,
    wire: Wire,
    readings_per_message: int,
    start: datetime,
    rate: float,
) -> Iterator[Outgoing]:
    """Endless native JSON messages of ``readings_per_message`` readings, round the fleet.

    Message ``k`` is due at ``start + k / rate`` and observed then; its readings cycle through
    the device's quantities, one microsecond apart, so every reading is a point of its own.
    Reading ids are set (``{device}-{k}-{i}``) so a reading can be traced back to its message.
    Devices of personal kinds (people counters) are left out: ingest would drop their readings.
    """
    devices = [d for d in fleet if d.kind.privacy != "personal"]
    for k in itertools.count():
        device = devices[k % len(devices)]
        at = start + timedelta(seconds=k / rate)
        values = model_values(device.kind, city, device.site, at.replace(microsecond=0))
        names = list(values)
        points = [
            Point(
                at + timedelta(microseconds=i), names[i % len(names)], values[names[i % len(names)]]
            )
            for i in range(readings_per_message)
        ]
        yield Outgoing(at, encode_json(wire, device, points, k, ids=True))
