import json
from datetime import UTC, datetime, timedelta

from ingest.routing import decode_message
from simulators.town import make_town, messages

START = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def run(seed: int) -> list[bytes]:
    town = make_town(5, seed=seed)
    return [m.payload for _, m in messages("town", town, START, timedelta(minutes=1), 3, seed)]


def test_same_seed_same_messages() -> None:
    assert run(7) == run(7)
    assert run(7) != run(8)


def test_messages_decode_to_the_values_intended() -> None:
    town = make_town(6)
    for due, msg in messages("town", town, START, timedelta(minutes=5), 2):
        out = decode_message(msg.topic, msg.payload, due, 65536)
        assert out.dead_letter is None
        sent = [(r["quantity"], r["value"], r["unit"]) for r in msg.readings]
        assert [(r.quantity, r.value, r.unit) for r in out.readings] == sent
        assert all(r.observed_at == due for r in out.readings)


def test_values_stay_in_range() -> None:
    for _, msg in messages("town", make_town(9), START, timedelta(hours=1), 24):
        for reading in json.loads(msg.payload)["readings"]:
            if reading["unit"] == "%":
                assert 0 <= reading["value"] <= 100
            assert reading["value"] >= -40
