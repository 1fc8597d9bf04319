"""Dead letters of the last hours, counted: the read-only route ``/v1/deadletters``.

The API had no view of the dead-letter topic (DESIGN.md: every refused message lands there
with its stage and reason), and a pilot team's first morning question is "did we refuse
anything?". This route reads the topic from Kafka (no consumer group: it reads, never commits)
from the first offset at or after the start of the span to the end, and answers counts only,
by stage, reason, tenant and domain. The payloads and topics are never published: they may
carry what a device sent, and they are for the operators' tools, not for the open-data API.

* :func:`tenant_of` / :func:`quantity_of` (pure) say whom a letter concerns, when it can be
  told: ingest letters from the MQTT topic ``urbanpulse/{tenant}/...``, stream-worker letters
  from the reading they carry. Letters of network-server topics name no tenant (``null``).
* :func:`count_letters` (pure) groups them.
* :class:`DeadLetterReader` reads the topic with the platform's shared reader
  (:mod:`urbanpulse.deadletter_reader`, also the indicator job's), in a worker thread, at
  most ``web.deadletter_scan_max`` letters per answer, and says when it stopped early.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any

from confluent_kafka import KafkaException
from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.cache import TtlCache
from api.formats import rfc3339
from api.http import PROBLEM_MEDIA_TYPE
from urbanpulse.deadletter_reader import LetterScan, read_letters
from urbanpulse.display import display
from urbanpulse.model import ID_PATTERN, DeadLetter
from urbanpulse.settings import KafkaSettings, WebSettings

log = logging.getLogger(__name__)

TOPIC_PREFIX = "urbanpulse/"
PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
READ_TIMEOUT_S = 20.0  # a scan that has not reached the end by then answers what it counted


class LetterCount(BaseModel):
    """How many dead letters share a stage, reason, tenant and domain."""

    stage: str = Field(description="the component that refused them: ingest or streams")
    reason: str = Field(description="a short code, e.g. invalid_json, out_of_range")
    tenant: str | None = Field(description="the tenant, when the letter tells it; else null")
    domain: str | None = Field(
        description="the domain of the reading (air, noise, ...), when the letter carries one"
    )
    count: int


class DeadLetterSummary(BaseModel):
    """Dead letters received in a span, counted; never their contents."""

    start: str = Field(description="RFC 3339: letters received at or after this")
    stop: str = Field(description="RFC 3339: when the topic was read")
    total: int
    truncated: bool = Field(
        description="true when the scan stopped at web.deadletter_scan_max letters (or its "
        "time limit): the counts are a lower bound"
    )
    counts: list[LetterCount]


def _payload_json(letter: DeadLetter) -> dict[str, Any] | None:
    try:
        found = json.loads(base64.b64decode(letter.payload_b64, validate=True))
    except (binascii.Error, ValueError):
        return None
    return found if isinstance(found, dict) else None


def tenant_of(letter: DeadLetter) -> str | None:
    """The tenant a letter concerns: from its MQTT topic, or from the reading it carries."""
    if letter.topic.startswith(TOPIC_PREFIX):
        return letter.topic[len(TOPIC_PREFIX) :].split("/", 1)[0] or None
    found = _payload_json(letter)
    tenant = found.get("tenant") if found else None
    return tenant if isinstance(tenant, str) else None


def quantity_of(letter: DeadLetter) -> str | None:
    """The quantity of the reading a letter carries (stream-worker letters), else None."""
    found = _payload_json(letter)
    quantity = found.get("quantity") if found else None
    return quantity if isinstance(quantity, str) else None


def count_letters(letters: Iterable[DeadLetter], tenant: str | None) -> list[LetterCount]:
    """Counts by stage, reason, tenant and domain (only ``tenant``'s when given), biggest first."""
    counts: Counter[tuple[str, str, str | None, str | None]] = Counter()
    for letter in letters:
        owner = tenant_of(letter)
        if tenant is not None and owner != tenant:
            continue
        quantity = quantity_of(letter)
        domain = display(quantity).domain if quantity else None
        counts[(letter.stage, letter.reason, owner, domain)] += 1
    return [
        LetterCount(stage=s, reason=r, tenant=t, domain=d, count=n)
        for (s, r, t, d), n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    ]


class DeadLetterReader:
    """Reads the dead-letter topic of a span of time from Kafka with the platform's one reader
    (:func:`urbanpulse.deadletter_reader.read_letters`: its own consumer per call, blocking,
    so run it in a worker thread), at most ``web.deadletter_scan_max`` letters per call."""

    def __init__(self, kafka: KafkaSettings, web: WebSettings) -> None:
        self._kafka = kafka
        self._max = web.deadletter_scan_max

    def read(self, since: datetime) -> LetterScan:
        """Every letter received since ``since``; ``truncated`` when the scan stopped early."""
        return read_letters(
            self._kafka,
            since,
            limit=self._max,
            group="urbanpulse-api-deadletters",  # librdkafka wants one; never committed
            timeout_s=READ_TIMEOUT_S,
        )


def deadletter_router(
    reader: DeadLetterReader, web: WebSettings, now: Callable[[], datetime]
) -> APIRouter:
    """``GET /v1/deadletters``: counts of the dead letters of the last hours."""
    router = APIRouter()
    # Bounded: tenants are the client's text; the least recently asked summary goes first.
    cache: TtlCache[DeadLetterSummary] = TtlCache(web.deadletter_cache_s, max_entries=256)

    @router.get(
        "/v1/deadletters",
        tags=["operations"],
        response_model=DeadLetterSummary,
        responses={
            503: {"description": "Kafka cannot be reached", "content": PROBLEM},
        },
    )
    async def deadletters(
        tenant: Annotated[
            str | None,
            Query(pattern=ID_PATTERN, description="only letters of this tenant", examples=["demo"]),
        ] = None,
        hours: Annotated[
            int, Query(ge=1, le=168, description="how many hours back (default: 24)")
        ] = 24,
    ) -> DeadLetterSummary:
        """How many messages the platform refused in the last hours, by stage and reason.

        Counts only (never payloads or topics), per tenant and domain where the letter tells
        them. Read from the dead-letter topic; reused for a minute.
        """

        def summarise() -> DeadLetterSummary:
            stop = now().replace(microsecond=0)
            start = stop - timedelta(hours=hours)
            scan = reader.read(start)
            counts = count_letters(scan.letters, tenant)
            return DeadLetterSummary(
                start=rfc3339(start),
                stop=rfc3339(stop),
                total=sum(c.count for c in counts),
                truncated=scan.truncated,
                counts=counts,
            )

        hit = cache.fresh((tenant, hours))
        if hit is not None:
            return hit
        try:
            return await run_in_threadpool(cache.get, (tenant, hours), summarise)
        except KafkaException as err:
            log.warning("the dead-letter topic could not be read: %s", err)
            raise HTTPException(503, "Kafka did not answer; try again shortly") from None

    return router
