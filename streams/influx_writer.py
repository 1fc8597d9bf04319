"""Writes line protocol to InfluxDB, retrying with backoff until InfluxDB accepts it.

Synchronous on purpose (the worker calls it in threads, ``asyncio.to_thread``, raw points and
aggregates at the same time): a call returns only once InfluxDB accepted every line, so the
worker moves on (and Kafka offsets advance) only after the data is stored. InfluxDB away, slow
or refusing credentials means lag, not loss: connection errors, timeouts, 5xx, 429, and 401,
403 and 404 (a token or bucket being fixed) are retried for ever. Any other 4xx says the data
itself is wrong: it is raised, for the worker to find the bad reading and dead-letter it.
(influxdb-client's batching API retries too, but confirms nothing to the caller.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from influxdb_client.client.write_api import SYNCHRONOUS
from tenacity import before_sleep_log, retry, retry_if_exception, wait_exponential

from streams.points import SensorLabels, reading_lines
from streams.quality import epoch_us
from streams.redelivery import StoredAt, StoredIds
from urbanpulse.influx import make_client
from urbanpulse.influx_layout import PROBE_TAG
from urbanpulse.model import Reading
from urbanpulse.settings import InfluxSettings

log = logging.getLogger(__name__)

LINES_PER_REQUEST = 5_000  # InfluxDB's documented sweet spot for one write request
OUTAGE_STATUSES = frozenset({401, 403, 404, 429})


def worth_retrying(err: BaseException) -> bool:
    """True for an outage (wait and retry), False for data InfluxDB refuses for good."""
    status = getattr(err, "status", None)
    return status is None or status in OUTAGE_STATUSES or status >= 500


_retried = retry(
    retry=retry_if_exception(worth_retrying),
    wait=wait_exponential(multiplier=0.5, max=30),
    before_sleep=before_sleep_log(log, logging.WARNING),
    reraise=True,
)


class InfluxWriter:
    """Stores readings in the raw bucket, aggregates and alerts in the aggregate bucket."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._client = make_client(settings)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(
        self, readings: list[Reading], labels: Mapping[bytes, SensorLabels] | None = None
    ) -> None:
        """Write readings; return only when InfluxDB accepted all of them.

        ``labels`` maps a reading's key (tenant/sensor) to its registry labels; a sensor not
        in it is tagged ``open``.
        """
        self._write_lines(self._settings.raw_bucket, reading_lines(readings, dict(labels or {})))

    def write_lines(self, lines: list[str]) -> None:
        """Write aggregate and alert lines; return only when InfluxDB accepted all of them."""
        self._write_lines(self._settings.aggregate_bucket, lines)

    def _write_lines(self, bucket: str, lines: list[str]) -> None:
        for start in range(0, len(lines), LINES_PER_REQUEST):
            self._post(bucket, "\n".join(lines[start : start + LINES_PER_REQUEST]))

    @_retried
    def _post(self, bucket: str, body: str) -> None:
        self._write_api.write(bucket=bucket, org=self._settings.org, record=body)

    @_retried
    def stored_ids(self, query: StoredIds) -> StoredAt:
        """The stored readings the redelivery query finds: identity → event times (µs)."""
        tables = self._client.query_api().query(query.flux, org=self._settings.org)
        found: StoredAt = {}
        for table in tables:
            for record in table.records:
                values: dict[str, Any] = record.values
                key = (
                    values["tenant"],
                    values["sensor_id"],
                    values.get(PROBE_TAG) or None,
                    values["quantity"],
                    values["_value"],
                )
                found.setdefault(key, set()).add(epoch_us(values["_time"]))
        return found

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()
