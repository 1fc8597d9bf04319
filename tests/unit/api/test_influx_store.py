"""FluxRunner hands a query's parameters to the client the way the configured server takes them.

No server: the client's query calls are replaced by recorders, so only the arguments are seen.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from influxdb_client.client.flux_table import FluxRecord, FluxTable
from influxdb_client.client.query_api import QueryApi

from api.flux import FluxQuery
from api.influx_store import FluxRunner
from urbanpulse.settings import InfluxSettings

QUERY = FluxQuery(
    "from(bucket: params.bucket) |> filter(fn: (r) => r.x == params.x)",
    {"bucket": "raw", "x": 'a"b'},
)
ROW = {"_value": 1.5, "sensor_id": "s-1"}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every query call the client is asked to make: (method, keyword arguments)."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def query(_: QueryApi, **kwargs: Any) -> list[FluxTable]:
        seen.append(("query", kwargs))
        table = FluxTable()
        table.records = [FluxRecord(0, dict(ROW))]
        return [table]

    def query_stream(_: QueryApi, **kwargs: Any) -> list[FluxRecord]:
        seen.append(("query_stream", kwargs))
        return [FluxRecord(0, dict(ROW))]

    monkeypatch.setattr(QueryApi, "query", query)
    monkeypatch.setattr(QueryApi, "query_stream", query_stream)
    return seen


def runner(mode: Literal["inline", "extern"]) -> FluxRunner:
    return FluxRunner(InfluxSettings(org="city", flux_params=mode))


@pytest.mark.parametrize("method", ["rows", "stream"])
def test_inline_mode_sends_the_literals_in_the_text_and_no_params(
    calls: list[tuple[str, dict[str, Any]]], method: str
) -> None:
    rows = list(getattr(runner("inline"), method)(QUERY))
    assert rows == [ROW]
    [(_, kwargs)] = calls
    assert kwargs == {"query": QUERY.inline(), "org": "city"}
    assert 'r.x == "a\\"b"' in kwargs["query"]


@pytest.mark.parametrize("method", ["rows", "stream"])
def test_extern_mode_sends_the_text_as_written_and_the_params_beside_it(
    calls: list[tuple[str, dict[str, Any]]], method: str
) -> None:
    rows = list(getattr(runner("extern"), method)(QUERY))
    assert rows == [ROW]
    [(_, kwargs)] = calls
    assert kwargs == {"query": QUERY.text, "org": "city", "params": {"bucket": "raw", "x": 'a"b'}}


def test_rows_reads_whole_tables_and_stream_reads_records(
    calls: list[tuple[str, dict[str, Any]]],
) -> None:
    flux = runner("inline")
    list(flux.rows(QUERY))
    list(flux.stream(QUERY))
    assert [name for name, _ in calls] == ["query", "query_stream"]
