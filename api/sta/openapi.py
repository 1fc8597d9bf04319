"""What ``/openapi.json`` says about the SensorThings routes: the resource path's grammar and
the query options, so that clients, ``/docs`` and schema-driven tests (schemathesis) see them.

The one SensorThings route reads its options from the query itself (:mod:`api.sta.query`
checks them and refuses unknown ``$`` options); these descriptions are what it accepts, the
checks stay in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.sta.query import MAX_FILTER_CHARS
from urbanpulse.model import ID_PATTERN


def resource_pattern(sets: Sequence[str], navigations: Sequence[str]) -> str:
    """``Set``, ``Set('id')`` or ``Set('id')/Navigation`` as a regular expression (a ``'``
    inside an id is doubled)."""
    return rf"^({'|'.join(sets)})(\('([^']|'')*'\)(/({'|'.join(navigations)}))?)?$"


RESOURCE_EXAMPLES = [
    "Things",
    "Datastreams('demo:air-002:pm2_5')",
    "Datastreams('demo:air-002:pm2_5')/Observations",
    "Observations",
]


def _option(
    name: str, schema: dict[str, Any], description: str, *examples: str | int
) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }
    if examples:
        parameter["examples"] = {f"e{i}": {"value": v} for i, v in enumerate(examples)}
    return parameter


OPTIONS: list[dict[str, Any]] = [
    _option(
        "$top",
        {"type": "integer", "minimum": 0},
        "entities per page (default and largest: `api.sta_default_top`, `api.sta_max_top`)",
        10,
    ),
    _option("$skip", {"type": "integer", "minimum": 0}, "entities to skip", 10),
    _option("$count", {"type": "string", "enum": ["true", "false"]}, "add `@iot.count`", "true"),
    _option(
        "$orderby",
        {"type": "string"},
        "`phenomenonTime` or `result` (Observations), `id` or `name` (elsewhere), "
        "with `asc` or `desc`",
        "phenomenonTime desc",
    ),
    _option(
        "$filter",
        {"type": "string", "maxLength": MAX_FILTER_CHARS},
        "Observations only: `phenomenonTime` against ISO 8601 times with an offset, `result` "
        "against numbers; `eq ne gt ge lt le`, `and`, `or`, parentheses",
        "phenomenonTime ge 2026-11-27T10:00:00Z and result gt 5",
    ),
    _option(
        "$expand",
        {"type": "string"},
        "one level of related entities, each with its own options",
        "Datastreams,Locations",
        "Observations($top=3;$orderby=phenomenonTime desc)",
    ),
    _option(
        "tenant",
        {"type": "string", "pattern": ID_PATTERN},
        "only this tenant's entities (an UrbanPulse extension)",
        "demo",
    ),
]

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
RESOURCE_OPENAPI: dict[str, Any] = {
    "parameters": OPTIONS,
    "responses": {
        "200": {
            "description": "an entity (`@iot.id`, `@iot.selfLink`, …) or a collection "
            "(`value`, `@iot.nextLink`, `@iot.count`)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "400": {
            "description": "a query this service cannot answer as asked",
            "content": PROBLEM_CONTENT,
        },
        "404": {
            "description": "no such entity set, entity or navigation",
            "content": PROBLEM_CONTENT,
        },
    },
}
"""The operation's OpenAPI additions: its query options and answers."""
