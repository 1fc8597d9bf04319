"""``GET /v1/bulk`` (the daily files on offer) and ``GET /v1/bulk/{tenant}/{quantity}/{day}.csv.gz``
(one of them); what a file holds and when it is final: :mod:`api.bulk`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from api.bulk import (
    GZIP_MEDIA_TYPE,
    DayCount,
    base_url,
    cache_file,
    day_rows,
    file_etag,
    file_path,
    gzip_chunks,
    kept_on_disk,
    parse_day,
)
from api.context import ApiContext, Context
from api.formats import OBSERVATION_FIELDS, Observation, csv_lines
from api.http import cache_control, etag_matches, json_response
from api.privacy import require_open
from urbanpulse.model import ID_PATTERN, QUANTITY_PATTERN

Day = date  # a field is named ``date`` below; pydantic needs the type under another name


class BulkFile(BaseModel):
    """One daily file: a tenant's readings of one quantity on one UTC day."""

    tenant: str
    quantity: str
    date: Day = Field(description="the UTC day")
    readings: int = Field(description="rows in the file (readings)")
    final: bool = Field(description="true once the day is over: the file no longer changes")
    url: str = Field(description="where to download it (gzip CSV)")
    size_bytes: int | None = Field(None, description="file size, when the server knows it")


class BulkListing(BaseModel):
    """The daily files on offer, oldest day first."""

    licence: str = Field(description="licence of the data in every file")
    days: int = Field(description="how many days back files are offered (today included)")
    columns: list[str] = Field(description="the CSV columns of every file")
    data: list[BulkFile]


BULK_EXAMPLE = {
    "licence": "https://creativecommons.org/licenses/by/4.0/",
    "days": 31,
    "columns": list(OBSERVATION_FIELDS),
    "data": [
        {
            "tenant": "demo",
            "quantity": "pm2_5",
            "date": "2026-11-26",
            "readings": 14400,
            "final": True,
            "url": "https://data.example.org/v1/bulk/demo/pm2_5/2026-11-26.csv.gz",
            "size_bytes": 201733,
        }
    ],
}

TenantPath = Annotated[
    str, PathParam(pattern=ID_PATTERN, description="the tenant (municipality)", examples=["demo"])
]
QuantityPath = Annotated[
    str, PathParam(pattern=QUANTITY_PATTERN, description="an open quantity", examples=["pm2_5"])
]
DayPath = Annotated[
    str,
    PathParam(description="the UTC day, YYYY-MM-DD", examples=["2026-11-26"], max_length=10),
]

router = APIRouter(tags=["bulk"])


@router.get(
    "/v1/bulk",
    response_model=BulkListing,
    responses={
        200: {
            "description": "the daily files, oldest day first",
            "content": {"application/json": {"example": BULK_EXAMPLE}},
        }
    },
)
def listing(
    request: Request,
    ctx: Context,
    tenant: Annotated[str | None, Query(pattern=ID_PATTERN, description="only this tenant")] = None,
    quantity: Annotated[
        str | None, Query(pattern=QUANTITY_PATTERN, description="only this quantity")
    ] = None,
) -> Response:
    """Daily bulk files of raw readings (gzip CSV), per tenant, open quantity and UTC day.

    Lists the last `bulk_days` days that have readings, with row counts and links. Files
    of past days never change (strong `ETag`, long `Cache-Control`); today's grows.
    """
    require_open(quantity)
    api, counts = ctx.api, ctx.daily
    base = base_url(api, request)
    files = [
        BulkFile(
            tenant=c.tenant,
            quantity=c.quantity,
            date=c.day,
            readings=c.readings,
            final=counts.is_final(c.day),
            url=base + file_path(c.tenant, c.quantity, c.day),
            size_bytes=_size_of(ctx, c),
        )
        for c in sorted(counts.all(), key=lambda c: (c.day, c.tenant, c.quantity))
        if tenant in (None, c.tenant) and quantity in (None, c.quantity)
    ]
    columns = list(Observation.model_fields)
    body = BulkListing(
        licence=api.catalog_licence_url, days=api.bulk_days, columns=columns, data=files
    )
    return json_response(
        request,
        body.model_dump(mode="json"),
        media_type="application/json",
        max_age=api.cache_max_age_s,
    )


@router.get(
    "/v1/bulk/{tenant}/{quantity}/{day}.csv.gz",
    response_model=None,
    responses={
        200: {
            "description": "gzip-compressed CSV of the day's readings, oldest first; the "
            "columns of `/v1/observations?format=csv`",
            "content": {GZIP_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        404: {
            "description": "no readings that day, a day not offered, or a quantity "
            "that is not published"
        },
    },
)
def bulk_file(
    request: Request, ctx: Context, tenant: TenantPath, quantity: QuantityPath, day: DayPath
) -> Response:
    """One day's raw readings of a tenant's quantity as a gzip CSV file (streamed)."""
    wanted = parse_day(day)
    require_open(quantity)
    count = ctx.daily.one(tenant, quantity, wanted)
    if count is None:
        raise HTTPException(
            404,
            f"no readings of {quantity!r} for tenant {tenant!r} on {wanted} "
            f"(files are offered for the last {ctx.api.bulk_days} days)",
        )
    name = f"{tenant}_{quantity}_{wanted}.csv.gz"
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    if ctx.daily.is_final(wanted):
        return _final_file(request, ctx, count, headers)
    headers["Cache-Control"] = cache_control(ctx.api.cache_max_age_s)
    chunks = gzip_chunks(csv_lines(day_rows(ctx.store, count)))
    return StreamingResponse(chunks, media_type=GZIP_MEDIA_TYPE, headers=headers)


def _folder(ctx: ApiContext) -> Path | None:
    """Where final days' files are kept (``api.bulk_cache_dir``), if anywhere."""
    return Path(ctx.api.bulk_cache_dir) if ctx.api.bulk_cache_dir else None


def _size_of(ctx: ApiContext, count: DayCount) -> int | None:
    folder = _folder(ctx)
    if folder is None or not ctx.daily.is_final(count.day):
        return None
    kept = cache_file(folder, count.tenant, count.quantity, count.day)
    return kept.stat().st_size if kept.is_file() else None


def _final_file(
    request: Request, ctx: ApiContext, count: DayCount, headers: dict[str, str]
) -> Response:
    """A past day's file: 304 when the client has it, from disk when kept, else generated."""
    etag = file_etag(count)
    headers |= {"ETag": etag, "Cache-Control": cache_control(ctx.api.cache_closed_max_age_s)}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    chunks: Iterator[bytes] = gzip_chunks(csv_lines(day_rows(ctx.store, count)))
    folder = _folder(ctx)
    if folder is not None:
        kept = cache_file(folder, count.tenant, count.quantity, count.day)
        if kept.is_file():
            return FileResponse(kept, media_type=GZIP_MEDIA_TYPE, headers=headers)
        chunks = kept_on_disk(chunks, kept)
    return StreamingResponse(chunks, media_type=GZIP_MEDIA_TYPE, headers=headers)
