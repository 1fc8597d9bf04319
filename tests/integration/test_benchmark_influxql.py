"""The benchmarks' InfluxQL reader on the real InfluxDB: the series count it reports."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from benchmarks.influxql import InfluxQL
from tests.support import INFLUX_URL, unique


def _post(path: str, params: dict[str, str], body: bytes = b"") -> None:
    url = f"{INFLUX_URL}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(urllib.request.Request(url, body, method="POST"), timeout=60):
        pass


@pytest.fixture
def database() -> Iterator[str]:
    name = unique("bench_series").replace("-", "_")
    _post("/query", {"q": f"CREATE DATABASE {name}"})
    yield name
    _post("/query", {"q": f"DROP DATABASE {name}"})


def test_the_series_estimate_counts_the_database_s_series(database: str) -> None:
    influx = InfluxQL(INFLUX_URL, database, "autogen")
    assert influx.series_estimate() == 0
    lines = "\n".join(f"reading,sensor_id=s{i} value={i}" for i in range(20))
    _post("/write", {"db": database}, lines.encode())
    assert influx.series_estimate() == 20
