"""The parts of the InfluxDB writer that need no server: reading Flux CSV, retry decisions."""

from __future__ import annotations

import http.client

import pytest

from streams.influx_writer import InfluxError, flux_rows, rfc3339_us, worth_retrying

# What InfluxDB 1.8 answers to the redelivery query when one sensor has a probe tag and the
# other not: two tables of different columns, each with its annotations and header.
TWO_TABLES = """#datatype,string,long,dateTime:RFC3339,string,string,string,string
#group,false,false,false,false,true,true,true
#default,_result,,,,,,
,result,table,_time,_value,quantity,sensor_id,tenant
,,0,2026-12-06T03:15:43.123456Z,m-1,temperature,s-0,town
,,0,2026-12-06T03:15:44Z,m-2,temperature,s-0,town

#datatype,string,long,dateTime:RFC3339,string,string,string,string,string
#group,false,false,false,false,true,true,true,true
#default,_result,,,,,,,
,result,table,_time,_value,probe,quantity,sensor_id,tenant
,,1,2026-12-06T03:15:45.000001Z,m-3,north,temperature,s-1,town

"""

ERROR = """#datatype,string,string
#group,true,true
#default,,
,error,reference
,"failed to read meta data: bucket not found",897
"""


def test_flux_rows_reads_each_table_by_its_own_header() -> None:
    rows = list(flux_rows(TWO_TABLES))
    assert [(r["_value"], r.get("probe")) for r in rows] == [
        ("m-1", None),
        ("m-2", None),
        ("m-3", "north"),
    ]
    assert rows[0]["_time"] == "2026-12-06T03:15:43.123456Z" and rows[2]["sensor_id"] == "s-1"


def test_an_error_table_raises_with_influxdbs_message() -> None:
    with pytest.raises(InfluxError, match="bucket not found"):
        list(flux_rows(ERROR))


def test_rfc3339_us_keeps_microseconds_and_drops_what_is_below() -> None:
    assert rfc3339_us("1970-01-01T00:00:01Z") == 1_000_000
    assert rfc3339_us("2026-12-06T03:15:43.123456Z") == 1_796_526_943_123_456
    assert rfc3339_us("2026-12-06T03:15:43.123456789Z") == 1_796_526_943_123_456
    assert rfc3339_us("2026-12-06T03:15:43.5Z") == 1_796_526_943_500_000


def test_outages_are_retried_refused_data_is_not() -> None:
    assert worth_retrying(ConnectionRefusedError())
    assert worth_retrying(http.client.RemoteDisconnected("closed"))
    for status in (401, 403, 404, 429, 500, 503):
        assert worth_retrying(InfluxError(status, "away"))
    for status in (400, 413, 422):
        assert not worth_retrying(InfluxError(status, "bad data"))
