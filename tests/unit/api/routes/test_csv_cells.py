"""CSV from every route that writes it (pages and bulk files) is safe to open in a spreadsheet:
ids from MQTT topics that start a formula get a leading ``'``; numbers stay numbers."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import timedelta

from api.formats import Aggregate, Alert, Observation
from tests.unit.api.fakes import NOW, FakeStore, client_for

ATTACK = "=HYPERLINK(1)"
DAY = (NOW - timedelta(days=1)).replace(hour=0)
READING = Observation(
    time=DAY + timedelta(hours=1),
    tenant="@town",
    sensor_id=ATTACK,
    quantity="pm2_5",
    value=-3.5,
    unit="ug/m3",
)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_observation_pages_escape_text_cells() -> None:
    client = client_for(FakeStore(readings=[READING]))
    answer = client.get("/v1/observations", params={"format": "csv", "from": DAY.isoformat()})
    [row] = _rows(answer.text)
    assert (row["tenant"], row["sensor_id"], row["value"]) == ("'@town", f"'{ATTACK}", "-3.5")


def test_aggregate_and_alert_pages_escape_text_cells() -> None:
    window = Aggregate(
        window_start=DAY,
        window_end=DAY + timedelta(hours=1),
        window="1h",
        tenant="+town",
        scope="sensor",
        sensor_id=ATTACK,
        quantity="pm2_5",
        count=1,
        mean=-1.0,
        min=-1.0,
        max=-1.0,
        last=-1.0,
        unit="ug/m3",
    )
    episode = Alert(
        started_at=DAY,
        state="open",
        tenant="town",
        sensor_id=ATTACK,
        rule="threshold",
        quantity="pm2_5",
        value=-2.0,
        message="-2 below\tthe floor",
    )
    client = client_for(FakeStore(windows=[window], episodes=[episode]))
    since = {"format": "csv", "from": DAY.isoformat()}
    [agg] = _rows(client.get("/v1/aggregates", params=since | {"sensor_id": ATTACK}).text)
    assert (agg["tenant"], agg["sensor_id"], agg["mean"]) == ("'+town", f"'{ATTACK}", "-1.0")
    [alert] = _rows(client.get("/v1/alerts", params=since).text)
    assert (alert["sensor_id"], alert["message"]) == (f"'{ATTACK}", "'-2 below\tthe floor")


def test_bulk_files_escape_text_cells() -> None:
    store = FakeStore(readings=[READING], counts=[(READING.tenant, "pm2_5", DAY, 1)])
    client = client_for(store)
    answer = client.get(f"/v1/bulk/%40town/pm2_5/{DAY.date().isoformat()}.csv.gz")
    assert answer.status_code == 200, answer.text
    [row] = _rows(gzip.decompress(answer.content).decode())
    assert (row["tenant"], row["sensor_id"], row["value"]) == ("'@town", f"'{ATTACK}", "-3.5")
