"""What every route of one app shares: settings, store, clock, caches (one typed object).

:func:`build_context` makes it once per app; ``create_app`` keeps it in ``app.state`` and a
route asks for it as a parameter typed :data:`Context` (a FastAPI dependency), never through
a closure. A test builds an app with a fake store and a fixed clock, and every route sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request

from api.admin import RegistryStore
from api.bulk import DailyCounts
from api.cache import Rendered, TtlCache, answer_cache
from api.health import Readiness
from api.keys import ApiKeys, load_keys
from api.params import RAW_GRACE
from api.privacy import OPEN_QUANTITIES
from api.registry_view import RegistryView
from api.sensors import Sensor
from api.store import Store
from api.stream import Hub, KafkaFeed
from urbanpulse.settings import ApiSettings, Settings

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, in UTC (the clock of a running API)."""
    return datetime.now(UTC)


class RecentSensors:
    """The sensors that reported in the last ``sensors_lookback_days``, per tenant.

    One store query per tenant per ``sensors_cache_s``: ``/v1/sensors``, ``/v1/latest``,
    GeoJSON positions, the catalogue and SensorThings all read this one answer.
    """

    def __init__(self, store: Store, api: ApiSettings, clock: Clock) -> None:
        self._store = store
        self._lookback = timedelta(days=api.sensors_lookback_days)
        self._clock = clock
        self._cache: TtlCache[list[Sensor]] = TtlCache(
            api.sensors_cache_s, max_entries=api.cache_max_entries
        )

    def __call__(self, tenant: str | None) -> list[Sensor]:
        """The recent sensors of ``tenant`` (None: of every tenant)."""
        return self._cache.get(tenant, lambda: self._ask(tenant))

    def _ask(self, tenant: str | None) -> list[Sensor]:
        since = self._clock() - self._lookback
        return self._store.sensors(since, tenant, OPEN_QUANTITIES)


@dataclass(frozen=True, kw_only=True)
class ApiContext:
    """The state one app's routes share."""

    settings: Settings
    store: Store
    clock: Clock
    recent_sensors: RecentSensors
    latest: TtlCache[Rendered]  # /v1/latest answers, rendered; also read by CachedAnswers
    daily: DailyCounts  # readings per tenant, quantity and day: bulk listing and catalogue
    keys: ApiKeys
    registry: RegistryStore
    registry_view: RegistryView  # the registry parsed once per change: privacy, experiments
    feed: KafkaFeed  # the live feed; its Kafka consumer starts with the first client
    readiness: Readiness  # /readyz and /health: cached checks of InfluxDB (and Kafka)

    @property
    def api(self) -> ApiSettings:
        """The API's own settings."""
        return self.settings.api

    def now(self) -> datetime:
        """The current time on this app's clock."""
        return self.clock()

    def max_age(self, *, closed: bool) -> int:
        """Cache-Control max-age of an answer: long once its range can no longer change."""
        return self.api.cache_closed_max_age_s if closed else self.api.cache_max_age_s


def build_context(settings: Settings, store: Store, clock: Clock = utc_now) -> ApiContext:
    """The shared state of a new app over ``store``."""
    api = settings.api
    return ApiContext(
        settings=settings,
        store=store,
        clock=clock,
        recent_sensors=RecentSensors(store, api, clock),
        latest=answer_cache(api.sensors_cache_s, api),
        daily=DailyCounts(
            store, days=api.bulk_days, ttl_s=api.catalog_cache_s, grace=RAW_GRACE, clock=clock
        ),
        keys=ApiKeys(load_keys(api)),
        registry=RegistryStore(settings.streams.registry_path),
        registry_view=RegistryView(RegistryStore(settings.streams.registry_path)),
        feed=KafkaFeed(
            settings.kafka,
            Hub(api.stream_max_clients, api.stream_buffer, per_client=api.stream_max_per_client),
        ),
        readiness=Readiness.of(settings, store),
    )


async def context_of(request: Request) -> ApiContext:
    """The context of the app serving ``request`` (a dependency: :data:`Context`)."""
    context = request.app.state.context
    if not isinstance(context, ApiContext):
        raise TypeError("the app has no ApiContext: build it with api.app.create_app")
    return context


Context = Annotated[ApiContext, Depends(context_of)]
"""A route parameter typed ``Context`` receives its app's :class:`ApiContext`."""
