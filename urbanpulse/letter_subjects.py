"""Whom a dead letter concerns, and when it counts: tenant, sensor, time (pure).

* A letter of the stream worker carries the refused reading: its tenant, sensor id and
  observation time.
* A letter of ingest carries the MQTT topic, which names tenant and sensor for our own topics
  (``urbanpulse/{tenant}/{device}/{format}``) and, through the tenant map, for network-server
  topics (urbanpulse/mqtt_topics.py :func:`topic_sender`); it counts at its time of receipt.
  The sensor it names is the *device*: a Cayenne LPP device's readings are stored per channel
  (``{device}:{channel}``), so its letters concern the device, not one of those sensors.
* Anything else (a topic of no supported shape, a letter that is not one of ours) concerns
  no known tenant: :attr:`LetterSubject.tenant` is None.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from urbanpulse.model import DeadLetter, Reading
from urbanpulse.mqtt_topics import topic_sender

PERSONAL_ONLY = "personal_only"
"""The reason of a message that held only personal data: dropped on purpose, not a failure."""


@dataclass(frozen=True, kw_only=True)
class LetterSubject:
    """Whom a dead letter concerns and when it counts."""

    tenant: str | None
    sensor_id: str | None  # as the letter names it (an LPP device, not its channel sensors)
    at: datetime  # the refused reading's observation time, else the letter's receipt
    reason: str
    stage: str


def _reading(letter: DeadLetter) -> Reading | None:
    try:
        return Reading.from_bytes(base64.b64decode(letter.payload_b64, validate=True))
    except (binascii.Error, ValueError, ValidationError, json.JSONDecodeError):
        return None


def letter_subject(
    letter: DeadLetter, tenant_by_application: Mapping[str, str], default_tenant: str
) -> LetterSubject:
    """Whom ``letter`` concerns (tenant, sensor) and the time it counts at."""
    if letter.stage == "streams":
        reading = _reading(letter)
        if reading is not None:
            return LetterSubject(
                tenant=reading.tenant,
                sensor_id=reading.sensor_id,
                at=reading.observed_at,
                reason=letter.reason,
                stage=letter.stage,
            )
    sender = topic_sender(letter.topic, tenant_by_application, default_tenant)
    return LetterSubject(
        tenant=sender[0] if sender else None,
        sensor_id=sender[1] if sender else None,
        at=letter.received_at,
        reason=letter.reason,
        stage=letter.stage,
    )
