"""The SensorThings API 1.1 routes (read-only subset) under ``/sta/v1.1``.

One route reads every resource path (``Things``, ``Things('id')``, ``Things('id')/Datastreams``
…): :func:`parse_path` splits it, the entity sets come from the recently reporting sensors
(:mod:`api.sta.entities`, no query per entity), Observations from InfluxDB
(:mod:`api.sta.store`). Errors are the API's problem+json: 400 for a query we cannot answer as
asked, 404 for an unknown entity; only open quantities exist here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, HTTPException, Path, Request, Response

from api.http import json_response
from api.params import BadQuery
from api.privacy import OPEN_QUANTITIES, is_open
from api.sensors import Sensor as PlatformSensor
from api.sta.entities import Catalogue, Entity, catalogue, observation
from api.sta.flux import ORDERABLE, ObservationQuery
from api.sta.ids import from_epoch_ns, join_id, observation_key, parse_key, split_id
from api.sta.openapi import RESOURCE_EXAMPLES, RESOURCE_OPENAPI, resource_pattern
from api.sta.query import Options, parse_options, parse_orderby, time_bounds
from api.sta.store import InfluxObservations, ObservationSource
from urbanpulse.model import ID_PATTERN
from urbanpulse.settings import Settings

PREFIX = "/sta/v1.1"
SETS = ("Things", "Locations", "Sensors", "ObservedProperties", "Datastreams", "Observations")
# (entity set, navigation property) → (target set, True when it leads to a collection)
NAV: dict[tuple[str, str], tuple[str, bool]] = {
    ("Things", "Datastreams"): ("Datastreams", True),
    ("Things", "Locations"): ("Locations", True),
    ("Locations", "Things"): ("Things", True),
    ("Sensors", "Datastreams"): ("Datastreams", True),
    ("ObservedProperties", "Datastreams"): ("Datastreams", True),
    ("Datastreams", "Thing"): ("Things", False),
    ("Datastreams", "Sensor"): ("Sensors", False),
    ("Datastreams", "ObservedProperty"): ("ObservedProperties", False),
    ("Datastreams", "Observations"): ("Observations", True),
    ("Observations", "Datastream"): ("Datastreams", False),
}
RESOURCE_PATTERN = resource_pattern(SETS, sorted({nav for _, nav in NAV}))
_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((.*)\))?$", re.DOTALL)
_TENANT = re.compile(ID_PATTERN)
_TICK = timedelta(microseconds=1)
Series = tuple[str, str, str]


@dataclass(frozen=True)
class ResourcePath:
    """``Set``, ``Set(key)`` or ``Set(key)/Nav``."""

    entity_set: str
    key: str | None = None
    nav: str | None = None


def parse_path(path: str) -> ResourcePath:
    """Split a resource path; BadQuery for what this service does not serve."""
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise BadQuery("a path is Set, Set('id') or Set('id')/Navigation")
    found = _SEGMENT.match(parts[0])
    if found is None or found.group(1) not in SETS:
        raise LookupError(f"no entity set {parts[0]!r}; this service has {', '.join(SETS)}")
    entity_set, key_text = found.groups()
    key = parse_key(key_text) if key_text is not None else None
    if len(parts) == 1:
        return ResourcePath(entity_set, key)
    if key is None:
        raise BadQuery("navigation needs one entity: Set('id')/Navigation")
    if (entity_set, parts[1]) not in NAV:
        navs = [nav for (s, nav) in NAV if s == entity_set]
        raise LookupError(f"{entity_set} has no {parts[1]!r}; it links to {', '.join(navs)}")
    return ResourcePath(entity_set, key, parts[1])


def sta_router(
    settings: Settings,
    sensors: Callable[[str | None], list[PlatformSensor]],
    source: ObservationSource | None = None,
) -> APIRouter:
    """The ``/sta/v1.1`` routes; ``sensors(tenant)`` lists the recently reporting sensors."""
    api = settings.api
    store: ObservationSource = source or InfluxObservations(settings.influx)
    router = APIRouter(prefix=PREFIX, tags=["SensorThings"])

    @router.get("", summary="SensorThings service root: the entity sets")
    def root(request: Request) -> Response:
        """The entity sets served, each with its URL (SensorThings 1.1 service root)."""
        base = _base(request)
        body = {
            "value": [{"name": name, "url": f"{base}/{name}"} for name in SETS],
            "serverSettings": {"conformance": []},
        }
        return json_response(request, body, media_type="application/json", max_age=3600)

    @router.get(
        "/{resource:path}",
        summary="SensorThings entities, collections and navigation",
        openapi_extra=RESOURCE_OPENAPI,
    )
    def resource(
        request: Request,
        resource: str = Path(
            max_length=2000,
            examples=RESOURCE_EXAMPLES,
            # documented, not enforced here: parse_path says what is wrong, as a 400 or 404
            json_schema_extra={"pattern": RESOURCE_PATTERN},
        ),
    ) -> Response:
        """Things, Locations, Sensors, ObservedProperties, Datastreams and Observations.

        `Set`, `Set('id')`, `Set('id')/Navigation`; options `$top`, `$skip`, `$count`,
        `$orderby`, `$filter` (Observations: phenomenonTime and result), `$expand` (one
        level); `tenant` narrows to one tenant (an UrbanPulse extension). See docs/api.md.
        """
        if resource.strip("/") == "":
            return root(request)
        try:
            path = parse_path(resource)
            reader = _Reader(
                request, api.sta_default_top, api.sta_max_top, store, settings, sensors
            )
            body = reader.answer(path)
        except BadQuery as err:
            raise HTTPException(400, str(err)) from None
        except LookupError as err:
            raise HTTPException(404, str(err)) from None
        return json_response(
            request, body, media_type="application/json", max_age=api.cache_max_age_s
        )

    return router


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _single_values(request: Request) -> dict[str, str]:
    raw: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in raw:
            raise BadQuery(f"query option {name} is given twice")
        raw[name] = value
    return raw


class _Reader:
    """Answers one request: resolves the path, applies the options, renders the JSON."""

    def __init__(
        self,
        request: Request,
        default_top: int,
        max_top: int,
        store: ObservationSource,
        settings: Settings,
        sensors: Callable[[str | None], list[PlatformSensor]],
    ) -> None:
        self.request = request
        self.raw = _single_values(request)
        self.tenant = self.raw.get("tenant")
        if self.tenant is not None and not _TENANT.match(self.tenant):
            raise HTTPException(400, "'tenant' is not a valid tenant id")
        self.default_top, self.max_top = default_top, max_top
        self.store = store
        self.settings = settings
        self.now = datetime.now(UTC)
        self.base = _base(request)
        self.cat: Catalogue = catalogue(
            self.base, sensors(self.tenant), OPEN_QUANTITIES, str(request.base_url).rstrip("/")
        )

    def options(self, raw: Mapping[str, str], nested: bool = False) -> Options:
        return parse_options(raw, default_top=self.default_top, max_top=self.max_top, nested=nested)

    def answer(self, path: ResourcePath) -> dict[str, Any]:
        opts = self.options(self.raw)
        if path.key is None:
            if path.entity_set == "Observations":
                return self.observations(None, opts, self.raw, self.request_url())
            return self.collection(path.entity_set, self.all_ids(path.entity_set), opts)
        if path.nav is None:
            return self.entity(path.entity_set, path.key, opts)
        target, many = NAV[(path.entity_set, path.nav)]
        if path.entity_set == "Datastreams" and path.nav == "Observations":
            series = self.series(path.key)
            return self.observations(series, opts, self.raw, self.request_url())
        if path.entity_set == "Observations":
            tenant, sensor_id, quantity = self.reading_series(path.key)
            return self.entity("Datastreams", join_id(tenant, sensor_id, quantity), opts)
        self.entity_object(path.entity_set, path.key)  # 404 when the source does not exist
        ids = self.cat.related.get((path.entity_set, path.key, path.nav), [])
        if many:
            return self.collection(target, ids, opts)
        if not ids:
            raise LookupError(f"{path.entity_set}({path.key!r}) has no {path.nav}")
        return self.entity(target, ids[0], opts)

    def request_url(self) -> str:
        return str(self.request.url)

    # --- in-memory entity sets ---------------------------------------------------------------

    def table(self, entity_set: str) -> Mapping[str, Entity]:
        tables: dict[str, Mapping[str, Entity]] = {
            "Things": self.cat.things,
            "Locations": self.cat.locations,
            "Sensors": self.cat.sensors,
            "ObservedProperties": self.cat.properties,
            "Datastreams": self.cat.datastreams,
        }
        return tables[entity_set]

    def all_ids(self, entity_set: str) -> list[str]:
        return list(self.table(entity_set))

    def entity_object(self, entity_set: str, key: str) -> Entity | None:
        if entity_set == "Observations":
            self.reading_series(key)
            return None
        found = self.table(entity_set).get(key)
        if found is None:
            raise LookupError(f"no {entity_set} with id {key!r} (among sensors seen recently)")
        return found

    def entity(self, entity_set: str, key: str, opts: Options) -> dict[str, Any]:
        if entity_set == "Observations":
            return self.one_observation(key)
        found = self.entity_object(entity_set, key)
        assert found is not None
        body = found.as_json()
        self.expand(entity_set, key, body, opts)
        return body

    def collection(self, entity_set: str, ids: Sequence[str], opts: Options) -> dict[str, Any]:
        if opts.filter is not None:
            raise BadQuery("$filter is supported on Observations only")
        table = self.table(entity_set)
        rows = [table[i] for i in ids if i in table]
        # Stable sorts from the last key to the first give the multi-key order.
        for key in reversed(parse_orderby(opts.orderby or "id", ("id", "name"))):
            rows.sort(key=_sort_key(key.prop), reverse=key.desc)
        page = rows[opts.skip : opts.skip + opts.top]
        body: dict[str, Any] = {}
        if opts.count:
            body["@iot.count"] = len(rows)
        values = []
        for item in page:
            entity = item.as_json()
            self.expand(entity_set, item.id, entity, opts)
            values.append(entity)
        body["value"] = values
        if opts.skip + opts.top < len(rows):
            body["@iot.nextLink"] = _next_link(self.request_url(), opts)
        return body

    def expand(self, entity_set: str, key: str, body: dict[str, Any], opts: Options) -> None:
        for item in opts.expand:
            if (entity_set, item.name) not in NAV:
                navs = [nav for (s, nav) in NAV if s == entity_set]
                raise BadQuery(f"$expand: {entity_set} has no {item.name!r} ({', '.join(navs)})")
            nested = self.options(item.raw, nested=True)
            target, many = NAV[(entity_set, item.name)]
            link = f"{body['@iot.selfLink']}/{item.name}"
            if target == "Observations":
                sub = self.observations(self.series(key), nested, item.raw, link)
            elif many:
                ids = self.cat.related.get((entity_set, key, item.name), [])
                sub = self.collection(target, ids, nested)
                if "@iot.nextLink" in sub:
                    sub["@iot.nextLink"] = _next_link(link, nested, item.raw)
            else:
                self.expand_one(entity_set, key, body, item.name, nested)
                continue
            body[item.name] = sub["value"]
            for member in ("@iot.count", "@iot.nextLink"):
                if member in sub:
                    body[f"{item.name}{member}"] = sub[member]

    def expand_one(
        self, entity_set: str, key: str, body: dict[str, Any], nav: str, opts: Options
    ) -> None:
        """Put the one related entity in ``body`` (left out when it is not in the catalogue)."""
        target, _ = NAV[(entity_set, nav)]
        if entity_set == "Observations":
            ids = [join_id(*self.reading_series(key))]
        else:
            ids = self.cat.related.get((entity_set, key, nav), [])
        if ids and ids[0] in self.table(target):
            body[nav] = self.entity(target, ids[0], opts)

    # --- observations --------------------------------------------------------------------------

    def series(self, datastream_id: str) -> Series:
        found = self.cat.series.get(datastream_id)
        if found is None:
            split_id(datastream_id, 3, "Datastream")  # a malformed id is a 400, not a 404
            raise LookupError(
                f"no Datastream with id {datastream_id!r} (among sensors seen recently)"
            )
        return found

    def reading_series(self, key: str) -> Series:
        parsed = observation_key(key)
        if not is_open(parsed.quantity):
            raise LookupError(f"no Observation with id {key!r}")
        return parsed.tenant, parsed.sensor_id, parsed.quantity

    def one_observation(self, key: str) -> dict[str, Any]:
        tenant, sensor_id, quantity = self.reading_series(key)
        moment = from_epoch_ns(observation_key(key).time_ns)
        query = ObservationQuery(
            moment, moment + _TICK, 1, tenant=tenant, sensor_id=sensor_id, quantity=quantity
        )
        rows = self.store.readings(query)
        if not rows:
            raise LookupError(f"no Observation with id {key!r}")
        return observation(self.base, rows[0]).as_json()

    def observations(
        self, series: Series | None, opts: Options, raw: Mapping[str, str], url: str
    ) -> dict[str, Any]:
        if opts.expand and any(i.name != "Datastream" for i in opts.expand):
            raise BadQuery("$expand on Observations: only Datastream")
        start, stop = self.observation_range(series, opts)
        tenant, sensor_id, quantity = series or (self.tenant, None, None)
        query = ObservationQuery(
            start,
            stop,
            opts.top + 1,
            opts.skip,
            tenant=tenant,
            sensor_id=sensor_id,
            quantity=quantity,
            allowed=OPEN_QUANTITIES,
            filter=opts.filter,
            order=parse_orderby(opts.orderby or "phenomenonTime", ORDERABLE),
        )
        empty = start >= stop
        rows = [] if empty or opts.top == 0 else self.store.readings(query)
        body: dict[str, Any] = {}
        if opts.count:
            body["@iot.count"] = 0 if empty else self.store.count(query)
        values = []
        for row in rows[: opts.top]:
            entity = observation(self.base, row).as_json()
            self.expand("Observations", entity["@iot.id"], entity, opts)
            values.append(entity)
        body["value"] = values
        if len(rows) > opts.top:
            body["@iot.nextLink"] = _next_link(url, opts, raw)
        return body

    def observation_range(self, series: Series | None, opts: Options) -> tuple[datetime, datetime]:
        """The Flux range: the filter's phenomenonTime bounds, completed and capped."""
        api = self.settings.api
        if series is None:
            default = limit = timedelta(hours=api.sta_all_range_hours)
            where = "Observations across all Datastreams"
        else:
            default, limit = (
                timedelta(days=api.sta_default_range_days),
                timedelta(days=api.max_raw_range_days),
            )
            where = "the Observations of one Datastream"
        bounds = time_bounds(opts.filter)
        stop = bounds.stop or self.now
        start = bounds.start or min(stop, self.now) - default
        if stop - start > limit:
            raise BadQuery(
                f"$filter: phenomenonTime may span at most {_span(limit)} for {where}; "
                "bound it on both sides (phenomenonTime ge … and phenomenonTime lt …)"
            )
        return start, stop


def _sort_key(prop: str) -> Callable[[Entity], str]:
    return (lambda e: e.id) if prop == "id" else (lambda e: e.name)


def _span(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24} days" if hours % 24 == 0 else f"{hours} hours"


def _next_link(url: str, opts: Options, carried: Mapping[str, str] | None = None) -> str:
    """``url`` with ``$skip`` moved on by one page; ``$top`` and the ``carried`` options kept."""
    base, _, query = url.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if carried:
        params |= {k: v for k, v in carried.items() if k in ("$filter", "$orderby", "$count")}
    params |= {"$top": str(opts.top), "$skip": str(opts.skip + opts.top)}
    return f"{base}?{urlencode(params)}"
