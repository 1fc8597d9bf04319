"""What the worker remembers per sensor and per district, and its snapshot encoding (pure).

States live in memory as mutable ``msgspec`` structs, changed in place by
``streams.pipeline``; their size is bounded whatever a sensor's history (docs/streams.md,
"State"). A sensor's :class:`SensorState` holds one :class:`Series` per (quantity, probe):
the sequence-check memory, the watermark, the event times remembered for duplicates (at most
``dedupe_max_times``, newest kept), the open windows' running aggregates and the open alert
episodes. A district's :class:`DistrictState` holds, per quantity and window, the latest
aggregate of each member sensor (:class:`SensorWindow` is what a sensor forwards), one state
per district quantity and window size, so a state grows with the district's sensors and not
with its quantities or window sizes.

Snapshots encode a state as MessagePack (:func:`encode_sensor`, :func:`encode_district`). A
sensor state saved by the previous worker (pydantic JSON, members per window) is converted
when read (:func:`decode_sensor`), so an upgrade keeps open windows and duplicate checks. The
previous worker's district states (one row per district, keyed tenant/district) are not read:
their district windows start again from the sensors' next forwarded aggregates
(docs/streams.md, "Upgrading").
"""

from __future__ import annotations

import json
import math
import sys
from array import array
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from streams.alerts import Episode
from streams.quality import SeriesMemory
from streams.windows import Doubles, Window, WindowSet, parse_window

PROBE_SEPARATOR = "#"  # never in a sensor id (urbanpulse.model.ID_PATTERN) nor in a quantity


def series_key(quantity: str, probe: str | None) -> str:
    """The key of a series within its sensor or district: quantity, and probe when set."""
    return quantity if probe is None else f"{quantity}{PROBE_SEPARATOR}{probe}"


if TYPE_CHECKING:
    Times = array[int]
else:  # array is not subscriptable at run time, where msgspec reads the annotation
    Times = array


def _times() -> Times:
    return array("q")


class Series(msgspec.Struct, array_like=True, gc=False):
    """One series of a sensor: a quantity, or one probe of it."""

    quantity: str
    probe: str | None
    unit: str
    memory: SeriesMemory | None = None  # the previous reading, for spike/stuck/gap
    mark_us: int | None = None  # watermark: the newest event time aggregated
    floor_us: int | None = None  # event times below this were forgotten (the cap)
    # The event times remembered, sorted (streams.eventtimes): offsets from base_us, or
    # µs since the epoch when base_us is None. Those below floor_us are forgotten, and dropped
    # from here an eighth of the cap at a time (streams.pipeline._remember).
    times: Times = msgspec.field(default_factory=_times)
    windows: list[WindowSet] = msgspec.field(default_factory=list)  # one per window size
    episodes: dict[str, Episode] | None = None  # rule key → open episode
    base_us: int | None = None  # last: older snapshots lack it


class SensorState(msgspec.Struct, array_like=True, gc=False):
    """Everything the worker remembers about one sensor (keyed like Kafka: tenant/sensor)."""

    partition: int = 0  # the readings partition it belongs to (and its changelog's)
    tenant: str = ""
    sensor_id: str = ""
    interval_s: float | None = None
    last_received_us: int | None = None
    stale_since_us: int | None = None
    series: dict[str, Series] = msgspec.field(default_factory=dict)


class SensorWindow(msgspec.Struct, array_like=True, gc=False):
    """A sensor window's current aggregate, forwarded to its district."""

    quantity: str
    unit: str
    window: str  # its size's name, e.g. 15m
    sensor_id: str
    probe: str | None
    mark_us: int  # the sensor series' watermark: how far that sensor has got
    aggregate: Window


class DistrictRecord(msgspec.Struct, array_like=True):
    """One record of the district topic: a batch's sensor windows of one district."""

    tenant: str
    district: str
    windows: list[SensorWindow]


def _doubles() -> Doubles:
    return array("d")


class DistrictWindow(msgspec.Struct, array_like=True, gc=False):
    """One district window: its aggregate, and the part of each member that can still change.

    ``count``, ``sum`` (exact), ``min``, ``max``, ``last`` are the district's, kept as members
    update: a member's newer window aggregate (a larger count) replaces its older one, the
    difference added exactly. ``counts`` and ``sums`` hold each member's current count and the
    highest partial of its sum (``extra``: the others), by member slot, until no member can
    change the window any more.
    """

    start: int
    count: int = 0
    sum: float | list[float] = 0.0
    min: float = math.inf
    max: float = -math.inf
    last_us: int = -1
    last: float = 0.0
    last_member: str = ""
    counts: Times = msgspec.field(default_factory=_times)
    sums: Doubles = msgspec.field(default_factory=_doubles)
    extra: dict[int, list[float]] | None = None


class DistrictState(msgspec.Struct, array_like=True, gc=False):
    """One district quantity at one window size (keyed tenant/district/quantity/size)."""

    partition: int = 0
    tenant: str = ""
    district: str = ""
    quantity: str = ""
    window: str = ""
    unit: str = ""
    members: dict[str, int] = msgspec.field(default_factory=dict)  # member → its slot
    marks: dict[str, int] = msgspec.field(default_factory=dict)  # member → its watermark
    floor: int | None = None  # windows starting before this are final and forgotten
    windows: list[DistrictWindow] = msgspec.field(default_factory=list)  # open, by start


def district_key(tenant: str, district: str, quantity: str, window: str) -> bytes:
    """The table key of a district quantity's state at one window size."""
    return f"{tenant}/{district}/{quantity}/{window}".encode()


# --- encoding -------------------------------------------------------------------------------


# An array travels as its type code and its bytes, little-endian wherever it was made.
def _enc_hook(value: Any) -> Any:
    if isinstance(value, array):
        if sys.byteorder != "little":
            value = array(value.typecode, value)
            value.byteswap()
        return (value.typecode, value.tobytes())
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is array and isinstance(value, list | tuple) and len(value) == 2:
        typecode, data = value
        decoded = array(typecode)
        decoded.frombytes(data)
        if sys.byteorder != "little":
            decoded.byteswap()
        return decoded
    raise NotImplementedError(f"cannot decode {kind.__name__}")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_SENSOR = msgspec.msgpack.Decoder(SensorState, dec_hook=_dec_hook)
_DISTRICT = msgspec.msgpack.Decoder(DistrictState, dec_hook=_dec_hook)
_RECORD = msgspec.msgpack.Decoder(DistrictRecord)


def encode_sensor(state: SensorState) -> bytes:
    """A sensor state's snapshot."""
    return _ENCODER.encode(state)


def encode_district(state: DistrictState) -> bytes:
    """A district state's snapshot."""
    return _ENCODER.encode(state)


# Sensor windows per district record: a few hundred bytes each, so a record stays far below
# Kafka's 1 MB limit on a message however many sensors a district has.
MAX_RECORD_WINDOWS = 1000


def split_record(record: DistrictRecord) -> list[DistrictRecord]:
    """The record as records of at most :data:`MAX_RECORD_WINDOWS` windows, in order."""
    windows = record.windows
    if len(windows) <= MAX_RECORD_WINDOWS:
        return [record]
    return [
        DistrictRecord(record.tenant, record.district, windows[i : i + MAX_RECORD_WINDOWS])
        for i in range(0, len(windows), MAX_RECORD_WINDOWS)
    ]


def encode_record(record: DistrictRecord) -> bytes:
    """A district topic record's value."""
    return _ENCODER.encode(record)


def decode_record(value: bytes) -> DistrictRecord:
    """A district topic record (msgspec.DecodeError if it is not one)."""
    return _RECORD.decode(value)


def decode_sensor(value: bytes) -> SensorState:
    """A sensor state from its snapshot, or from the previous worker's JSON."""
    if value[:1] == b"{":
        return _sensor_of_v1(json.loads(value))
    return _SENSOR.decode(value)


def decode_district(value: bytes) -> DistrictState:
    """A district state from its snapshot."""
    return _DISTRICT.decode(value)


# --- the previous worker's states (pydantic JSON, window members) ----------------------------


def _sensor_of_v1(old: dict[str, Any]) -> SensorState:
    """Convert a state of the worker before snapshots: members become running aggregates."""
    state = SensorState(
        partition=old.get("partition") or 0,
        tenant=old.get("tenant", ""),
        sensor_id=old.get("sensor_id", ""),
        interval_s=old.get("interval_s"),
        last_received_us=old.get("last_received_us"),
        stale_since_us=old.get("stale_since_us"),
    )
    for quantity, q in old.get("quantities", {}).items():
        series = Series(quantity, None, q.get("unit", ""))
        memory = q.get("memory")
        if memory:
            series.memory = SeriesMemory(memory["last_us"], memory["last_value"], memory["repeats"])
        series.times = array("q", sorted(int(t) for t in q.get("seen", {})))
        for name, sw in q.get("windows", {}).items():
            marks = sw.get("marks", {})
            if marks:
                series.mark_us = max(series.mark_us or 0, *marks.values())
            windows = WindowSet(parse_window(name) // timedelta(microseconds=1))
            for members in sw.get("windows", {}).values():
                for t_us, value in sorted(tuple(v) for v in members.values()):
                    windows.add(int(t_us), float(value))
            series.windows.append(windows)
        episodes = {
            key: Episode(e["started_us"], e["peak"], e.get("opened", False))
            for key, e in q.get("episodes", {}).items()
        }
        series.episodes = episodes or None
        state.series[series_key(quantity, None)] = series
    return state
