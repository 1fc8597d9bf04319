"""The DCAT-AP 3 catalogue (/v1/catalog) on real InfluxDB, checked with the official shapes.

The JSON-LD is parsed with rdflib and validated with pyshacl against DCAT-AP 3.0.1's SHACL
shapes together with its range shapes (``../shared/schemas/dcat-ap/``). The two files are one
set: the main file names property shapes that only the ranges file defines, and the ranges file
names five that neither defines (upstream defects of the 3.0.1 release). pyshacl refuses a
shapes graph with such dangling references, so they are dropped before validating, and the test
insists there are no more than those five.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyshacl import validate
from rdflib import RDF, Graph, Literal, Namespace, URIRef

from api.app import create_app
from streams.influx_writer import InfluxWriter
from tests.support import unique
from urbanpulse.model import Location, Reading
from urbanpulse.settings import ApiSettings, Settings

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
SH = Namespace("http://www.w3.org/ns/shacl#")
SHAPES = ("dcat-ap-3.0.1-SHACL.ttl", "dcat-ap-3.0.1-ranges.ttl")
KNOWN_DANGLING = 5  # property shapes DCAT-AP 3.0.1 references but does not define
BASE = "https://data.example.org"
LICENCE = "https://data.europa.eu/licence/test"

NOW = datetime.now(UTC)
DAYS = ((NOW - timedelta(days=3)).date(), (NOW - timedelta(days=1)).date())
PLACES = {"c-1": Location(lat=52.05, lon=5.05), "c-2": Location(lat=52.15, lon=5.20)}


@pytest.fixture(scope="session")
def shapes(shared_dir: Path) -> Graph:
    folder = shared_dir / "schemas" / "dcat-ap"
    if not all((folder / name).is_file() for name in SHAPES):
        pytest.skip(f"needs the DCAT-AP SHACL shapes in {folder}")
    graph = Graph()
    for name in SHAPES:
        graph.parse(folder / name)
    dangling = [
        (shape, prop)
        for shape, prop in graph.subject_objects(SH.property)
        if graph.value(prop, SH.path) is None
    ]
    assert len(dangling) <= KNOWN_DANGLING, f"more undefined property shapes: {dangling}"
    for shape, prop in dangling:
        graph.remove((shape, SH.property, prop))
    return graph


def readings(tenant: str) -> list[Reading]:
    out = []
    for day in DAYS:
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        for sensor, place in PLACES.items():
            for quantity, unit in (
                ("pm2_5", "ug/m3"),
                ("vehicle_count", "{count}"),
                ("rssi", "dB[mW]"),
            ):
                out.append(
                    Reading(
                        tenant=tenant,
                        sensor_id=sensor,
                        quantity=quantity,
                        value=3.0,
                        unit=unit,
                        observed_at=at,
                        received_at=at,
                        location=place,
                        source_format="json",
                        message_id=f"{sensor}-{quantity}-{day}",
                    )
                )
    return out


@pytest.fixture(scope="module")
def tenant() -> str:
    name = unique("dcat")
    writer = InfluxWriter(Settings().influx)
    writer.write(readings(name))
    writer.close()
    return name


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    api = ApiSettings(
        public_base_url=BASE,
        publisher_name="City of Testville",
        publisher_url="https://www.testville.example",
        contact_email="data@testville.example",
        catalog_licence_url=LICENCE,
        bulk_days=7,
    )
    with TestClient(create_app(Settings(api=api))) as test_client:
        yield test_client


def catalogue(client: TestClient, tenant: str | None) -> Graph:
    response = client.get("/v1/catalog", params={"tenant": tenant} if tenant else None)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    assert response.headers["etag"]
    return Graph().parse(data=response.text, format="json-ld")


def conforms(graph: Graph, shapes: Graph) -> tuple[bool, str]:
    ok, _, report = validate(graph, shacl_graph=shapes)
    return bool(ok), str(report)


def dataset(tenant: str, quantity: str) -> URIRef:
    return URIRef(f"{BASE}/v1/catalog#{tenant}/{quantity}")


def test_catalogue_conforms_to_dcat_ap(client: TestClient, tenant: str, shapes: Graph) -> None:
    graph = catalogue(client, tenant)
    ok, report = conforms(graph, shapes)
    print(graph.serialize(format="turtle") if not ok else "")
    assert ok, report


def test_catalogue_describes_the_tenants_data(client: TestClient, tenant: str) -> None:
    graph = catalogue(client, tenant)
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert datasets == {dataset(tenant, "pm2_5"), dataset(tenant, "vehicle_count")}  # no rssi
    pm = dataset(tenant, "pm2_5")
    themes = {str(t).rsplit("/", 1)[1] for t in graph.objects(pm, DCAT.theme)}
    assert themes == {"ENVI"}
    assert {
        str(t).rsplit("/", 1)[1]
        for t in graph.objects(dataset(tenant, "vehicle_count"), DCAT.theme)
    } == {"TRAN"}
    bbox = graph.value(graph.value(pm, DCT.spatial), DCAT.bbox)
    assert str(bbox) == "POLYGON((5.05 52.05, 5.2 52.05, 5.2 52.15, 5.05 52.15, 5.05 52.05))"
    period = graph.value(pm, DCT.temporal)
    assert graph.value(period, DCAT.startDate) == Literal(DAYS[0])
    assert graph.value(period, DCAT.endDate) == Literal(DAYS[1])
    assert graph.value(pm, DCAT.contactPoint) is not None
    publisher = graph.value(pm, DCT.publisher)
    assert str(graph.value(publisher, FOAF.name)) == "City of Testville"
    catalog = graph.value(None, RDF.type, DCAT.Catalog)
    assert str(graph.value(catalog, DCT.license)) == LICENCE
    urls = {
        str(u)
        for d in graph.objects(pm, DCAT.distribution)
        for u in graph.objects(d, DCAT.accessURL)
    }
    assert f"{BASE}/v1/observations?tenant={tenant}&quantity=pm2_5&format=csv" in urls
    downloads = {
        str(u)
        for d in graph.objects(pm, DCAT.distribution)
        for u in graph.objects(d, DCAT.downloadURL)
    }
    assert downloads == {f"{BASE}/v1/bulk/{tenant}/pm2_5/{DAYS[1]}.csv.gz"}
    service = graph.value(None, RDF.type, DCAT.DataService)
    assert str(graph.value(service, DCAT.endpointDescription)) == f"{BASE}/openapi.json"
    # The download link in the catalogue works.
    path = next(iter(downloads)).removeprefix(BASE)
    assert client.get(path).status_code == 200


def test_whole_catalogue_lists_every_tenant(client: TestClient, tenant: str) -> None:
    graph = catalogue(client, None)
    assert dataset(tenant, "pm2_5") in set(graph.subjects(RDF.type, DCAT.Dataset))


def test_missing_mandatory_property_is_reported(
    client: TestClient, tenant: str, shapes: Graph
) -> None:
    """The check can fail: a dataset without its mandatory dct:title violates DCAT-AP."""
    graph = catalogue(client, tenant)
    pm = dataset(tenant, "pm2_5")
    assert graph.value(pm, DCT.title) is not None
    graph.remove((pm, DCT.title, None))
    ok, results, report = validate(graph, shacl_graph=shapes)
    assert not ok
    violations = {
        (
            results.value(r, SH.focusNode),
            results.value(r, SH.resultPath),
            results.value(r, SH.sourceConstraintComponent),
        )
        for r in results.subjects(RDF.type, SH.ValidationResult)
    }
    assert violations == {(pm, DCT.title, SH.MinCountConstraintComponent)}, report


def test_catalogue_as_example_in_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/v1/catalog"]["get"]["responses"]["200"]["content"]
    example = content["application/ld+json"]["example"]
    assert Graph().parse(data=json.dumps(example), format="json-ld")
