"""InfluxDB 2.x set-up at start: the raw and aggregate buckets exist, with their retention.

Idempotent and conservative: a missing bucket is created, a bucket whose retention differs from
the settings is updated, nothing is ever deleted. On InfluxDB 1.8 (org ``-``) it does nothing:
there the "buckets" are database/retention-policy pairs that ``deploy/local/services.sh``
creates, and 1.8 has no ``/api/v2/buckets``.

The decision is a pure function (:func:`plan`) over what exists; :func:`ensure_buckets` is the
thin adapter around influxdb-client's ``OrganizationsApi`` and ``BucketsApi``. influxdb-client
is imported only when there is a 2.x to set up: the stream worker calls this at start, and on
1.8 it has no other use for the library (16 MB of resident memory, docs/performance.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tenacity import (
    before_sleep_log,
    retry,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from urbanpulse.settings import InfluxSettings

if TYPE_CHECKING:
    from influxdb_client import InfluxDBClient

log = logging.getLogger(__name__)
V1_ORG = "-"
DAY_S = 86_400


@dataclass(frozen=True)
class BucketSpec:
    """A bucket as the settings want it; retention 0 means kept for good."""

    name: str
    retention_s: int


@dataclass(frozen=True)
class Existing:
    """A bucket as InfluxDB reports it."""

    id: str
    name: str
    retention_s: int
    description: str | None = None


@dataclass(frozen=True)
class Action:
    """One change to make: create a bucket, or set an existing one's retention."""

    kind: Literal["create", "update"]
    spec: BucketSpec
    current: Existing | None = None


def is_v1(settings: InfluxSettings) -> bool:
    """True for InfluxDB 1.8 through its 2.0-compatibility API (org ``-``)."""
    return settings.org.strip() == V1_ORG


def wanted(settings: InfluxSettings) -> list[BucketSpec]:
    """The buckets the platform needs, from the settings."""
    return [
        BucketSpec(settings.raw_bucket, settings.raw_retention_days * DAY_S),
        BucketSpec(settings.aggregate_bucket, settings.aggregate_retention_days * DAY_S),
    ]


def plan(specs: list[BucketSpec], existing: dict[str, Existing]) -> list[Action]:
    """What to change so every spec exists with its retention; never a deletion."""
    actions = []
    for spec in specs:
        current = existing.get(spec.name)
        if current is None:
            actions.append(Action("create", spec))
        elif current.retention_s != spec.retention_s:
            actions.append(Action("update", spec, current))
    return actions


def retention_of(rules: list[Any] | None) -> int:
    """Seconds of the bucket's expire rule; no rule or 0 both mean infinite."""
    for rule in rules or []:
        if getattr(rule, "type", "expire") in (None, "expire"):
            return int(rule.every_seconds or 0)
    return 0


def _transient(err: BaseException) -> bool:
    # Connection errors and 5xx: InfluxDB is starting up; 4xx (bad token, no org) is final,
    # and so is anything else (an answer we cannot read).
    from influxdb_client.rest import ApiException  # see the module docstring
    from urllib3.exceptions import HTTPError

    if isinstance(err, ApiException):
        return err.status is None or err.status == 429 or err.status >= 500
    return isinstance(err, OSError | HTTPError)


class BucketSetup:
    """The adapter: reads buckets of the org through the HTTP API and applies a plan."""

    def __init__(self, client: InfluxDBClient, org: str) -> None:
        self._client = client
        self._org = org

    def org_id(self) -> str:
        """The organisation's id, looked up by name (the org must exist: InfluxDB's setup)."""
        orgs = self._client.organizations_api().find_organizations(org=self._org)
        if not orgs:
            raise LookupError(f"InfluxDB has no organisation {self._org!r} this token can see")
        return str(orgs[0].id)

    def existing(self, org_id: str, names: list[str]) -> dict[str, Existing]:
        """The buckets of the org with these names, by name."""
        api = self._client.buckets_api()
        found = {}
        for name in names:
            for bucket in api.find_buckets(org_id=org_id, name=name).buckets or []:
                if bucket.name == name:  # the server filters; check anyway
                    found[name] = Existing(
                        str(bucket.id),
                        name,
                        retention_of(bucket.retention_rules),
                        bucket.description,
                    )
        return found

    def apply(self, org_id: str, action: Action) -> None:
        """Create the bucket or set its retention (shard group duration: InfluxDB's default)."""
        from influxdb_client import Bucket, BucketRetentionRules

        api = self._client.buckets_api()
        rules = BucketRetentionRules(type="expire", every_seconds=action.spec.retention_s)
        if action.kind == "create":
            api.create_bucket(bucket_name=action.spec.name, retention_rules=rules, org=org_id)
            return
        assert action.current is not None
        api.update_bucket(
            Bucket(
                id=action.current.id,
                name=action.current.name,
                description=action.current.description,
                org_id=org_id,
                retention_rules=[rules],
            )
        )


def ensure_buckets(settings: InfluxSettings, wait_s: float = 60.0) -> list[Action]:
    """Make the raw and aggregate buckets exist with their retention; return what was done.

    Nothing on InfluxDB 1.8. Waits up to ``wait_s`` for InfluxDB to answer (it may still be
    starting); a 4xx answer (wrong token, unknown organisation) fails at once.
    """
    if is_v1(settings):
        log.debug("InfluxDB 1.8 (org '-'): buckets are made by the database's own set-up")
        return []
    from influxdb_client.rest import ApiException  # see the module docstring

    from urbanpulse.influx import make_client

    @retry(
        retry=retry_if_exception(_transient),
        wait=wait_exponential(multiplier=0.5, max=10),
        stop=stop_after_delay(wait_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    def attempt() -> list[Action]:
        with make_client(settings) as client:
            setup = BucketSetup(client, settings.org)
            org_id = setup.org_id()
            specs = wanted(settings)
            actions = plan(specs, setup.existing(org_id, [s.name for s in specs]))
            for action in actions:
                try:
                    setup.apply(org_id, action)
                except ApiException as err:
                    if not (action.kind == "create" and err.status == 422):
                        raise
                    # Another worker starting at the same time created it first: fine.
                    log.info("InfluxDB bucket %r was created meanwhile", action.spec.name)
                    continue
                log.info(
                    "InfluxDB bucket %r: %s, retention %s",
                    action.spec.name,
                    "created" if action.kind == "create" else "updated",
                    describe(action.spec.retention_s),
                )
            if not actions:
                log.info("InfluxDB buckets %s are as configured", ", ".join(s.name for s in specs))
            return actions

    try:
        return attempt()
    except ApiException as err:
        raise RuntimeError(f"InfluxDB bucket set-up failed: {err.status} {err.reason}") from err


def describe(retention_s: int) -> str:
    """A retention for people: '30 days' or 'kept for good'."""
    if retention_s == 0:
        return "kept for good"
    days, rest = divmod(retention_s, DAY_S)
    return f"{days} days" if not rest else f"{retention_s} s"
