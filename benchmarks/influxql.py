"""Counting a run's points in InfluxDB 1.x with InfluxQL (``/query``), as the peer kit does.

InfluxQL's ``count()`` is much cheaper for InfluxDB than a Flux count, which matters while the
benchmark measures InfluxDB's own CPU. The raw bucket ``db/rp`` of the settings names the
database and retention policy. Tenant and sensor names come from the benchmark itself (no
user input), and are quoted anyway.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from urbanpulse.settings import InfluxSettings

MEASUREMENT = "reading"


def quote(text: str) -> str:
    """An InfluxQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class InfluxQL:
    """The raw readings of InfluxDB 1.x, through its HTTP query endpoint."""

    url: str
    database: str
    policy: str
    token: str = ""

    @classmethod
    def from_settings(cls, settings: InfluxSettings) -> InfluxQL:
        """Database and retention policy from the raw bucket ``db/rp``."""
        database, _, policy = settings.raw_bucket.partition("/")
        return cls(settings.url, database, policy or "autogen", settings.token.get_secret_value())

    def _query(self, q: str, *, post: bool = False, chunked: bool = False) -> Iterator[Any]:
        params = {"db": self.database, "q": q, "epoch": "u"}
        if chunked:
            params |= {"chunked": "true", "chunk_size": "50000"}
        body = urllib.parse.urlencode(params).encode()
        url = f"{self.url}/query"
        if not post:
            url, body = f"{url}?{body.decode()}", b""
        request = urllib.request.Request(url, data=body or None, method="POST" if post else "GET")
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        with urllib.request.urlopen(request, timeout=300) as response:
            for line in response:  # one JSON document per chunk (one in all unchunked)
                if line.strip():
                    document = json.loads(line)
                    for result in document.get("results", []):
                        if "error" in result:
                            raise RuntimeError(f"InfluxDB: {result['error']} ({q})")
                        yield result

    def _from(self) -> str:
        return f'"{self.policy}"."{MEASUREMENT}"'

    def count(self, tenant: str, sensor_regex: str = "") -> int:
        """Points of a tenant (optionally only sensors matching a regex)."""
        where = f"tenant = {quote(tenant)}"
        if sensor_regex:
            where += f" AND sensor_id =~ /{sensor_regex}/"
        total = 0
        for result in self._query(f"SELECT count(value) FROM {self._from()} WHERE {where}"):
            for series in result.get("series", []):
                total += sum(int(row[1]) for row in series["values"])
        return total

    def times_by_sensor(self, tenant: str) -> dict[str, list[int]]:
        """Every point of a tenant: sensor → the point times in µs (one per point)."""
        return {
            sensor: [t for t, _ in points]
            for sensor, points in self.points_by_sensor(tenant).items()
        }

    def points_by_sensor(self, tenant: str) -> dict[str, list[tuple[int, float]]]:
        """Every point of a tenant: sensor → (time µs, value) of each point, in every series."""
        q = f"SELECT value FROM {self._from()} WHERE tenant = {quote(tenant)} GROUP BY sensor_id"
        out: dict[str, list[tuple[int, float]]] = {}
        for result in self._query(q, chunked=True):
            for series in result.get("series", []):
                sensor = series.get("tags", {}).get("sensor_id", "")
                out.setdefault(sensor, []).extend(
                    (int(row[0]), float(row[1])) for row in series["values"]
                )
        return out

    def times_since(self, tenant: str, sensor: str, since_us: int) -> set[int]:
        """Point times (µs) of one sensor at or after ``since_us``."""
        q = (
            f"SELECT value FROM {self._from()} WHERE tenant = {quote(tenant)} "
            f"AND sensor_id = {quote(sensor)} AND time >= {since_us}u"
        )
        return {
            int(row[0])
            for result in self._query(q)
            for series in result.get("series", [])
            for row in series["values"]
        }

    def series_estimate(self) -> int | None:
        """How many series the database holds, by InfluxDB's own estimate (a sketch: cheap,
        and it may still count series dropped since the last compaction)."""
        for result in self._query("SHOW SERIES CARDINALITY"):
            for series in result.get("series", []):
                return int(series["values"][0][0])
        return None

    def drop_tenant(self, tenant: str) -> None:
        """Delete every series of a tenant (raw, aggregates, alerts) from the database."""
        for _ in self._query(f"DROP SERIES WHERE tenant = {quote(tenant)}", post=True):
            pass
