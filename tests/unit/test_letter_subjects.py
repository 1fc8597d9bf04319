"""Whom a dead letter concerns: tenant and sensor from its topic or from the reading it carries."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from urbanpulse.letter_subjects import letter_subject
from urbanpulse.model import DeadLetter, Reading
from urbanpulse.mqtt_topics import topic_sender

RECEIVED = datetime(2026, 11, 25, 9, tzinfo=UTC)
MAP = {"town-sensors@ttn": "town", "1f0c-uuid": "town"}


def letter(topic: str, stage: str = "ingest", payload: bytes = b"{") -> DeadLetter:
    return DeadLetter(
        reason="invalid_json",
        detail="cut short",
        stage=stage,
        topic=topic,
        payload_b64=base64.b64encode(payload).decode(),
        received_at=RECEIVED,
    )


def test_our_topics_name_tenant_and_device() -> None:
    found = letter_subject(letter("urbanpulse/town/noise-001/json"), MAP, "default")
    assert (found.tenant, found.sensor_id, found.at, found.reason) == (
        "town",
        "noise-001",
        RECEIVED,
        "invalid_json",
    )


def test_network_server_topics_go_through_the_tenant_map_as_ingest_does() -> None:
    assert topic_sender("v3/town-sensors@ttn/devices/park-1/up", MAP, "d") == ("town", "park-1")
    assert topic_sender("v3/town-sensors/devices/park-1/up", {"town-sensors": "x"}, "d") == (
        "x",
        "park-1",
    )
    assert topic_sender("v3/unknown@ttn/devices/p/up", MAP, "d") == ("d", "p")
    assert topic_sender("application/1f0c-uuid/device/70B3D5/event/up", MAP, "d") == (
        "town",
        "70b3d5",
    )
    assert topic_sender("somewhere/else", MAP, "d") is None
    assert topic_sender("urbanpulse/town/json", MAP, "d") is None


def test_a_stream_worker_letter_counts_for_its_reading_at_its_observation_time() -> None:
    observed = datetime(2026, 11, 24, 23, 59, tzinfo=UTC)
    reading = Reading(
        tenant="town",
        sensor_id="noise-002",
        quantity="noise_level",
        value=999.0,
        unit="dB",
        observed_at=observed,
        received_at=RECEIVED,
        source_format="json",
        message_id="m-1",
    )
    found = letter_subject(letter("readings", "streams", reading.to_bytes()), MAP, "d")
    assert (found.tenant, found.sensor_id, found.at) == ("town", "noise-002", observed)


def test_what_names_no_tenant_is_said_to() -> None:
    found = letter_subject(letter("readings", "streams", b"not a reading"), MAP, "d")
    assert (found.tenant, found.sensor_id, found.at) == (None, None, RECEIVED)
