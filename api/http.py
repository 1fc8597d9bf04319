"""HTTP details shared by the routes: conditional requests, caching, problem bodies (pure-ish).

JSON-like answers are built in full, so they carry a weak ETag (a hash of the body; weak
because gzip may re-encode the bytes) and answer ``If-None-Match`` with 304. Streamed answers
(CSV, JSON Lines) are sent as they are produced and carry no ETag.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, for a person and for a program."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str


def cache_control(max_age: int) -> str:
    """A public Cache-Control value (reads are open data, any cache may keep them)."""
    return f"public, max-age={max_age}" if max_age > 0 else "no-cache"


def etag_of(body: bytes) -> str:
    """A weak entity tag for a body."""
    return 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header names ``etag`` (weak comparison) or is ``*``."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def json_response(
    request: Request,
    body: Any,
    *,
    media_type: str,
    max_age: int,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON answer with ETag and Cache-Control, or 304 when the client has it already."""
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    etag = etag_of(content)
    all_headers = {"ETag": etag, "Cache-Control": cache_control(max_age)} | (headers or {})
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=all_headers)
    return Response(content=content, media_type=media_type, headers=all_headers)
