"""The InfluxDB writer on the real InfluxDB: points stored, the redelivery query, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from streams.influx_writer import InfluxError, InfluxWriter
from streams.quality import epoch_us
from streams.redelivery import stored_ids_query
from tests.integration.test_streams_redelivery import timeless
from tests.support import unique
from urbanpulse.model import Reading
from urbanpulse.settings import Settings

T0 = datetime(2026, 11, 20, 8, 0, 0, 123_456, tzinfo=UTC)


def reading(tenant: str, sensor: str, message_id: str, probe: str | None, at: datetime) -> Reading:
    """A temperature reading of ``sensor`` (``probe``) observed when received, at ``at``."""
    return msgspec.structs.replace(
        timeless(tenant, message_id, at, redelivered=False), sensor_id=sensor, probe=probe
    )


def test_the_redelivery_query_finds_what_was_written_with_and_without_a_probe() -> None:
    tenant = unique("writer")
    readings = [
        reading(tenant, "s-0", "m-1", None, T0),
        reading(tenant, "s-0", "m-1", None, T0 + timedelta(seconds=3)),  # republished
        reading(tenant, "s-1", "m-2", "north", T0 + timedelta(seconds=1)),
    ]
    writer = InfluxWriter(Settings().influx)
    try:
        writer.write(readings)
        query = stored_ids_query(readings, Settings().influx.raw_bucket, timedelta(hours=1))
        assert query is not None
        found = writer.stored_ids(query)
        writer.write(readings)  # the same connection again, kept alive
        assert writer.stored_ids(query) == found
    finally:
        writer.close()
    assert found == {
        (tenant, "s-0", None, "temperature", "m-1"): {
            epoch_us(T0),
            epoch_us(T0 + timedelta(seconds=3)),
        },
        (tenant, "s-1", "north", "temperature", "m-2"): {epoch_us(T0 + timedelta(seconds=1))},
    }


def test_a_line_influxdb_refuses_raises_at_once_with_its_reason() -> None:
    writer = InfluxWriter(Settings().influx)
    try:
        with pytest.raises(InfluxError) as refused:
            writer.write_lines(["not line protocol at all"])
    finally:
        writer.close()
    assert refused.value.status == 400 and "unable to parse" in str(refused.value)
