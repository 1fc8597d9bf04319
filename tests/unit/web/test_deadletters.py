"""Dead letters counted: whom each concerns, and the counts by stage, reason, tenant, domain."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from api.web.deadletters import count_letters, quantity_of, tenant_of
from urbanpulse.model import DeadLetter

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def letter(stage: str, reason: str, topic: str, payload: bytes) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        detail="because",
        stage=stage,
        topic=topic,
        payload_b64=base64.b64encode(payload).decode(),
        received_at=NOW,
    )


READING = json.dumps({"tenant": "delft", "sensor_id": "air-1", "quantity": "pm10"}).encode()
INGEST = letter("ingest", "invalid_json", "urbanpulse/delft/air-1/json", b"{not json")
STREAMS = letter("streams", "out_of_range", "readings", READING)
TTS = letter("ingest", "unknown_application", "v3/app@ttn/devices/d1/up", b"\x00\x01")


def test_whom_a_letter_concerns() -> None:
    assert tenant_of(INGEST) == "delft" and quantity_of(INGEST) is None
    assert tenant_of(STREAMS) == "delft" and quantity_of(STREAMS) == "pm10"
    assert tenant_of(TTS) is None and quantity_of(TTS) is None
    broken = INGEST.model_copy(update={"topic": "readings", "payload_b64": "%%%"})
    assert tenant_of(broken) is None and quantity_of(broken) is None


def test_counts_group_by_stage_reason_tenant_and_domain_biggest_first() -> None:
    counts = count_letters([INGEST, STREAMS, STREAMS, TTS], tenant=None)
    assert [(c.stage, c.reason, c.tenant, c.domain, c.count) for c in counts] == [
        ("streams", "out_of_range", "delft", "air", 2),
        ("ingest", "invalid_json", "delft", None, 1),
        ("ingest", "unknown_application", None, None, 1),
    ]


def test_a_tenant_sees_only_its_own_letters() -> None:
    other = letter("ingest", "invalid_json", "urbanpulse/gouda/x/json", b"")
    counts = count_letters([INGEST, other, TTS], tenant="gouda")
    assert [(c.tenant, c.count) for c in counts] == [("gouda", 1)]
