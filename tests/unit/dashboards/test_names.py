"""The boards ask only for what the platform stores: quantities, measurements, tags, fields.

The helpers of ``dashboards.flux`` refuse a name the shared tables do not have; the scans
below read every query of the generated JSON, so a name written into a board's Flux text by
hand, past the helpers, is caught too.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from dashboards import flux
from urbanpulse.influx_layout import (
    AGGREGATE_MEASUREMENT,
    ALERT_MEASUREMENT,
    KPI_MEASUREMENT,
    READING_MEASUREMENT,
)
from urbanpulse.quantities import QUANTITIES, privacy_of

FLUX_COLUMNS = {"_time", "_value", "_field", "_measurement", "_start", "_stop"}
LAYOUT_COLUMNS = {name for names in (*flux.TAGS.values(), *flux.FIELDS.values()) for name in names}


def flux_queries(boards: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """(where, Flux text) of every InfluxDB panel target and query variable of every board."""
    out = []
    for uid, data in boards.items():
        for variable in data["templating"]["list"]:
            if variable["type"] == "query":
                out.append((f"{uid} variable {variable['name']}", variable["query"]))
        for panel in data["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == "influxdb":
                    out.append((f"{uid} panel {panel['title']!r}", target["query"]))
    return out


def test_quantity_gives_the_flux_literal_of_a_stored_quantity() -> None:
    assert flux.quantity("precipitation") == '"precipitation"'
    assert flux.quantity("battery_level") == '"battery_level"'  # restricted: stored, not open


@pytest.mark.parametrize("name", ["rainfall", "parking_occupancy", "battery", "PM2_5", ""])
def test_quantity_refuses_a_name_the_quantity_table_lacks(name: str) -> None:
    with pytest.raises(ValueError, match="not a canonical quantity"):
        flux.quantity(name)


def test_quantity_refuses_personal_data_which_is_never_stored() -> None:
    with pytest.raises(ValueError, match="personal"):
        flux.quantity("people_count")


def test_layout_names_are_checked() -> None:
    assert flux.tag(AGGREGATE_MEASUREMENT, "window") == "window"
    assert flux.field(ALERT_MEASUREMENT, "state") == "state"
    assert flux.columns(READING_MEASUREMENT, "_time", "sensor_id") == '["_time", "sensor_id"]'
    assert flux.window("15m") == '"15m"'
    with pytest.raises(ValueError):
        flux.tag(READING_MEASUREMENT, "window")  # an aggregate's tag, not a reading's
    with pytest.raises(ValueError):
        flux.field(AGGREGATE_MEASUREMENT, "value")
    with pytest.raises(ValueError):
        flux.columns(READING_MEASUREMENT, "_time", "battery")
    with pytest.raises(ValueError):
        flux.window("5m")


def test_every_quantity_a_board_names_is_stored(boards: dict[str, dict[str, Any]]) -> None:
    named = {
        (where, name)
        for where, text in flux_queries(boards)
        for name in re.findall(r'r\.quantity == "([^"$]*)"', text)
    }
    assert named, "the scan found no quantity: has the query text changed shape?"
    wrong = sorted(
        (where, name)
        for where, name in named
        if name not in QUANTITIES or privacy_of(name) == "personal"
    )
    assert wrong == []


def test_every_measurement_a_board_names_is_in_the_layout(
    boards: dict[str, dict[str, Any]],
) -> None:
    layout = {READING_MEASUREMENT, AGGREGATE_MEASUREMENT, ALERT_MEASUREMENT, KPI_MEASUREMENT}
    named = {
        (where, name)
        for where, text in flux_queries(boards)
        for name in re.findall(r'_measurement == "([^"]*)"', text)
    }
    assert named
    assert sorted((w, n) for w, n in named if n not in layout) == []


def columns_used(text: str) -> set[str]:
    """Every column a query reads: ``r.x``, ``exists r.x``, ``columns: [...]``, ``column: "x"``."""
    used = set(re.findall(r"\br\.(\w+)", text))
    for listed in re.findall(r"columns: \[([^\]]*)\]", text):
        used |= set(re.findall(r'"(\w+)"', listed))
    used |= set(re.findall(r'column: "(\w+)"', text))
    return used


def columns_made(text: str) -> set[str]:
    """Columns a query makes itself, as record keys in ``map(fn: (r) => ({...}))`` and in
    ``reduce(..., fn: (r, accumulator) => ({...}))``."""
    made: set[str] = set()
    records = re.findall(r"map\(fn: \(r\) => \(\{(.*?)\}\)\)", text, re.S)
    records += re.findall(r"fn: \(r, accumulator\) => \(\{(.*?)\}\)\)", text, re.S)
    for record in records:
        made |= set(re.findall(r"(?:^|,)\s*(\w+):", record))
    return made


def test_every_column_a_board_reads_is_in_the_layout(boards: dict[str, dict[str, Any]]) -> None:
    unknown = sorted(
        (where, name)
        for where, text in flux_queries(boards)
        for name in columns_used(text) - columns_made(text)
        if name not in LAYOUT_COLUMNS | FLUX_COLUMNS
    )
    assert unknown == []


def test_the_column_scan_sees_a_wrong_name() -> None:
    text = (
        flux.raw(None)
        + '\n  |> keep(columns: ["sensor_id", "batery"])\n  |> map(fn: (r) => ({x: r.lat}))'
    )
    assert columns_used(text) - columns_made(text) - LAYOUT_COLUMNS - FLUX_COLUMNS == {"batery"}
