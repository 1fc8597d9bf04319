"""Fault injection with a ground truth: every fault sent is written down (deterministic).

Faults come in two shapes. *Episodes* change a device for a while: ``dropout`` (messages not
sent), ``stuck`` (values frozen), ``drift`` (a growing offset on one quantity), ``clock_skew``
(the device's clock is off), ``low_battery``. *Message faults* touch one message: ``spike``
(one value jumps), ``duplicate`` (sent twice), ``out_of_order`` (sent after the device's next
message), ``late`` (held back for a while), ``malformed`` (broken bytes). Each rate is the
probability per message that the fault starts.

Every fault becomes a :class:`FaultRecord` in the ground-truth log, with ``expect``: what the
platform should do about it given its quality rules (:class:`Expectations`), e.g.
``flag:spike``, ``flag:stuck``, ``flag:gap``, ``flag:future``, ``flag:late``, ``dedupe``,
``dead_letter:invalid_json``, ``alert:low_battery`` or ``undetectable``. Readings of personal
quantities (people counters) are written down too (``kind: privacy``): the ingestor must drop
them, and that is expected.

Incidents (the scenario's ``incidents``) last from their onset to the end of the run: a flat
battery, a silent, intermittent, stuck or garbage-sending sensor, each written down per report
it touches. Interventions (simulators/interventions.py) shift a treated group's true values
before any of this, with one line when they come into force.

Randomness comes from one ``random.Random`` per device, seeded from the scenario seed and the
device id, so a device's faults do not depend on how the fleet's messages interleave.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from simulators.formats import Message, Point, Wire, encode, malform, stamp
from simulators.interventions import InterventionPlan
from simulators.interventions import apply as apply_interventions
from simulators.models import City, model_values, quantity_model
from simulators.noise import uniform
from simulators.scenario import FLAT_BATTERY, Device, FaultRates, onset_moment
from urbanpulse.quantities import QUANTITIES


@dataclass(frozen=True)
class Expectations:
    """The platform's quality thresholds the ground truth's ``expect`` is computed against."""

    stuck_count: int = 10
    gap_factor: float = 3.0
    max_future_s: float = 300.0
    max_age_s: float = 86_400.0
    allowed_lateness_s: float = 600.0
    low_battery: float = 15.0
    # when a message observed at t reaches the platform: t in real time; earlier in the
    # accelerated and backfill modes, where event times lag the wall clock
    received: Callable[[datetime], datetime] | None = None

    def lag_s(self, observed: datetime) -> float:
        """Seconds between a message's event time and its arrival at the platform."""
        return (
            0.0 if self.received is None else (self.received(observed) - observed).total_seconds()
        )

    def for_skew(self, skew_s: float, observed: datetime) -> str:
        """What the platform's clock checks make of a device clock ``skew_s`` seconds off."""
        lag = self.lag_s(observed)
        if skew_s - lag > self.max_future_s:
            return "flag:future"
        if lag - skew_s > self.max_age_s:
            return "flag:too_old"
        return "undetectable (skew within the clock checks)"

    def for_delay(self, delay_s: float, observed: datetime) -> str:
        """What the platform makes of a message held back ``delay_s`` seconds."""
        if self.lag_s(observed) + delay_s > self.max_age_s:
            return "flag:too_old"
        if delay_s > self.allowed_lateness_s:
            return "flag:late"
        return "undetectable (within allowed lateness)"

    def for_gap(self, gap_s: float | None, interval_s: float) -> str:
        """Whether the gap check flags ``gap_s`` seconds of silence (None: no earlier report)."""
        if gap_s is not None and gap_s > self.gap_factor * interval_s:
            return "flag:gap"
        return "undetectable"


@dataclass(frozen=True)
class FaultRecord:
    """One line of the ground-truth log."""

    kind: str  # "fault" or "privacy"
    fault: str
    tenant: str
    device_id: str
    sensor_ids: tuple[str, ...]
    format: str
    topic: str
    observed_at: datetime  # the true event time of the message concerned
    expect: str
    quantity: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None  # the ingestor's id prefix of the message's readings

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (one line of the log)."""
        return {
            "kind": self.kind,
            "fault": self.fault,
            "tenant": self.tenant,
            "device_id": self.device_id,
            "sensor_ids": list(self.sensor_ids),
            "format": self.format,
            "topic": self.topic,
            "observed_at": stamp(self.observed_at),
            "quantity": self.quantity,
            "expect": self.expect,
            "message_id": self.message_id,
            "detail": self.detail,
        }


def ingest_message_id(topic: str, payload: bytes) -> str:
    """The id prefix the ingestor derives for a message's readings (topic + bytes)."""
    return hashlib.sha256(topic.encode() + b"\x00" + payload).hexdigest()[:20]


@dataclass(frozen=True)
class Outgoing:
    """A message due at ``due`` (simulated time), with the faults written down with it."""

    due: datetime
    message: Message | None  # None: nothing is sent (only ground truth to write)
    records: tuple[FaultRecord, ...] = ()


@dataclass
class _DeviceFaults:
    """The episodes running on one device (internal, mutable)."""

    rng: random.Random
    counter: int = 0
    previous: dict[str, float] | None = None
    last_sent: datetime | None = None
    stuck_left: int = 0
    stuck_values: dict[str, float] | None = None
    stuck_repeat: int = 1
    drift_left: int = 0
    drift_quantity: str = ""
    drift_start: datetime | None = None
    skew_left: int = 0
    skew_s: float = 0.0
    battery_left: int = 0
    battery_value: float = 0.0
    dropped: list[datetime] = field(default_factory=list)
    dropout_left: int = 0
    held: Outgoing | None = None
    first: datetime | None = None  # the device's first report of the run
    silenced: bool = False  # the silent incident has begun
    skipped: list[datetime] = field(default_factory=list)  # reports the intermittent one lost
    frozen: dict[str, float] | None = None  # the values the stuck incident repeats
    sent_values: dict[str, float] | None = None  # the values of the last message sent
    runs: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    # (sensor, quantity) -> (value, times in a row) of what the platform stored: stuck flags


class FaultInjector:
    """Turns a device's clean tick into outgoing messages, faults and ground truth."""

    def __init__(
        self,
        city: City,
        wire: Wire,
        rates: FaultRates,
        expectations: Expectations = Expectations(),
        interventions: Sequence[InterventionPlan] = (),
        run_start: datetime | None = None,
    ) -> None:
        self.city = city
        self.wire = wire
        self.rates = rates
        self.expect = expectations
        self.interventions = tuple(interventions)
        self._state: dict[str, _DeviceFaults] = {}
        # what an intervention's duration counts from: the run's start (default: its first tick)
        self._run_start: datetime | None = run_start
        self._announced: set[str] = set()

    def _of(self, device: Device) -> _DeviceFaults:
        state = self._state.get(device.device_id)
        if state is None:
            seed = int.from_bytes(
                hashlib.blake2b(
                    f"{self.city.seed}/{device.device_id}/faults".encode(), digest_size=8
                ).digest(),
                "big",
            )
            state = _DeviceFaults(rng=random.Random(seed))
            self._state[device.device_id] = state
        return state

    def _starts(self, state: _DeviceFaults, fault: str) -> bool:
        rate = float(getattr(self.rates, fault))
        # always draw, so one fault's rate does not shift the others' random sequence
        return state.rng.random() < rate

    def tick(self, device: Device, t: datetime) -> list[Outgoing]:
        """The messages the device sends for its reading at ``t`` (0, 1 or more)."""
        if self._run_start is None:
            self._run_start = t
        return self._announce(t) + self._tick(device, t)

    def _announce(self, t: datetime) -> list[Outgoing]:
        """A ground-truth line for each intervention that has come into force by ``t``."""
        assert self._run_start is not None
        out = []
        for plan in self.interventions:
            if plan.name in self._announced or not plan.in_force(t, self._run_start):
                continue
            self._announced.add(plan.name)
            start = onset_moment(plan.start, self._run_start)
            until = None if plan.until is None else onset_moment(plan.until, self._run_start)
            record = FaultRecord(
                kind="intervention",
                fault=plan.name,
                tenant=self.wire.tenant,
                device_id="",
                sensor_ids=plan.treated_sensors,
                format="",
                topic="",
                observed_at=start,
                expect=f"effect:{plan.change:+g}",
                quantity=plan.quantity,
                detail={
                    "change": plan.change,
                    "from": stamp(start),
                    "until": None if until is None else stamp(until),
                    "treated": sorted(plan.treated_sensors),
                    "control": sorted(plan.control_sensors),
                },
            )
            out.append(Outgoing(t, None, (record,)))
        return out

    def _tick(self, device: Device, t: datetime) -> list[Outgoing]:
        """One report of the device: its true values, then each fault in a fixed order.

        The order of the steps is the order of the device's random draws: keep it, or the
        same seed no longer gives the same run.
        """
        state = self._of(device)
        silence = self._silence(device, state, t)
        if silence is not None:
            return silence
        state.counter += 1
        values = self._true_values(device, t)
        lost = self._intermittent(device, state, t, values)
        if lost is not None:
            return lost
        draws = {name: self._starts(state, name) for name in _ORDER}
        if self._drops_out(state, t, values, starts=draws["dropout"]):
            return []
        values, labels, garbage = self._sent_values(device, state, t, values, draws)
        observed = self._skew(device, state, t, labels, starts=draws["clock_skew"])
        points = [Point(observed, name, value) for name, value in values.items()]
        message = replace(encode(self.wire, device, points, state.counter), observed_at=t)
        if draws["malformed"]:
            message, labels = _malformed(message, labels)
        labels += self._gap_labels(device, state, t)
        if message.dead_letter is None:  # what the platform stores: its stuck checks' input
            self._remember(state, message, garbage, labels)
        delay = self._late(state, t, labels, starts=draws["late"])
        built = replace(message, faults=tuple(label for label, *_ in labels))
        records = [self._record(device, built, t, *label) for label in labels]
        records += self._privacy(device, built, t)
        item = Outgoing(t + timedelta(seconds=delay), built, tuple(records))
        state.last_sent = t
        state.previous = values
        state.sent_values = values
        return self._send_order(device, state, item, t, draws)

    def _true_values(self, device: Device, t: datetime) -> dict[str, float]:
        """What the device measures at ``t``: the model's values, with interventions applied."""
        values = model_values(device.kind, self.city, device.site, t)
        if not device.carries_battery:
            values.pop("battery_level", None)
        assert self._run_start is not None
        return apply_interventions(self.interventions, device, t, values, self._run_start)

    def _drops_out(
        self, state: _DeviceFaults, t: datetime, values: dict[str, float], *, starts: bool
    ) -> bool:
        """Whether the device is silent at ``t``: a dropout runs for a few reports."""
        if state.dropout_left == 0 and starts:
            state.dropout_left = state.rng.randint(4, 10)
        if state.dropout_left == 0:
            return False
        state.dropout_left -= 1
        state.dropped.append(t)
        state.previous = values
        return True

    def _sent_values(
        self,
        device: Device,
        state: _DeviceFaults,
        t: datetime,
        values: dict[str, float],
        draws: dict[str, bool],
    ) -> tuple[dict[str, float], list[Label], frozenset[str]]:
        """The values sent, after value faults and incidents; their labels; garbage quantities."""
        values, labels = self._value_faults(device, state, t, values, draws)
        broken: list[Label] = []
        values, garbage = self._incident_values(device, state, t, values, broken)
        if broken:  # a stuck or garbage sensor's values replace what a value fault did to them
            labels = [label for label in labels if label[0] not in _VALUE_FAULTS] + broken
        return values, labels, garbage

    def _skew(
        self,
        device: Device,
        state: _DeviceFaults,
        t: datetime,
        labels: list[Label],
        *,
        starts: bool,
    ) -> datetime:
        """The time the device stamps on its report: off by the skew while a skew runs."""
        has_time = device.format != "sensorcommunity" or self.wire.timestamps
        if state.skew_left == 0 and starts and has_time:
            state.skew_left = state.rng.randint(10, 30)
            minutes = state.rng.choice((-1, 1)) * state.rng.uniform(10, 60)
            state.skew_s = round(minutes * 60)
        if state.skew_left == 0:
            return t
        state.skew_left -= 1
        expect = self.expect.for_skew(state.skew_s, t)
        labels.append(("clock_skew", None, {"skew_s": state.skew_s}, expect))
        return t + timedelta(seconds=state.skew_s)

    def _gap_labels(self, device: Device, state: _DeviceFaults, t: datetime) -> list[Label]:
        """The labels of the reports missed since the last message (dropout, intermittent)."""
        labels = []
        if state.dropped:
            labels.append(self._gap_label("dropout", state.dropped, state, device, t))
            state.dropped = []
        if state.skipped:
            labels.append(self._gap_label("intermittent", state.skipped, state, device, t))
            state.skipped = []
        return labels

    def _late(
        self, state: _DeviceFaults, t: datetime, labels: list[Label], *, starts: bool
    ) -> float:
        """Seconds the message is held back (0: sent on time), labelled when it is."""
        if not starts:
            return 0.0
        delay = float(state.rng.randint(15 * 60, 3 * 3600))
        labels.append(("late", None, {"delay_s": delay}, self.expect.for_delay(delay, t)))
        return delay

    def _send_order(
        self,
        device: Device,
        state: _DeviceFaults,
        item: Outgoing,
        t: datetime,
        draws: dict[str, bool],
    ) -> list[Outgoing]:
        """What goes out now: the message, unless held back to go after the device's next one
        (out of order); a message held before, right after it; and a duplicate."""
        assert item.message is not None
        built, on_time = item.message, item.due == t
        out: list[Outgoing] = []
        held = state.held
        if draws["out_of_order"] and on_time and held is None:
            record = self._record(
                device, built, t, "out_of_order", None, {}, "undetectable (stored, not compared)"
            )
            state.held = replace(
                item,
                message=replace(built, faults=(*built.faults, "out_of_order")),
                records=(*item.records, record),
            )
        else:
            out.append(item)
            if held is not None and on_time:  # the held message goes right after this one
                out.append(replace(held, due=t))
                state.held = None
        if draws["duplicate"] and state.held is None:
            record = self._record(device, built, t, "duplicate", None, {}, "dedupe")
            copy = replace(built, faults=(*built.faults, "duplicate"))
            out.append(Outgoing(item.due, copy, (record,)))
        return out

    def _gap_label(
        self, fault: str, missed: list[datetime], state: _DeviceFaults, device: Device, t: datetime
    ) -> Label:
        """The label of the first message after missed reports: a gap flag when it is long."""
        gap_s = (t - state.last_sent).total_seconds() if state.last_sent else None
        expect = self.expect.for_gap(gap_s, device.interval_s)
        detail = {
            "missing": len(missed),
            "first_missing": stamp(missed[0]),
            "last_missing": stamp(missed[-1]),
            "gap_s": gap_s,
        }
        return (fault, None, detail, expect)

    def _intermittent(
        self, device: Device, state: _DeviceFaults, t: datetime, values: dict[str, float]
    ) -> list[Outgoing] | None:
        """Nothing sent, with a ground-truth line, when the intermittent incident loses ``t``.

        Each report is lost or not by a number hashed from the seed, the device and ``t``, so
        the losses do not shift any other random draw.
        """
        onset = device.intermittent_from
        if device.intermittent_rate <= 0 or state.first is None:
            return None
        if onset is not None and t < onset_moment(onset, state.first):
            return None
        draw = uniform(self.city.seed, device.device_id, "intermittent", t.timestamp())
        if draw >= device.intermittent_rate:
            return None
        state.skipped.append(t)
        state.previous = values
        record = FaultRecord(
            kind="fault",
            fault="intermittent",
            tenant=self.wire.tenant,
            device_id=device.device_id,
            sensor_ids=device.platform_sensor_ids(),
            format=device.format,
            topic="",
            observed_at=t,
            expect="absent",
            detail={"rate": device.intermittent_rate},
        )
        return [Outgoing(t, None, (record,))]

    def _incident_values(
        self,
        device: Device,
        state: _DeviceFaults,
        t: datetime,
        values: dict[str, float],
        labels: list[Label],
    ) -> tuple[dict[str, float], frozenset[str]]:
        """Values of the stuck and garbage incidents, labelled; and the garbage quantities."""
        assert state.first is not None
        main = [q.quantity for q in device.kind.quantities]
        onset = device.stuck_from
        if onset is not None and t >= onset_moment(onset, state.first):
            if state.frozen is None:  # the last values sent (this report's, if it is the first)
                sent = state.sent_values or values
                state.frozen = {q: sent[q] for q in main}
            values = values | state.frozen
            # the expectation is added once the message is encoded (see _remember)
            labels.append(("stuck", None, {"incident": True, "sent": state.frozen}, ""))
        onset = device.garbage_from
        if onset is None or t < onset_moment(onset, state.first):
            return values, frozenset()
        sent = {q: v for q in main if (v := beyond_range(device, q)) is not None}
        labels.append(("garbage", None, {"sent": sent}, "dead_letter:out_of_range"))
        return values | sent, frozenset(sent)

    def _remember(
        self, state: _DeviceFaults, message: Message, garbage: frozenset[str], labels: list[Label]
    ) -> None:
        """Count repeated values as the platform will (stored readings, per series), and set
        the stuck incident's expectation from those counts."""
        repeats: dict[str, int] = {}
        for reading in message.readings:
            if reading.quantity in garbage:
                continue  # refused as out of range: the platform never compares it
            key = (reading.sensor_id, reading.quantity)
            last = state.runs.get(key)
            count = last[1] + 1 if last is not None and last[0] == reading.value else 1
            state.runs[key] = (reading.value, count)
            repeats[reading.quantity] = count
        for index, (fault, quantity, detail, _) in enumerate(labels):
            if fault == "stuck" and detail.get("incident"):
                frozen = sorted(detail["sent"])
                flagged = [q for q in frozen if repeats.get(q, 0) >= self.expect.stuck_count]
                detail = detail | {"repeat": {q: repeats.get(q, 0) for q in frozen}}
                detail["flagged"] = flagged
                expect = (
                    "flag:stuck" if flagged else f"none yet (repeat < {self.expect.stuck_count})"
                )
                labels[index] = (fault, quantity, detail, expect)

    def _silence(self, device: Device, state: _DeviceFaults, t: datetime) -> list[Outgoing] | None:
        """None while the device reports; once its silent incident has begun, what it sends.

        That is nothing, with a ground-truth line the first time. A silent device draws no
        more faults.
        """
        if state.first is None:
            state.first = t
        onset = device.silent_from
        if onset is None or t < onset_moment(onset, state.first):
            return None
        if state.silenced:
            return []
        state.silenced = True
        record = FaultRecord(
            kind="fault",
            fault="silent",
            tenant=self.wire.tenant,
            device_id=device.device_id,
            sensor_ids=device.platform_sensor_ids(),
            format=device.format,
            topic="",
            observed_at=t,
            expect="alert:stale",
            detail={"from": stamp(onset_moment(onset, state.first))},
        )
        return [Outgoing(t, None, (record,))]

    def flush(self) -> list[Outgoing]:
        """What is still held back or unwritten when the run ends."""
        out = []
        for device_id, state in self._state.items():
            held, state.held = state.held, None
            if held is not None and held.message is not None:
                # no later message came: it goes out last, in order after all, so unlabelled
                faults = tuple(f for f in held.message.faults if f != "out_of_order")
                records = tuple(r for r in held.records if r.fault != "out_of_order")
                message = replace(held.message, faults=faults)
                out.append(replace(held, message=message, records=records))
            if state.dropped:
                record = FaultRecord(
                    kind="fault",
                    fault="dropout",
                    tenant=self.wire.tenant,
                    device_id=device_id,
                    sensor_ids=(),
                    format="",
                    topic="",
                    observed_at=state.dropped[-1],
                    expect="absent (the run ended during the outage)",
                    detail={"missing": len(state.dropped)},
                )
                out.append(Outgoing(state.dropped[-1], None, (record,)))
                state.dropped = []
        return out

    def _value_faults(
        self,
        device: Device,
        state: _DeviceFaults,
        t: datetime,
        values: dict[str, float],
        draws: dict[str, bool],
    ) -> tuple[dict[str, float], list[Label]]:
        """The values after the stuck, drift, spike and battery faults, with their labels."""
        labels: list[Label] = []
        values = dict(values)
        stuck_now = self._stuck(device, state, values, labels, starts=draws["stuck"])
        self._drift(device, state, t, values, labels, starts=draws["drift"], stuck=stuck_now)
        if not stuck_now:
            self._spike(device, state, values, labels, starts=draws["spike"])
        self._battery(device, state, values, labels, starts=draws["low_battery"])
        return values, labels

    def _stuck(
        self,
        device: Device,
        state: _DeviceFaults,
        values: dict[str, float],
        labels: list[Label],
        *,
        starts: bool,
    ) -> bool:
        """Whether the sensor repeats its last values now (they replace ``values``)."""
        main = [q.quantity for q in device.kind.quantities]
        if state.stuck_left == 0 and starts and state.previous is not None:
            state.stuck_left = state.rng.randint(12, 20)
            state.stuck_values = {q: state.previous[q] for q in main}
            state.stuck_repeat = 1
        if state.stuck_left == 0 or state.stuck_values is None:
            return False
        state.stuck_left -= 1
        state.stuck_repeat += 1
        frozen = {q: values[q] for q in main}
        values.update(state.stuck_values)
        expect = (
            "flag:stuck"
            if state.stuck_repeat >= self.expect.stuck_count
            else f"none yet (repeat {state.stuck_repeat} < {self.expect.stuck_count})"
        )
        detail = {"repeat": state.stuck_repeat, "true": frozen, "sent": state.stuck_values}
        labels.append(("stuck", None, detail, expect))
        return True

    def _drift(
        self,
        device: Device,
        state: _DeviceFaults,
        t: datetime,
        values: dict[str, float],
        labels: list[Label],
        *,
        starts: bool,
        stuck: bool,
    ) -> None:
        """A growing offset on one quantity, for a while (not while the sensor is stuck)."""
        main = [q.quantity for q in device.kind.quantities]
        drifting = [q for q in main if quantity_model(device.kind, q).drift_per_day > 0]
        if state.drift_left == 0 and starts and drifting:
            state.drift_left = state.rng.randint(30, 120)
            state.drift_quantity = state.rng.choice(drifting)
            state.drift_start = t
        if state.drift_left == 0 or state.drift_start is None or stuck:
            return
        state.drift_left -= 1
        q = quantity_model(device.kind, state.drift_quantity)
        hours = (t - state.drift_start).total_seconds() / 3600
        offset = round(q.drift_per_day * hours, 3)  # a day's drift per hour: visible in a demo
        true = values[q.quantity]
        values[q.quantity] = _clamp(q.quantity, device, true + offset)
        detail = {"true": true, "sent": values[q.quantity], "offset": offset}
        labels.append(("drift", q.quantity, detail, "undetectable (no drift check yet)"))

    def _spike(
        self,
        device: Device,
        state: _DeviceFaults,
        values: dict[str, float],
        labels: list[Label],
        *,
        starts: bool,
    ) -> None:
        """One value jumps, away from the range edge."""
        main = [q.quantity for q in device.kind.quantities]
        spiky = [q for q in main if quantity_model(device.kind, q).spike > 0]
        if not (starts and spiky):
            return
        name = state.rng.choice(spiky)
        q = quantity_model(device.kind, name)
        true = values[name]
        sent = true + q.spike if true + q.spike <= q.high else true - q.spike
        values[name] = _clamp(name, device, sent)
        labels.append(("spike", name, {"true": true, "sent": values[name]}, "flag:spike"))

    def _battery(
        self,
        device: Device,
        state: _DeviceFaults,
        values: dict[str, float],
        labels: list[Label],
        *,
        starts: bool,
    ) -> None:
        """A flat battery (an incident, the whole run), or else a low-battery episode."""
        if "battery_level" not in values:
            return
        true = values["battery_level"]
        if device.flat_battery:
            values["battery_level"] = FLAT_BATTERY
            expect = (
                "alert:low_battery" if self.expect.low_battery > FLAT_BATTERY else "undetectable"
            )
            detail = {"true": true, "sent": FLAT_BATTERY}
            labels.append(("flat_battery", "battery_level", detail, expect))
            return
        if state.battery_left == 0 and starts:
            state.battery_left = state.rng.randint(20, 40)
            state.battery_value = float(state.rng.randint(4, 12))
        if state.battery_left == 0:
            return
        state.battery_left -= 1
        state.battery_value = max(1.0, state.battery_value - state.rng.choice((0, 0, 1)))
        values["battery_level"] = state.battery_value
        expect = (
            "alert:low_battery" if state.battery_value < self.expect.low_battery else "undetectable"
        )
        detail = {"true": true, "sent": state.battery_value}
        labels.append(("low_battery", "battery_level", detail, expect))

    def _record(
        self,
        device: Device,
        message: Message,
        t: datetime,
        fault: str,
        quantity: str | None,
        detail: dict[str, Any],
        expect: str,
    ) -> FaultRecord:
        no_time = device.format == "sensorcommunity" and not self.wire.timestamps
        if no_time and fault in ("late", "out_of_order"):
            expect = "undetectable (the format carries no time)"
        return FaultRecord(
            kind="fault",
            fault=fault,
            tenant=self.wire.tenant,
            device_id=device.device_id,
            sensor_ids=device.platform_sensor_ids(),
            format=device.format,
            topic=message.topic,
            observed_at=t,
            expect=expect,
            quantity=quantity,
            detail=detail,
            message_id=ingest_message_id(message.topic, message.payload),
        )

    def _privacy(self, device: Device, message: Message, t: datetime) -> list[FaultRecord]:
        if not message.personal or message.dead_letter not in (None, "personal_only"):
            return []
        expect = "dead_letter:personal_only" if message.dead_letter else "dropped_at_ingest"
        return [
            FaultRecord(
                kind="privacy",
                fault="personal",
                tenant=self.wire.tenant,
                device_id=device.device_id,
                sensor_ids=(device.sensor_id,),
                format=device.format,
                topic=message.topic,
                observed_at=t,
                expect=expect,
                quantity=r.quantity,
                detail={"value": r.value},
                message_id=ingest_message_id(message.topic, message.payload),
            )
            for r in message.personal
        ]


Label = tuple[str, str | None, dict[str, Any], str]  # fault, quantity, detail, expect
_VALUE_FAULTS = frozenset({"stuck", "spike", "drift"})  # faults that change main values
_ORDER = (
    "dropout",
    "stuck",
    "spike",
    "drift",
    "duplicate",
    "out_of_order",
    "late",
    "clock_skew",
    "malformed",
    "low_battery",
)


def beyond_range(device: Device, quantity: str) -> float | None:
    """A value of the quantity the platform must refuse as physically impossible (None: the
    platform has no range for it): a tenth of its range above the top, so that every payload
    format can still carry it (Cayenne LPP's humidity tops out at 127.5 %)."""
    known = QUANTITIES.get(quantity)
    if known is None or known.range is None:
        return None
    low, high = known.range.low, known.range.high
    model = quantity_model(device.kind, quantity)
    return round(high + max(1.0, (high - low) / 10), model.decimals)


def _malformed(message: Message, labels: list[Label]) -> tuple[Message, list[Label]]:
    """The message broken in transit: every fault on it now ends as its dead letter."""
    message = malform(message)
    reason = f"dead_letter:{message.dead_letter}"
    labels = [(f, q, d, f"{reason} (malformed)") for f, q, d, _ in labels]
    labels.append(("malformed", None, {}, reason))
    return message, labels


def _clamp(quantity: str, device: Device, value: float) -> float:
    q = quantity_model(device.kind, quantity)
    return round(min(q.high, max(q.low, value)), q.decimals)
