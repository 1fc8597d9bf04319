"""Writes batches of readings to InfluxDB, retrying with backoff until InfluxDB accepts them.

Synchronous on purpose: the call returns only once InfluxDB accepted the batch, so the worker
moves on (and Kafka offsets advance) only after the data is stored. InfluxDB being down means
lag, not loss. (influxdb-client's batching API retries too, but confirms nothing to the caller.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from influxdb_client import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from tenacity import before_sleep_log, retry, retry_if_exception, wait_exponential

from streams.points import OPEN, SensorLabels, to_point
from urbanpulse.influx import make_client
from urbanpulse.model import Reading
from urbanpulse.settings import InfluxSettings

log = logging.getLogger(__name__)


def _worth_retrying(err: BaseException) -> bool:
    # 4xx other than 429 means the batch itself is wrong; retrying would loop forever.
    status = getattr(err, "status", None)
    return status is None or status == 429 or status >= 500


class InfluxWriter:
    """Stores readings as points in the raw bucket."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._client = make_client(settings)
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    @retry(
        retry=retry_if_exception(_worth_retrying),
        wait=wait_exponential(multiplier=0.5, max=30),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    def write(
        self, readings: list[Reading], labels: Mapping[bytes, SensorLabels] | None = None
    ) -> None:
        """Write a batch; return only when InfluxDB accepted all of it.

        ``labels`` maps a reading's key (tenant/sensor) to its registry labels; a sensor not
        in it is tagged ``open``.
        """
        if readings:
            labels = labels or {}
            self._write_api.write(
                bucket=self._settings.raw_bucket,
                org=self._settings.org,
                record=[to_point(r, labels.get(r.key, OPEN)) for r in readings],
            )

    @retry(
        retry=retry_if_exception(_worth_retrying),
        wait=wait_exponential(multiplier=0.5, max=30),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    def write_aggregates(self, points: list[Point]) -> None:
        """Write aggregate and alert points; return only when InfluxDB accepted all of them."""
        if points:
            self._write_api.write(
                bucket=self._settings.aggregate_bucket, org=self._settings.org, record=points
            )

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()
