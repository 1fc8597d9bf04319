"""decode_message: topic routing, limits and dead letters for the native JSON topics."""

import base64
from datetime import UTC, datetime

import pytest

from ingest.routing import EXCERPT_BYTES, decode_message

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
GOOD = b'{"quantity": "temperature", "value": 3.5, "unit": "Cel"}'


def test_a_good_message_becomes_readings() -> None:
    out = decode_message("urbanpulse/town/t-1/json", GOOD, NOW, 1024)
    assert out.dead_letter is None
    assert [(r.tenant, r.sensor_id, r.value) for r in out.readings] == [("town", "t-1", 3.5)]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("urbanpulse/town/t-1/json", b"{", "invalid_json"),
        ("urbanpulse/town/t-1/json", b" " * 2000, "oversized"),
        ("elsewhere/town/t-1/json", GOOD, "unknown_topic"),
        ("urbanpulse/town/t-1/klingon", GOOD, "unknown_format"),
        ("urbanpulse/to wn/t-1/json", GOOD, "invalid_topic"),
    ],
)
def test_bad_messages_become_dead_letters_with_the_original_bytes(
    topic: str, payload: bytes, reason: str
) -> None:
    out = decode_message(topic, payload, NOW, 1024)
    assert out.readings == ()
    assert out.dead_letter is not None
    assert out.dead_letter.reason == reason
    assert out.dead_letter.topic == topic
    assert base64.b64decode(out.dead_letter.payload_b64) == payload
    assert out.dead_letter.stage == "ingest"


def test_the_dup_flag_marks_every_reading_of_the_message_redelivered() -> None:
    lpp = bytes.fromhex("03670110056700FF")
    for topic, payload in (("urbanpulse/town/t-1/json", GOOD), ("urbanpulse/town/t-1/lpp", lpp)):
        first = decode_message(topic, payload, NOW, 1024)
        again = decode_message(topic, payload, NOW, 1024, redelivered=True)
        assert first.readings and not any(r.redelivered for r in first.readings)
        assert again.readings and all(r.redelivered for r in again.readings)
        assert [r.message_id for r in again.readings] == [r.message_id for r in first.readings]


def test_a_dead_letter_always_fits_in_a_kafka_record() -> None:
    """An oversized message keeps an excerpt (issue 15: its whole bytes would be refused)."""
    payload = b"A" * 800_000
    out = decode_message("urbanpulse/town/t-1/json", payload, NOW, 256 * 1024)
    assert out.dead_letter is not None and out.dead_letter.reason == "oversized"
    assert base64.b64decode(out.dead_letter.payload_b64) == payload[:EXCERPT_BYTES]
    assert f"the first {EXCERPT_BYTES} of 800000 bytes kept" in out.dead_letter.detail
    assert len(out.dead_letter.to_bytes()) < 1_000_000  # librdkafka's message.max.bytes
