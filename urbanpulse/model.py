"""The canonical reading: the one model every component after ingest speaks.

A reading is one value of one quantity measured by one sensor of one tenant (municipality)
at one instant. Ingest turns every payload format into readings; the stream worker stores
them; the API publishes them. It is defined here once and imported everywhere.

:class:`Reading` is a ``msgspec`` struct: the hot path builds, encodes and decodes hundreds of
thousands of them a second, and msgspec does that in C with the types, ranges and lengths
below checked on every decode and by :func:`validated`. The names' patterns are checked by
:func:`check_names` (which :func:`validated`, :meth:`Reading.from_bytes` and
``urbanpulse.wire`` call), once per run of equal names: as msgspec constraints they were a
regular expression per name per reading, two thirds of the worker's decoding.
Constructing a ``Reading(...)`` directly checks nothing: code that builds readings from
outside input goes through :func:`validated`.

Identity: a reading is the observation (tenant, sensor, probe, quantity, event time); the
same observation written twice is the same InfluxDB point. ``message_id`` names the message
it came in: given by the device, or ``derived_id`` from the message's topic and bytes. A
derived id is not an observation's identity (the same bytes published twice are two
observations), except for a ``redelivered`` message, which the broker re-sent (MQTT DUP):
its readings repeat those of the first delivery, if that one got through (docs/streams.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

# Ids travel in MQTT topics, Kafka keys, InfluxDB tags and URL paths: no white space, no
# MQTT wildcards or level separators, bounded length. Anything else a city uses is accepted.
ID_PATTERN = r"^[^\s/+#\x00-\x1f\x7f]{1,128}$"
QUANTITY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
UNIT_PATTERN = r"^[^\s\x00-\x1f\x7f]{1,32}$"
PROBE_PATTERN = r"^[A-Za-z0-9_.-]{1,32}$"

# InfluxDB stores nanoseconds since the epoch in a signed 64-bit integer: times outside this
# span cannot be written, and one of them would fail the whole batch it is in.
EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, tzinfo=UTC)
# The largest magnitude of a value: far beyond any physical reading, and small enough that the
# exact sum of a window of fewer than 10**8 values stays a finite float.
MAX_MAGNITUDE = 1e300


def _whole(pattern: str) -> str:
    r"""The pattern for Python's ``re`` (:func:`check_names`): there ``$`` also matches before a
    final newline (``"Cel\n"`` would pass, and break InfluxDB's line protocol); ``\Z`` does not.
    The ``*_PATTERN`` strings stay as they are for pydantic, whose Rust regex has no ``\Z``."""
    return pattern.removesuffix("$") + r"\Z"


AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]


class Location(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A WGS 84 position (degrees, metres)."""

    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    alt: float | None = None


class Reading(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """One observed value, in canonical form (UCUM unit, UTC time).

    The names (tenant, sensor_id, quantity, unit, probe) must match their patterns
    (:data:`ID_PATTERN`, ...): :func:`check_names` checks them, not msgspec's decode (see the
    module's docstring).
    """

    tenant: str
    sensor_id: str
    quantity: str
    value: float
    unit: str  # UCUM code, e.g. Cel, %, ug/m3
    observed_at: AwareTime
    received_at: AwareTime
    location: Location | None = None
    source_format: str
    message_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    quality_flags: tuple[str, ...] = ()
    probe: str | None = None  # which probe of the quantity, when a device has several
    derived_id: bool = False  # message_id was derived from topic and bytes, not sent
    redelivered: bool = False  # the broker re-sent the message (MQTT DUP flag)

    @property
    def key(self) -> bytes:
        """The Kafka key: readings of one sensor stay in order on one partition."""
        return f"{self.tenant}/{self.sensor_id}".encode()

    def to_bytes(self) -> bytes:
        """Serialise as JSON (one reading; batches: :mod:`urbanpulse.wire`)."""
        return _ENCODER.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Reading:
        """Parse one reading's JSON, checking its types and lengths (msgspec.ValidationError)
        and its names (InvalidReading)."""
        return check_names(_DECODER.decode(data))


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Reading)


class InvalidReading(ValueError):
    """A reading that breaks the model's rules; the message says which field and why."""


def validated(**fields: object) -> Reading:
    """A reading built from outside input, every constraint checked (else InvalidReading).

    Times are turned to UTC; the value must be finite (at most :data:`MAX_MAGNITUDE`) and the
    times within what InfluxDB can store (:data:`EARLIEST`, :data:`LATEST`).
    """
    try:
        reading = msgspec.convert(fields, Reading)
    except msgspec.ValidationError as err:
        raise InvalidReading(str(err)) from None
    return check(check_names(reading))


def check_names(reading: Reading, before: Reading | None = None) -> Reading:
    """The reading, or InvalidReading if a name breaks its pattern (:data:`ID_PATTERN`,
    :data:`QUANTITY_PATTERN`, :data:`UNIT_PATTERN`, :data:`PROBE_PATTERN`).

    ``before``: a reading already checked; a name equal to its name is not matched again
    (the readings of a record come in runs of one sensor and quantity).
    """
    # Written out, not a loop over the fields: this runs for every reading the worker reads.
    if before is None or reading.tenant != before.tenant:
        _match("tenant", reading.tenant, _ID)
    if before is None or reading.sensor_id != before.sensor_id:
        _match("sensor_id", reading.sensor_id, _ID)
    if before is None or reading.quantity != before.quantity:
        _match("quantity", reading.quantity, _QUANTITY)
    if before is None or reading.unit != before.unit:
        _match("unit", reading.unit, _UNIT)
    probe = reading.probe
    if probe is not None and (before is None or probe != before.probe):
        _match("probe", probe, _PROBE)
    return reading


def _match(name: str, value: str, pattern: re.Pattern[str]) -> None:
    if pattern.match(value) is None:
        raise InvalidReading(f"{name} {value!r} does not match {pattern.pattern}")


def by_sensor(readings: Iterable[Reading]) -> dict[bytes, list[Reading]]:
    """The readings of each sensor, in order, by key: :attr:`Reading.key` (an f-string and
    an encode) built once for each run of one sensor's readings, not for each reading (a
    worker batch at 50 readings per message is runs of 50 readings of one sensor)."""
    out: dict[bytes, list[Reading]] = {}
    run: list[Reading] = []
    tenant = sensor = None
    for reading in readings:
        if reading.sensor_id != sensor or reading.tenant != tenant:
            tenant, sensor = reading.tenant, reading.sensor_id
            run = out.setdefault(reading.key, [])
        run.append(reading)
    return out


def check(reading: Reading) -> Reading:
    """The reading with UTC times, or InvalidReading for what its type cannot say."""
    if not abs(reading.value) <= MAX_MAGNITUDE:  # NaN fails this too
        raise InvalidReading("value must be a finite number of magnitude at most 1e300")
    observed, received = reading.observed_at, reading.received_at
    for name, moment in (("observed_at", observed), ("received_at", received)):
        if not EARLIEST <= moment < LATEST:
            raise InvalidReading(f"{name} {moment.isoformat()} is outside 1677-09-22..2262-04-11")
    if observed.tzinfo is not UTC or received.tzinfo is not UTC:
        reading = msgspec.structs.replace(
            reading, observed_at=observed.astimezone(UTC), received_at=received.astimezone(UTC)
        )
    return reading


_ID = re.compile(_whole(ID_PATTERN))
_QUANTITY = re.compile(_whole(QUANTITY_PATTERN))
_UNIT = re.compile(_whole(UNIT_PATTERN))
_PROBE = re.compile(_whole(PROBE_PATTERN))


def is_id(value: str) -> bool:
    """True when ``value`` may be a tenant or sensor id (:data:`ID_PATTERN`)."""
    return _ID.match(value) is not None


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]


class DeadLetter(BaseModel):
    """A message that could not become readings, kept with the reason so nothing is lost."""

    model_config = ConfigDict(frozen=True)

    reason: str = Field(description="a short machine-readable code, e.g. invalid_json")
    detail: str = Field(description="what exactly was wrong, for a person")
    stage: str = Field(description="the component that refused it: ingest or streams")
    topic: str = Field(description="the MQTT topic (or Kafka topic) it came from")
    payload_b64: str = Field(description="the original bytes, base64")
    received_at: UtcDatetime

    def to_bytes(self) -> bytes:
        """Serialise as the JSON carried on the Kafka dead-letter topic."""
        return self.model_dump_json().encode()
