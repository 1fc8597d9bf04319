"""decode_message: topic routing, limits and dead letters for the native JSON topics."""

import base64
from datetime import UTC, datetime

import pytest

from ingest.routing import decode_message

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
