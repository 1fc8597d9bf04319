"""The DCAT-AP 3 catalogue of the open data, as JSON-LD (``GET /v1/catalog``).

One ``dcat:Dataset`` per tenant and open quantity: that is the unit a re-user looks for ("air
temperature in Springfield"), the unit of the bulk files, and the unit every endpoint filters
by (``?tenant=&quantity=``). Each dataset has the distributions the API offers for it (raw
readings as CSV, JSON and GeoJSON, hourly aggregates as CSV, daily gzip CSV files), all served
by one ``dcat:DataService``: the API, described by its OpenAPI document.

Spatial coverage is the bounding box of the sensors that reported the quantity recently;
temporal coverage the first and last UTC day with readings among the days bulk files are
offered for. Everything a DCAT-AP SHACL shape constrains by class (licence, themes, formats,
media types) is typed in the graph itself, so the document validates on its own.

The graph is built by pure functions (:func:`catalog_document`); the route only gathers the
inputs and caches the answer for ``api.catalog_cache_s`` (it changes rarely).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response

from api.bulk import DailyCounts, DayCount, base_url, file_path
from api.cache import Rendered, TtlCache, answer_cache, render_json, respond
from api.sensors import Sensor
from urbanpulse.model import ID_PATTERN
from urbanpulse.quantities import QUANTITIES
from urbanpulse.settings import ApiSettings

JSONLD_MEDIA_TYPE = "application/ld+json"
DCAT_AP = "http://data.europa.eu/r5r/"  # DCAT-AP's namespace: what the catalogue conforms to
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
}

# EU data themes (http://publications.europa.eu/resource/authority/data-theme) by quantity;
# a quantity in none of these sets is "Science and technology" (generic device channels).
THEME_LABELS = {
    "ENVI": "Environment",
    "TRAN": "Transport",
    "ENER": "Energy",
    "TECH": "Science and technology",
}
TRANSPORT = frozenset({"occupancy", "vehicle_count", "bicycle_count"})
ENERGY = frozenset({"voltage", "current", "power", "energy", "frequency"})
ENVIRONMENT = frozenset(
    {
        "temperature",
        "relative_humidity",
        "pressure",
        "dew_point",
        "wind_speed",
        "wind_direction",
        "precipitation",
        "illuminance",
        "uv_index",
        "pm1",
        "pm2_5",
        "pm4",
        "pm10",
        "co2",
        "co",
        "no2",
        "o3",
        "so2",
        "voc_index",
        "concentration",
        "noise_level",
        "water_level",
        "fill_level",
        "soil_moisture",
        "soil_temperature",
        "volumetric_water_content",
        "dielectric_permittivity",
    }
)


@dataclass(frozen=True)
class Distribution:
    """One way to get a dataset: an API query or the daily files (constants)."""

    key: str
    title: str
    path: str
    extra: tuple[tuple[str, str], ...]
    file_type: str  # EU file-type code
    media_type: str  # IANA media type
    compressed: bool = False


DISTRIBUTIONS = (
    Distribution("csv", "Raw readings (CSV)", "/v1/observations", (("format", "csv"),), "CSV",
                 "text/csv"),
    Distribution("json", "Raw readings (JSON)", "/v1/observations", (("format", "json"),),
                 "JSON", "application/json"),
    Distribution("geojson", "Raw readings (GeoJSON)", "/v1/observations",
                 (("format", "geojson"),), "GEOJSON", "application/geo+json"),
    Distribution("hourly-csv", "Hourly aggregates: count, mean, min, max, last (CSV)",
                 "/v1/aggregates", (("window", "1h"), ("format", "csv")), "CSV", "text/csv"),
    Distribution("bulk", "Daily files of raw readings (gzip CSV)", "/v1/bulk", (), "CSV",
                 "text/csv", compressed=True),
)  # fmt: skip


@dataclass(frozen=True)
class BBox:
    """The extent of a dataset's sensors (WGS 84 degrees)."""

    west: float
    south: float
    east: float
    north: float

    def wkt(self) -> str:
        """The box as a WKT polygon (longitude first, as WKT in CRS84 has it)."""
        w, s, e, n = self.west, self.south, self.east, self.north
        return f"POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"


@dataclass(frozen=True)
class DatasetEntry:
    """What the catalogue says about one tenant's quantity."""

    tenant: str
    quantity: str
    first_day: date | None = None
    last_day: date | None = None
    last_final_day: date | None = None  # newest day whose bulk file is final
    bbox: BBox | None = None


@dataclass(frozen=True)
class CatalogMeta:
    """The catalogue's fixed facts: where it lives, who publishes, under which licence."""

    base_url: str
    title: str
    publisher_name: str
    publisher_url: str
    contact_email: str
    licence_url: str


def theme_of(quantity: str) -> str:
    """The EU data theme code of a quantity."""
    if quantity in TRANSPORT:
        return "TRAN"
    if quantity in ENERGY:
        return "ENER"
    if quantity in ENVIRONMENT:
        return "ENVI"
    return "TECH"


def bbox_of(sensors: Iterable[Sensor]) -> BBox | None:
    """The bounding box of the sensors of known position, None when there are none."""
    places = [s.location for s in sensors if s.location is not None]
    if not places:
        return None
    lats, lons = [p.lat for p in places], [p.lon for p in places]
    return BBox(min(lons), min(lats), max(lons), max(lats))


def dataset_entries(
    counts: Iterable[DayCount], final: Callable[[date], bool], sensors: Iterable[Sensor]
) -> list[DatasetEntry]:
    """One entry per tenant and quantity seen in the daily counts or among recent sensors."""
    days: dict[tuple[str, str], list[date]] = {}
    for count in counts:
        days.setdefault((count.tenant, count.quantity), []).append(count.day)
    reporting: dict[tuple[str, str], list[Sensor]] = {}
    for sensor in sensors:
        for info in sensor.quantities:
            reporting.setdefault((sensor.tenant, info.quantity), []).append(sensor)
    entries = []
    for tenant, quantity in sorted(days.keys() | reporting.keys()):
        seen = sorted(days.get((tenant, quantity), []))
        done = [d for d in seen if final(d)]
        entries.append(
            DatasetEntry(
                tenant,
                quantity,
                first_day=seen[0] if seen else None,
                last_day=seen[-1] if seen else None,
                last_final_day=done[-1] if done else None,
                bbox=bbox_of(reporting.get((tenant, quantity), [])),
            )
        )
    return entries


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri}


def _en(text: str) -> dict[str, str]:
    return {"@value": text, "@language": "en"}


def _typed(value: str, datatype: str) -> dict[str, str]:
    return {"@value": value, "@type": datatype}


def catalog_document(meta: CatalogMeta, entries: list[DatasetEntry]) -> dict[str, Any]:
    """The DCAT-AP 3 catalogue as a JSON-LD document (``@context`` and ``@graph``)."""
    base = meta.base_url
    catalog_iri = f"{base}/v1/catalog"
    service_iri = f"{catalog_iri}#api"
    publisher_iri = meta.publisher_url or f"{catalog_iri}#publisher"
    contact_iri = f"{catalog_iri}#contact"
    common = {
        "dct:publisher": _ref(publisher_iri),
        "dcat:contactPoint": _ref(contact_iri),
    }
    datasets = [_dataset(meta, entry, service_iri, common) for entry in entries]
    themes = sorted({theme_of(e.quantity) for e in entries})
    nodes: list[dict[str, Any]] = [
        {
            "@id": catalog_iri,
            "@type": "dcat:Catalog",
            "dct:title": _en(meta.title),
            "dct:description": _en(
                "Readings of a city's sensors (air quality, weather, noise, traffic, water and "
                "more), one dataset per municipality and quantity, published by "
                f"{meta.publisher_name} as open data."
            ),
            "dct:publisher": _ref(publisher_iri),
            "dct:license": _ref(meta.licence_url),
            "dct:language": _ref(f"{EU}language/ENG"),
            "dct:conformsTo": _ref(DCAT_AP),
            "foaf:homepage": _ref(f"{base}/docs"),
            "dcat:themeTaxonomy": _ref(f"{EU}data-theme"),
            "dcat:service": _ref(service_iri),
            "dcat:dataset": [_ref(d["@id"]) for d in datasets],
        },
        {
            "@id": service_iri,
            "@type": "dcat:DataService",
            "dct:title": _en(f"{meta.title}: open-data API"),
            "dct:description": _en(
                "HTTP API of raw readings, window aggregates, sensors, alerts and daily files, "
                "as JSON, CSV, GeoJSON and JSON Lines."
            ),
            "dcat:endpointURL": _ref(f"{base}/"),
            "dcat:endpointDescription": _ref(f"{base}/openapi.json"),
            "dct:license": _ref(meta.licence_url),
            "dcat:servesDataset": [_ref(d["@id"]) for d in datasets],
            **common,
        },
        _publisher(meta, publisher_iri),
        {
            "@id": contact_iri,
            "@type": "vcard:Kind",
            "vcard:fn": meta.publisher_name,
            "vcard:hasEmail": _ref(f"mailto:{meta.contact_email}"),
        },
        {"@id": meta.licence_url, "@type": "dct:LicenseDocument"},
        {"@id": f"{EU}language/ENG", "@type": "dct:LinguisticSystem"},
        {"@id": DCAT_AP, "@type": "dct:Standard"},
        {"@id": f"{base}/docs", "@type": "foaf:Document"},
        {"@id": f"{base}/", "@type": "rdfs:Resource"},
        {"@id": f"{base}/openapi.json", "@type": "rdfs:Resource"},
        {
            "@id": f"{EU}data-theme",
            "@type": "skos:ConceptScheme",
            "dct:title": _en("Data theme"),
        },
        *(_theme(code) for code in themes),
        *_vocabulary(),
        *datasets,
    ]
    return {"@context": CONTEXT, "@graph": nodes}


def _publisher(meta: CatalogMeta, iri: str) -> dict[str, Any]:
    agent: dict[str, Any] = {"@id": iri, "@type": "foaf:Agent", "foaf:name": meta.publisher_name}
    if meta.publisher_url:
        agent["foaf:homepage"] = _ref(meta.publisher_url)
    return agent


def _theme(code: str) -> dict[str, Any]:
    return {
        "@id": f"{EU}data-theme/{code}",
        "@type": "skos:Concept",
        "skos:prefLabel": _en(THEME_LABELS[code]),
        "skos:inScheme": _ref(f"{EU}data-theme"),
    }


def _vocabulary() -> list[dict[str, Any]]:
    """The file types and media types the distributions name, typed as DCAT-AP wants."""
    file_types = sorted({d.file_type for d in DISTRIBUTIONS})
    media = sorted({d.media_type for d in DISTRIBUTIONS} | {"application/gzip"})
    return [
        *(
            {"@id": f"{EU}file-type/{code}", "@type": "dct:MediaTypeOrExtent"}
            for code in file_types
        ),
        *({"@id": f"{IANA}{name}", "@type": "dct:MediaType"} for name in media),
        {"@id": f"{EU}frequency/CONT", "@type": "dct:Frequency"},
    ]


def _dataset(
    meta: CatalogMeta, entry: DatasetEntry, service_iri: str, common: dict[str, Any]
) -> dict[str, Any]:
    known = QUANTITIES.get(entry.quantity)
    what = (known.description or entry.quantity.replace("_", " ")) if known else entry.quantity
    unit = f" in {known.unit} (UCUM)" if known else ""
    iri = f"{meta.base_url}/v1/catalog#{quote(entry.tenant, safe='')}/{entry.quantity}"
    node: dict[str, Any] = {
        "@id": iri,
        "@type": "dcat:Dataset",
        "dct:identifier": f"{entry.tenant}/{entry.quantity}",
        "dct:title": _en(f"{what.capitalize()}, {entry.tenant}"),
        "dct:description": _en(
            f"Readings of {what} ({entry.quantity}){unit} from the sensors of {entry.tenant}, "
            "each with time, sensor, position and quality flags; also as hourly aggregates "
            "and daily files."
        ),
        "dcat:keyword": [entry.quantity, entry.tenant],
        "dcat:theme": _ref(f"{EU}data-theme/{theme_of(entry.quantity)}"),
        "dct:accrualPeriodicity": _ref(f"{EU}frequency/CONT"),
        "dcat:distribution": [
            _distribution(meta, entry, d, iri, service_iri) for d in DISTRIBUTIONS
        ],
        **common,
    }
    if entry.bbox is not None:
        node["dct:spatial"] = {
            "@type": "dct:Location",
            "dcat:bbox": _typed(entry.bbox.wkt(), "gsp:wktLiteral"),
        }
    if entry.first_day is not None and entry.last_day is not None:
        node["dct:temporal"] = {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": _typed(entry.first_day.isoformat(), "xsd:date"),
            "dcat:endDate": _typed(entry.last_day.isoformat(), "xsd:date"),
        }
    return node


def _distribution(
    meta: CatalogMeta, entry: DatasetEntry, dist: Distribution, dataset_iri: str, service_iri: str
) -> dict[str, Any]:
    query = urlencode((("tenant", entry.tenant), ("quantity", entry.quantity), *dist.extra))
    node: dict[str, Any] = {
        "@id": f"{dataset_iri}/{dist.key}",
        "@type": "dcat:Distribution",
        "dct:title": _en(dist.title),
        "dcat:accessURL": _ref(f"{meta.base_url}{dist.path}?{query}"),
        "dcat:accessService": _ref(service_iri),
        "dct:format": _ref(f"{EU}file-type/{dist.file_type}"),
        "dcat:mediaType": _ref(f"{IANA}{dist.media_type}"),
        "dct:license": _ref(meta.licence_url),
    }
    if dist.compressed:
        node["dcat:compressFormat"] = _ref(f"{IANA}application/gzip")
        if entry.last_final_day is not None:  # the newest complete day, as a direct download
            path = file_path(entry.tenant, entry.quantity, entry.last_final_day)
            node["dcat:downloadURL"] = _ref(meta.base_url + path)
    return node


def catalog_router(
    api: ApiSettings, counts: DailyCounts, sensors: Callable[[str | None], list[Sensor]]
) -> APIRouter:
    """The ``/v1/catalog`` route."""
    router = APIRouter(tags=["catalogue"])
    # Rendered once per cache period (bytes, ETag, gzip): a hit does no query and no work.
    cache: TtlCache[Rendered] = answer_cache(api.catalog_cache_s, api)

    def build(base: str, tenant: str | None) -> Rendered:
        meta = CatalogMeta(
            base_url=base,
            title=api.catalog_title,
            publisher_name=api.publisher_name,
            publisher_url=api.publisher_url,
            contact_email=api.contact_email,
            licence_url=api.catalog_licence_url,
        )
        days = [c for c in counts.all() if tenant in (None, c.tenant)]
        entries = dataset_entries(days, counts.is_final, sensors(tenant))
        return render_json(catalog_document(meta, entries), api.gzip_min_bytes)

    @router.get(
        "/v1/catalog",
        response_model=None,
        responses={
            200: {
                "description": "a dcat:Catalog with one dcat:Dataset per tenant and quantity",
                "content": {
                    JSONLD_MEDIA_TYPE: {
                        "schema": {"type": "object"},
                        "example": CATALOG_EXAMPLE,
                    }
                },
            }
        },
    )
    def catalog(
        request: Request,
        tenant: Annotated[
            str | None,
            Query(
                pattern=ID_PATTERN,
                description="only this tenant's datasets (one town's own catalogue)",
                examples=["demo"],
            ),
        ] = None,
    ) -> Response:
        """The open data as a DCAT-AP 3 catalogue (JSON-LD), for data portals to harvest.

        One `dcat:Dataset` per tenant and open quantity, with its spatial extent (bounding box
        of its sensors), time span, theme, licence, publisher, contact, and distributions:
        the API's CSV, JSON and GeoJSON queries and the daily bulk files.
        """
        base = base_url(api, request)
        rendered = cache.get((base, tenant), lambda: build(base, tenant))
        return respond(
            request, rendered, media_type=JSONLD_MEDIA_TYPE, max_age=int(api.catalog_cache_s)
        )

    return router


CATALOG_EXAMPLE = catalog_document(
    CatalogMeta(
        base_url="https://data.example.org",
        title="UrbanPulse open sensor data",
        publisher_name="City of Example",
        publisher_url="https://www.example.org",
        contact_email="opendata@example.org",
        licence_url="https://creativecommons.org/licenses/by/4.0/",
    ),
    [
        DatasetEntry(
            "demo",
            "pm2_5",
            date(2026, 10, 28),
            date(2026, 11, 27),
            date(2026, 11, 26),
            BBox(5.05, 52.05, 5.15, 52.12),
        )
    ],
)
