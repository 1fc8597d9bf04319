"""The job's Flux: tenants only as escaped literals, only the columns it reads."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.kpis.queries import battery_query, flags_query, received_query, stored_query

START = datetime(2026, 11, 25, tzinfo=UTC)
STOP = datetime(2026, 11, 26, tzinfo=UTC)


def test_a_tenant_cannot_break_out_of_its_string() -> None:
    evil = 'x" or r._value > 0 or "${x}'
    for query in (
        received_query("urbanpulse/raw", START, STOP, evil),
        flags_query("urbanpulse/raw", START, STOP, evil),
        battery_query("urbanpulse/raw", START, STOP, evil),
        stored_query("urbanpulse/agg", START, STOP, period="day", scope="sensor", tenant=evil),
    ):
        assert evil not in query
        assert 'r.tenant == "x\\" or r._value > 0 or \\"\\x24{x}"' in query


def test_every_tenant_when_none_is_named() -> None:
    query = received_query("urbanpulse/raw", START, STOP, None)
    assert "r.tenant" not in query
    assert "range(start: 2026-11-25T00:00:00.000000Z, stop: 2026-11-26T00:00:00.000000Z)" in query
    assert 'keep(columns: ["_time", "tenant", "sensor_id", "quantity", "_value"])' in query
