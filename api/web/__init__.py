"""The web front end served by the API: city map, sensor pages, staff overview, experiments,
offline docs.

:func:`web_router` is all the app includes: the pages (:mod:`api.web.pages`), the API docs
from vendored assets (:mod:`api.web.docs`) and the dead-letter counts
(:mod:`api.web.deadletters`). Everything is served by the API process itself; nothing is
loaded from the internet (docs/web.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter

from api.sensors import Sensor
from api.store import Store
from api.web.deadletters import DeadLetterReader, deadletter_router
from api.web.docs import OPENAPI_TAGS, add_examples, docs_router
from api.web.experiments_page import experiments_router
from api.web.pages import Pages, pages_router
from urbanpulse.settings import Settings

__all__ = ["OPENAPI_TAGS", "add_examples", "web_router"]


def web_router(
    settings: Settings,
    store: Store,
    recent_sensors: Callable[[str | None], list[Sensor]],
    *,
    title: str,
    openapi_url: str = "/openapi.json",
) -> APIRouter:
    """Every route of the web front end, for ``app.include_router``."""

    def now() -> datetime:
        return datetime.now(UTC)

    router = APIRouter()
    router.include_router(pages_router(settings, store, recent_sensors, now))
    router.include_router(experiments_router(Pages(settings)))
    router.include_router(docs_router(openapi_url, title))
    reader = DeadLetterReader(settings.kafka, settings.web)
    router.include_router(deadletter_router(reader, settings.web, now))
    return router
