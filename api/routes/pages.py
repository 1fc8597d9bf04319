"""One page of rows in the format asked for, with its link to the next page."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.formats import csv_lines, jsonl_lines, row_dict
from api.geojson import GEOJSON_MEDIA_TYPE, Feature, collection
from api.http import cache_control, json_response
from api.sensors import Sensor

R = TypeVar("R", bound=BaseModel)
Places = dict[tuple[str, str], tuple[float, float]]  # (tenant, sensor) -> (lat, lon)


def split_page(rows: Sequence[R], size: int) -> tuple[Sequence[R], bool]:
    """The page's rows, and whether another page follows (the store was asked one row more)."""
    return rows[:size], len(rows) > size


def next_url(request: Request, cursor: str) -> str:
    """The request's own URL, resuming at ``cursor``."""
    return str(request.url.include_query_params(cursor=cursor))


def places_of(sensors: Iterable[Sensor]) -> Places:
    """Where each sensor last said it was."""
    return {(s.tenant, s.id): (s.location.lat, s.location.lon) for s in sensors if s.location}


def render_page(
    request: Request,
    fmt: str,
    rows: Sequence[R],
    next_link: str | None,
    *,
    fields: tuple[str, ...] | None,
    feature: Callable[[R], Feature] | None,
    max_age: int,
) -> Response:
    """One page of rows in the asked format, with its next link (body or Link header)."""
    links = {"self": str(request.url)} | ({"next": next_link} if next_link else {})
    link = {"Link": f'<{next_link}>; rel="next"'} if next_link else {}
    if fmt in ("csv", "jsonl"):
        headers = link | {"Cache-Control": cache_control(max_age)}
        if fmt == "csv":
            lines = csv_lines(rows, fields) if fields else csv_lines(rows)
            return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=headers)
        return StreamingResponse(
            jsonl_lines(rows), media_type="application/x-ndjson", headers=headers
        )
    if fmt == "geojson":
        features = [feature(r) for r in rows] if feature else []
        return json_response(
            request, collection(features, links), media_type=GEOJSON_MEDIA_TYPE, max_age=max_age
        )
    body = {"data": [row_dict(r) for r in rows], "links": links}
    return json_response(
        request, body, media_type="application/json", max_age=max_age, headers=link
    )
