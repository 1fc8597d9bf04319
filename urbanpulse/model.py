"""The canonical reading: the one model every component after ingest speaks.

A reading is one value of one quantity measured by one sensor of one tenant (municipality)
at one instant. Ingest turns every payload format into readings; the stream worker stores
them; the API publishes them. It is defined here once and imported everywhere.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

# Ids travel in MQTT topics, Kafka keys, InfluxDB tags and URL paths: no white space, no
# MQTT wildcards or level separators, bounded length. Anything else a city uses is accepted.
ID_PATTERN = r"^[^\s/+#\x00-\x1f\x7f]{1,128}$"
QUANTITY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
UNIT_PATTERN = r"^[^\s\x00-\x1f\x7f]{1,32}$"


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
SensorId = Annotated[str, Field(pattern=ID_PATTERN)]
TenantId = Annotated[str, Field(pattern=ID_PATTERN)]


class Location(BaseModel):
    """A WGS 84 position (degrees, metres)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt: float | None = None


class Reading(BaseModel):
    """One observed value, in canonical form (UCUM unit, UTC time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: TenantId
    sensor_id: SensorId
    quantity: str = Field(pattern=QUANTITY_PATTERN)
    value: float
    unit: str = Field(pattern=UNIT_PATTERN, description="UCUM code, e.g. Cel, %, ug/m3")
    observed_at: UtcDatetime
    received_at: UtcDatetime
    location: Location | None = None
    source_format: str
    message_id: str = Field(min_length=1, max_length=256)
    quality_flags: tuple[str, ...] = ()

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value

    @property
    def key(self) -> bytes:
        """The Kafka key: readings of one sensor stay in order on one partition."""
        return f"{self.tenant}/{self.sensor_id}".encode()

    def to_bytes(self) -> bytes:
        """Serialise as the JSON carried on the Kafka readings topic."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reading:
        """Parse a reading from the Kafka readings topic."""
        return cls.model_validate_json(data)


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
