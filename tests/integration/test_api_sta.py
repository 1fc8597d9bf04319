"""The SensorThings API subset (/sta/v1.1) on real InfluxDB, with fixture data of its own tenant.

Readings are written through the stream worker's writer: two sensors (one placed, one with a
``:`` in its id and no position), two open quantities and one restricted, one per minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.sta.ids import join_id, key_literal
from streams.influx_writer import InfluxWriter
from tests.support import unique
from urbanpulse.model import Location, Reading
from urbanpulse.settings import ApiSettings, Settings

# Inside the default phenomenonTime span of a Datastream (the last day), whole hours.
T0 = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
MINUTES = 12
SENSORS = {"s-in": Location(lat=52.10, lon=5.10), "s:2": None}
OFFSET = {"pm2_5": 0.0, "noise_level": 100.0}  # value = minute + 0.5 + offset
UNITS = {"pm2_5": "ug/m3", "noise_level": "dB", "rssi": "dB[mW]"}
STA = "/sta/v1.1"


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


WINDOW = (
    f"phenomenonTime ge {_z(T0 - timedelta(hours=1))} and "
    f"phenomenonTime lt {_z(T0 + timedelta(hours=1))}"
)


def readings(tenant: str) -> list[Reading]:
    out = []
    for minute in range(MINUTES):
        for sensor, place in SENSORS.items():
            for quantity, unit in UNITS.items():
                out.append(
                    Reading(
                        tenant=tenant,
                        sensor_id=sensor,
                        quantity=quantity,
                        value=minute + 0.5 + OFFSET.get(quantity, 50.0),
                        unit=unit,
                        observed_at=T0 + timedelta(minutes=minute),
                        received_at=T0 + timedelta(minutes=minute, seconds=2),
                        location=place,
                        source_format="json",
                        message_id=f"{sensor}-{quantity}-{minute}",
                        quality_flags=("spike",) if minute == 3 else (),
                    )
                )
    return out


@pytest.fixture(scope="module")
def tenant() -> str:
    name = unique("sta")
    writer = InfluxWriter(Settings().influx)
    writer.write(readings(name))
    writer.close()
    return name


@pytest.fixture(scope="module")
def client(tenant: str) -> Iterator[TestClient]:
    # Depends on ``tenant``: the fixture data must be written before the app caches the list
    # of recent sensors (for ``sensors_cache_s``), or a fast run sees a list without them.
    # A long InfluxDB timeout: the machine running these tests is shared and often loaded.
    settings = Settings(
        api=ApiSettings(sta_default_top=4, sta_max_top=50),
        influx=Settings().influx.model_copy(update={"timeout_ms": 60_000}),
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def get(client: TestClient, path: str, status: int = 200, **params: Any) -> dict[str, Any]:
    response = client.get(f"{STA}/{path}" if path else STA, params=params)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def walk(client: TestClient, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Follow @iot.nextLink to the end; every entity and the number of pages."""
    body = get(client, path, **params)
    values, pages = list(body["value"]), 1
    while "@iot.nextLink" in body:
        response = client.get(body["@iot.nextLink"])
        assert response.status_code == 200, response.text
        body = response.json()
        values += body["value"]
        pages += 1
    return values, pages


def ds(tenant: str, sensor: str, quantity: str) -> str:
    return f"Datastreams({key_literal(join_id(tenant, sensor, quantity))})"


def test_service_root_lists_the_entity_sets(client: TestClient) -> None:
    body = get(client, "")
    names = [s["name"] for s in body["value"]]
    assert names == [
        "Things",
        "Locations",
        "Sensors",
        "ObservedProperties",
        "Datastreams",
        "Observations",
    ]
    for entity_set in body["value"]:
        assert entity_set["url"].endswith(f"{STA}/{entity_set['name']}")
        assert client.get(entity_set["url"], params={"$top": 1}).status_code == 200


def test_things_locations_sensors(client: TestClient, tenant: str) -> None:
    things, pages = walk(client, "Things", tenant=tenant, **{"$top": 1})
    assert pages == 2
    ids = [t["@iot.id"] for t in things]
    assert ids == [f"{tenant}:s-in", f"{tenant}:s~c2"]  # ':' in a part is escaped
    thing = get(client, f"Things('{tenant}:s-in')")
    assert thing["name"] == "s-in" and thing["properties"]["tenant"] == tenant
    assert thing["@iot.selfLink"].endswith(f"{STA}/Things('{tenant}:s-in')")
    located = get(client, f"Things('{tenant}:s-in')/Locations")["value"]
    assert len(located) == 1
    assert located[0]["encodingType"] == "application/geo+json"
    assert located[0]["location"] == {"type": "Point", "coordinates": [5.1, 52.1]}
    assert get(client, f"Things({key_literal(ids[1])})/Locations")["value"] == []
    back = get(client, f"Locations('{tenant}:s-in')/Things")["value"]
    assert [t["@iot.id"] for t in back] == [f"{tenant}:s-in"]
    sensors = get(client, "Sensors", tenant=tenant, **{"$count": "true"})
    assert sensors["@iot.count"] == 2
    assert get(client, f"Sensors('{tenant}:s-in')/Datastreams", **{"$count": "true"})[
        "@iot.count"
    ] == len(OFFSET)
    get(client, f"Things('{tenant}:nobody')", 404)


def test_datastreams_and_their_links(client: TestClient, tenant: str) -> None:
    streams = get(client, f"Things('{tenant}:s-in')/Datastreams", **{"$orderby": "name"})
    assert [d["properties"]["quantity"] for d in streams["value"]] == ["noise_level", "pm2_5"]
    pm = get(client, ds(tenant, "s-in", "pm2_5"))
    assert pm["unitOfMeasurement"]["symbol"] == "ug/m3"
    assert pm["observationType"].endswith("OM_Measurement")
    assert pm["observedArea"] == {"type": "Point", "coordinates": [5.1, 52.1]}
    for nav in ("Thing", "Sensor", "ObservedProperty", "Observations"):
        assert f"{nav}@iot.navigationLink" in pm
    assert get(client, f"{ds(tenant, 's-in', 'pm2_5')}/Thing")["@iot.id"] == f"{tenant}:s-in"
    assert get(client, f"{ds(tenant, 's-in', 'pm2_5')}/Sensor")["@iot.id"] == f"{tenant}:s-in"
    prop = get(client, f"{ds(tenant, 's-in', 'pm2_5')}/ObservedProperty")
    assert prop["@iot.id"] == "pm2_5" and prop["definition"]
    assert get(client, "ObservedProperties('pm2_5')")["name"] == "pm2_5"
    ours = get(client, "ObservedProperties('pm2_5')/Datastreams", tenant=tenant)["value"]
    assert {d["properties"]["sensor_id"] for d in ours} == set(SENSORS)


def test_paging_walks_every_observation_once(client: TestClient, tenant: str) -> None:
    path = f"{ds(tenant, 's:2', 'noise_level')}/Observations"
    rows, pages = walk(client, path, **{"$top": 5})
    assert pages == 3
    assert [r["result"] for r in rows] == [m + 100.5 for m in range(MINUTES)]
    assert len({r["@iot.id"] for r in rows}) == MINUTES
    counted = get(client, path, **{"$count": "true", "$top": 2})
    assert counted["@iot.count"] == MINUTES and len(counted["value"]) == 2
    skipped = get(client, path, **{"$skip": 10})
    assert [r["result"] for r in skipped["value"]] == [110.5, 111.5]
    assert "@iot.nextLink" not in skipped
    every, _ = walk(client, "Observations", tenant=tenant, **{"$filter": WINDOW, "$top": 7})
    keys = {r["@iot.id"] for r in every}
    assert len(every) == len(keys) == MINUTES * len(SENSORS) * len(OFFSET)


def test_observation_fields_and_single_reads(client: TestClient, tenant: str) -> None:
    rows = get(client, f"{ds(tenant, 's-in', 'pm2_5')}/Observations", **{"$top": 4})["value"]
    fourth = rows[3]
    assert fourth["phenomenonTime"] == _z(T0 + timedelta(minutes=3))
    assert fourth["resultTime"] is None  # not read: a second field per row doubles the cost
    assert fourth["result"] == 3.5 and fourth["resultQuality"] == ["spike"]
    assert fourth["parameters"]["location"]["coordinates"] == [5.1, 52.1]
    again = client.get(fourth["@iot.selfLink"])
    assert again.status_code == 200 and again.json() == fourth
    parent = client.get(fourth["Datastream@iot.navigationLink"]).json()
    assert parent["@iot.id"] == join_id(tenant, "s-in", "pm2_5")
    missing = fourth["@iot.id"].rsplit(":", 1)[0] + ":1"
    get(client, f"Observations('{missing}')", 404)


def test_orderby(client: TestClient, tenant: str) -> None:
    path = f"{ds(tenant, 's-in', 'pm2_5')}/Observations"
    newest = get(client, path, **{"$orderby": "phenomenonTime desc", "$top": 3})["value"]
    assert [r["result"] for r in newest] == [11.5, 10.5, 9.5]
    across = get(
        client, "Observations", tenant=tenant, **{"$filter": WINDOW, "$orderby": "result desc"}
    )["value"]
    assert [r["result"] for r in across] == [111.5, 111.5, 110.5, 110.5]
    get(client, path, 400, **{"$orderby": "phenomenonTime desc, result asc"})


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("result gt 3 and result lt 7 or result eq 10.5", [3.5, 4.5, 5.5, 6.5, 10.5]),
        ("(result lt 2 or result ge 10) and result ne 11.5", [0.5, 1.5, 10.5]),
        ("result le 1.5 or (result gt 5 and result lt 6) or result eq 999", [0.5, 1.5, 5.5]),
        (
            f"phenomenonTime ge {_z(T0 + timedelta(minutes=2))} and "
            f"phenomenonTime lt {_z(T0 + timedelta(minutes=5))}",
            [2.5, 3.5, 4.5],
        ),
        (
            f"phenomenonTime eq {_z(T0 + timedelta(minutes=7))} or "
            f"(phenomenonTime gt {_z(T0 + timedelta(minutes=9))} and result lt 11)",
            [7.5, 10.5],
        ),
        (f"phenomenonTime lt {_z(T0 - timedelta(days=1))}", []),
    ],
)
def test_filter_returns_exactly_the_matching_observations(
    client: TestClient, tenant: str, flt: str, expected: list[float]
) -> None:
    path = f"{ds(tenant, 's-in', 'pm2_5')}/Observations"
    body = get(client, path, **{"$filter": flt, "$count": "true", "$top": 50})
    assert [r["result"] for r in body["value"]] == expected
    assert body["@iot.count"] == len(expected)


def test_expand_one_level(client: TestClient, tenant: str) -> None:
    things = get(client, "Things", tenant=tenant, **{"$expand": "Datastreams,Locations"})
    by_id = {t["@iot.id"]: t for t in things["value"]}
    placed = by_id[f"{tenant}:s-in"]
    assert len(placed["Datastreams"]) == len(OFFSET) and len(placed["Locations"]) == 1
    assert by_id[f"{tenant}:s~c2"]["Locations"] == []
    stream = get(
        client,
        ds(tenant, "s-in", "pm2_5"),
        **{"$expand": "Observations($top=3;$orderby=phenomenonTime desc;$count=true),Thing"},
    )
    assert [o["result"] for o in stream["Observations"]] == [11.5, 10.5, 9.5]
    assert stream["Observations@iot.count"] == MINUTES
    assert stream["Thing"]["@iot.id"] == f"{tenant}:s-in"
    rest = client.get(stream["Observations@iot.nextLink"]).json()
    assert [o["result"] for o in rest["value"]] == [8.5, 7.5, 6.5]
    observations = get(
        client, f"{ds(tenant, 's:2', 'pm2_5')}/Observations", **{"$top": 1, "$expand": "Datastream"}
    )
    assert observations["value"][0]["Datastream"]["@iot.id"] == join_id(tenant, "s:2", "pm2_5")
    get(client, "Things", 400, **{"$expand": "Datastreams/Observations"})
    get(client, "Things", 400, **{"$expand": "Observations"})


def test_restricted_quantities_never_appear(client: TestClient, tenant: str) -> None:
    for path, params in (
        ("Things", {"$expand": "Datastreams"}),
        ("Datastreams", {"$top": 50}),
        ("ObservedProperties", {"$top": 50}),
        ("Observations", {"$filter": WINDOW, "$top": 50}),
    ):
        text = client.get(f"{STA}/{path}", params={"tenant": tenant, **params}).text
        assert "rssi" not in text, path
    get(client, ds(tenant, "s-in", "rssi"), 404)
    get(client, f"{ds(tenant, 's-in', 'rssi')}/Observations", 404)
    get(client, "ObservedProperties('rssi')", 404)
    stamp = int(T0.timestamp()) * 10**9
    get(client, f"Observations({key_literal(join_id(tenant, 's-in', 'rssi', str(stamp)))})", 404)
    pm = get(client, f"Observations({key_literal(join_id(tenant, 's-in', 'pm2_5', str(stamp)))})")
    assert pm["result"] == 0.5  # the same id shape finds an open reading


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("Observations", {"$filter": 'result gt 1) |> drop(columns: ["tenant"])'}, 400),
        ("Observations", {"$filter": 'result gt 1 or r.tenant == "x"'}, 400),
        ("Observations", {"$filter": "result gt 'x'"}, 400),
        ("Observations", {"$filter": "phenomenonTime gt 2020-01-01T00:00:00Z"}, 400),
        ("Observations", {"$select": "result"}, 400),
        ("Observations", {"$top": "100000"}, 400),
        ("Observations", {"$top": ["1", "2"]}, 400),
        ("Things", {"$filter": "result gt 1"}, 400),
        ("Things", {"tenant": "a b"}, 400),
        ("Things(unquoted)", {}, 400),
        ("Datastreams('only-one-part')/Observations", {}, 400),
        ("Observations('a:b:c:soon')", {}, 400),
        ("HistoricalLocations", {}, 404),
        ("Things('x')/Observations", {}, 404),
    ],
)
def test_bad_input_is_a_4xx_problem(
    client: TestClient, tenant: str, path: str, params: dict[str, Any], status: int
) -> None:
    body = get(client, path, status, **params)
    if status >= 400:
        assert body["status"] == status and body["detail"]
        text = str(body).lower()
        for leak in ("flux", "traceback", "influx", tenant):
            assert leak not in text
