"""Writes line protocol to InfluxDB, retrying with backoff until InfluxDB accepts it.

Synchronous on purpose (the worker calls it in threads, ``asyncio.to_thread``, raw points and
aggregates at the same time): a call returns only once InfluxDB accepted every line, so the
worker moves on (and Kafka offsets advance) only after the data is stored. InfluxDB away, slow
or refusing credentials means lag, not loss: connection errors, timeouts, 5xx, 429, and 401,
403 and 404 (a token or bucket being fixed) are retried for ever. Any other 4xx says the data
itself is wrong: it is raised, for the worker to find the bad reading and dead-letter it.

It speaks InfluxDB's HTTP API (``/api/v2/write``, ``/api/v2/query``, which 1.8 serves too)
through the standard library's ``http.client``, one kept-alive connection per thread, and
not through influxdb-client: the worker needs two requests of it, and importing it (393
modules) cost the worker 16 MB of resident memory (docs/performance.md).
"""

from __future__ import annotations

import csv
import http.client
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from tenacity import before_sleep_log, retry, retry_if_exception, wait_exponential

from streams.points import SensorLabels, reading_lines
from streams.redelivery import StoredAt, StoredIds
from urbanpulse.influx_layout import PROBE_TAG
from urbanpulse.model import Reading
from urbanpulse.settings import InfluxSettings

log = logging.getLogger(__name__)

LINES_PER_REQUEST = 5_000  # InfluxDB's documented sweet spot for one write request
OUTAGE_STATUSES = frozenset({401, 403, 404, 429})
# The CSV InfluxDB answers a Flux query with: a header row per table (after the annotations).
_DIALECT = {"header": True, "annotations": ["datatype", "group", "default"], "delimiter": ","}
# A kept-alive connection InfluxDB closed meanwhile fails at once: sent again on a new one.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class InfluxError(Exception):
    """InfluxDB answered with an error status (``status``) and this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"InfluxDB answered {status}: {message}")
        self.status = status


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
        url = urlsplit(settings.url)
        self._https = url.scheme == "https"
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port
        self._prefix = url.path.rstrip("/")
        token = settings.token.get_secret_value()
        self._auth = {"Authorization": f"Token {token}"} if token else {}
        self._local = threading.local()  # each thread its own connection
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

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
        query = urlencode({"org": self._settings.org, "bucket": bucket, "precision": "ns"})
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        self._request(f"/api/v2/write?{query}", body.encode(), headers)

    @_retried
    def stored_ids(self, query: StoredIds) -> StoredAt:
        """The stored readings the redelivery query finds: identity → event times (µs)."""
        body = json.dumps({"query": query.flux, "type": "flux", "dialect": _DIALECT})
        headers = {"Content-Type": "application/json", "Accept": "application/csv"}
        answer = self._request(
            f"/api/v2/query?{urlencode({'org': self._settings.org})}", body.encode(), headers
        )
        found: StoredAt = {}
        for row in flux_rows(answer.decode()):
            key = (
                row["tenant"],
                row["sensor_id"],
                row.get(PROBE_TAG) or None,
                row["quantity"],
                row["_value"],
            )
            found.setdefault(key, set()).add(rfc3339_us(row["_time"]))
        return found

    def _request(self, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        """POST and return the answer's body; an error status raises :class:`InfluxError`."""
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request("POST", self._prefix + path, body, headers | self._auth)
                response = connection.getresponse()
                answer = response.read()
            except _STALE:
                connection.close()
                if attempt == 2 or not reused:
                    raise
                continue
            except BaseException:
                connection.close()  # half a request on it: never reused
                raise
            if response.status >= 300:
                raise InfluxError(response.status, answer.decode(errors="replace")[:500])
            return answer
        raise AssertionError("unreachable")

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it served a request before."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, connection.sock is not None
        timeout = self._settings.timeout_ms / 1000
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=timeout)
        self._local.connection = connection
        with self._lock:
            self._connections.append(connection)
        return connection, False

    def close(self) -> None:
        """Release the HTTP connections."""
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


def flux_rows(text: str) -> Iterator[dict[str, str]]:
    """The rows of InfluxDB's annotated CSV answer to a Flux query, by column name.

    Each table has its own header (after its ``#`` annotation rows); tables are apart by an
    empty line. An ``error`` table (a query that failed after the answer began) raises.
    """
    header: list[str] | None = None
    for row in csv.reader(text.splitlines()):
        if not row or not any(row) or row[0].startswith("#"):
            header = None
        elif header is None:
            header = row
        else:
            named = dict(zip(header, row, strict=False))
            if "error" in named and "_time" not in named:
                raise InfluxError(200, named["error"])
            yield named


def rfc3339_us(text: str) -> int:
    """Microseconds since the epoch of an RFC 3339 UTC time as InfluxDB writes it.

    (``2026-12-06T03:15:43.123456789Z``: nanoseconds, which ``datetime`` cannot hold.)
    """
    seconds, _, fraction = text.rstrip("Z").partition(".")
    whole = int(datetime.fromisoformat(seconds).replace(tzinfo=UTC).timestamp())
    return whole * 1_000_000 + int((fraction + "000000")[:6])
