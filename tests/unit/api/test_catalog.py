"""The DCAT-AP catalogue's pure parts: themes, extents, dataset entries, the JSON-LD graph."""

from __future__ import annotations

import json
from datetime import date

from api.bulk import DayCount
from api.catalog import (
    CATALOG_EXAMPLE,
    BBox,
    CatalogMeta,
    DatasetEntry,
    bbox_of,
    catalog_document,
    dataset_entries,
    theme_of,
)
from api.sensors import QuantityInfo, Sensor, SensorLocation

META = CatalogMeta(
    base_url="https://data.example.org",
    title="Open data",
    publisher_name="Town",
    publisher_url="",
    contact_email="data@town.example",
    licence_url="https://creativecommons.org/licenses/by/4.0/",
)


def sensor(tenant: str, sensor_id: str, quantity: str, lat: float | None, lon: float) -> Sensor:
    place = SensorLocation(lat=lat, lon=lon) if lat is not None else None
    return Sensor(
        id=sensor_id, tenant=tenant, quantities=[QuantityInfo(quantity=quantity)], location=place
    )


def test_themes() -> None:
    assert theme_of("pm2_5") == "ENVI"
    assert theme_of("vehicle_count") == "TRAN"
    assert theme_of("power") == "ENER"
    assert theme_of("colour_red") == "TECH"


def test_bbox_ignores_sensors_without_position() -> None:
    found = bbox_of(
        [sensor("t", "a", "pm2_5", 52.0, 5.0), sensor("t", "b", "pm2_5", None, 0.0),
         sensor("t", "c", "pm2_5", 52.5, 4.5)]
    )  # fmt: skip
    assert found == BBox(west=4.5, south=52.0, east=5.0, north=52.5)
    assert found.wkt() == "POLYGON((4.5 52.0, 5.0 52.0, 5.0 52.5, 4.5 52.5, 4.5 52.0))"
    assert bbox_of([sensor("t", "b", "pm2_5", None, 0.0)]) is None


def test_dataset_entries_join_counts_and_sensors() -> None:
    counts = [
        DayCount("t", "pm2_5", date(2026, 11, 20), 5),
        DayCount("t", "pm2_5", date(2026, 11, 27), 2),
        DayCount("t", "pm2_5", date(2026, 11, 22), 9),
    ]
    sensors = [sensor("t", "a", "pm2_5", 52.0, 5.0), sensor("u", "b", "noise_level", 1.0, 2.0)]
    entries = dataset_entries(counts, lambda d: d < date(2026, 11, 27), sensors)
    assert entries == [
        DatasetEntry("t", "pm2_5", date(2026, 11, 20), date(2026, 11, 27), date(2026, 11, 22),
                     BBox(5.0, 52.0, 5.0, 52.0)),
        DatasetEntry("u", "noise_level", None, None, None, BBox(2.0, 1.0, 2.0, 1.0)),
    ]  # fmt: skip


def nodes(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    graph = doc["@graph"]
    assert isinstance(graph, list)
    return {n["@id"]: n for n in graph if "@id" in n}


def test_document_links_catalogue_datasets_and_service() -> None:
    entry = DatasetEntry("a b", "pm2_5", date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 1))
    found = nodes(catalog_document(META, [entry]))
    catalog = found["https://data.example.org/v1/catalog"]
    ds_iri = "https://data.example.org/v1/catalog#a%20b/pm2_5"  # the tenant is encoded
    assert catalog["dcat:dataset"] == [{"@id": ds_iri}]
    dataset = found[ds_iri]
    assert "dct:spatial" not in dataset  # no sensor of known position
    assert dataset["dct:temporal"]["dcat:startDate"]["@value"] == "2026-11-01"  # type: ignore[index]
    dists = dataset["dcat:distribution"]
    assert isinstance(dists, list)
    bulk = next(d for d in dists if d["@id"].endswith("/bulk"))
    assert bulk["dcat:downloadURL"] == {
        "@id": "https://data.example.org/v1/bulk/a%20b/pm2_5/2026-11-01.csv.gz"
    }
    csv = next(d for d in dists if d["@id"].endswith("/csv"))
    assert csv["dcat:accessURL"] == {
        "@id": "https://data.example.org/v1/observations?tenant=a+b&quantity=pm2_5&format=csv"
    }
    # Every IRI a shape constrains by class is typed in the document itself.
    for iri, kind in (
        ("https://creativecommons.org/licenses/by/4.0/", "dct:LicenseDocument"),
        ("http://publications.europa.eu/resource/authority/data-theme/ENVI", "skos:Concept"),
        ("http://publications.europa.eu/resource/authority/file-type/CSV", "dct:MediaTypeOrExtent"),
        ("https://www.iana.org/assignments/media-types/text/csv", "dct:MediaType"),
        ("https://www.iana.org/assignments/media-types/application/gzip", "dct:MediaType"),
        ("http://publications.europa.eu/resource/authority/frequency/CONT", "dct:Frequency"),
        ("https://data.example.org/v1/catalog#publisher", "foaf:Agent"),
        ("https://data.example.org/v1/catalog#contact", "vcard:Kind"),
    ):
        assert found[iri]["@type"] == kind, iri


def test_example_is_plain_json() -> None:
    assert json.loads(json.dumps(CATALOG_EXAMPLE)) == CATALOG_EXAMPLE
