"""``urbanpulse status``'s adapter: gathers the :class:`~urbanpulse.status_verdict.Facts`.

Every fact is read at the same time, in its own (daemon) thread, with ``timeout_s`` for each
request. The first round waits at most ``2 x timeout_s + 1`` seconds, the best-effort second
(the newest reading of quiet tenants) ``timeout_s + 0.5``: a service that answers nothing makes
the command slower by seconds, never hang (a cron job or monitoring check must get an answer).
What each fact is read from:

* services: a TCP connection to the MQTT broker, Kafka's metadata (admin API), InfluxDB's
  ``/ping``;
* components: the supervisor's status file (:mod:`urbanpulse.supervisor_status`);
* consumer lag: the stream worker's group (``URBANPULSE_WORKER__APP_ID``): its committed
  offsets against the end offsets of the readings topic (a partition it never committed counts
  from its first offset, where the worker starts);
* dead letters of the last hour: offsets of the dead-letter topic by time (the first offset at
  or after an hour ago, to the end). Its producers are idempotent, not transactional, so
  offsets are records; nothing is read, so it costs the same for a million letters;
* readings: counts per tenant of the raw bucket in the last minute and hour and each tenant's
  newest reading of the recent window (an hour, or the quiet limit if longer), by observation
  time (the point's time); the tenants known within the look-back from the series index
  (``v1.tagValues``: cheap), and for those quiet in the recent window their newest reading over
  the look-back;
* alerts: episodes of the aggregate bucket that began within :data:`ALERT_LOOKBACK`, with
  their state; open ``stale`` ones are the stale sensors;
* registered sensors: the registry file (``URBANPULSE_STREAMS__REGISTRY_PATH``), if any.

The client libraries are imported here, before any thread starts: importing influxdb_client
from several threads at once was seen to fail with ``_DeadlockError`` (its modules import each
other), one run in six.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from influxdb_client import InfluxDBClient
from influxdb_client.service.ping_service import PingService

from urbanpulse.flux import literal
from urbanpulse.influx import make_client
from urbanpulse.influx_layout import (
    ALERT_FIELDS,
    ALERT_MEASUREMENT,
    ALERT_OPEN,
    ALERT_TAGS,
    READING_FIELDS,
    READING_MEASUREMENT,
    READING_TAGS,
)
from urbanpulse.kafka import client_config
from urbanpulse.registry import kind_of, parse_registry
from urbanpulse.settings import KafkaSettings, Settings
from urbanpulse.status_verdict import (
    AlertFact,
    Facts,
    LagFact,
    ServiceFact,
    SupervisorFact,
    TenantActivity,
    UnitFact,
)
from urbanpulse.supervisor_status import read_status, status_path

T = TypeVar("T")
ALERT_LOOKBACK = timedelta(days=30)  # a sensor silent for longer has dropped off the list


def _layout(name: str, known: tuple[str, ...]) -> str:
    """A tag or field name, checked against the InfluxDB layout when this module loads."""
    if name not in known:
        raise ValueError(f"{name!r} is not in the InfluxDB layout {known}")
    return name


VALUE = _layout("value", READING_FIELDS)
TENANT = _layout("tenant", READING_TAGS)
SENSOR = _layout("sensor_id", READING_TAGS)
QUANTITY = _layout("quantity", READING_TAGS)
STATE = _layout("state", ALERT_FIELDS)
ALERT_COLUMNS = tuple(_layout(t, ALERT_TAGS) for t in ("tenant", "sensor_id", "rule", "quantity"))


@dataclass(frozen=True, kw_only=True)
class ProbeOptions:
    """How far back to look, for whom, and how long each service may take."""

    timeout_s: float = 3.0
    tenant: str | None = None
    lookback: timedelta = timedelta(hours=24)
    recent: timedelta = timedelta(hours=1)


MAX_QUIET_TENANTS = 20  # quiet tenants whose newest reading is looked for over the look-back


def gather(settings: Settings, options: ProbeOptions, now: datetime) -> Facts:
    """Read every fact at once; one that cannot be read is None, with the reason in errors.

    Then, for the tenants known (stored within the look-back, or registered) but quiet within
    ``options.recent``, look for their newest reading over the whole look-back, best effort:
    that scan is the one that grows with the data (InfluxDB 1.8 reads every point of it).
    """
    mine = (options.tenant,) if options.tenant else ()
    tasks: dict[str, Callable[[], Any]] = {
        "mqtt": lambda: _mqtt(settings, options.timeout_s),
        "kafka": lambda: kafka_facts(settings, options.timeout_s, now),
        "influxdb": lambda: _influx_ping(settings, options.timeout_s),
        "last_minute": lambda: _counts(settings, options, now - timedelta(minutes=1)),
        "last_hour": lambda: _counts(settings, options, now - timedelta(hours=1)),
        "newest": lambda: _newest(settings, options, now - options.recent, mine),
        "known": lambda: _known(settings, options),
        "alerts": lambda: _alerts(settings, options, now - ALERT_LOOKBACK),
    }
    found = run_all(tasks, deadline_s=2 * options.timeout_s + 1)
    errors: dict[str, str] = {}

    def value(name: str, fact: str) -> Any:
        result = found[name]
        if isinstance(result, BaseException):
            errors.setdefault(fact, _why(result))
            return None
        return result

    kafka = value("kafka", "kafka")
    kafka_service = kafka.service if kafka else _down(settings, "kafka", found["kafka"])
    errors |= kafka.errors if kafka else {}
    minute, hour = value("last_minute", "activity"), value("last_hour", "activity")
    newest, known = value("newest", "activity"), value("known", "activity")
    registered = _registered(settings, options.tenant, errors)
    activity = None
    if None not in (minute, hour, newest, known):
        activity = _activity(
            Stored(minute=minute, hour=hour, newest=newest, since=now - options.recent),
            known | set(registered),
        )
        activity = _older(settings, options, now, activity)
    return Facts(
        at=now,
        tenant=options.tenant,
        services=(
            value("mqtt", "mqtt") or _down(settings, "mqtt", found["mqtt"]),
            kafka_service,
            value("influxdb", "influxdb") or _down(settings, "influxdb", found["influxdb"]),
        ),
        supervisor=_supervisor(settings, now),
        lag=kafka.lag if kafka else None,
        deadletters_last_hour=kafka.deadletters if kafka else None,
        activity=activity,
        alerts=value("alerts", "alerts"),
        registered=registered,
        errors={k: v for k, v in errors.items() if k not in ("mqtt", "kafka", "influxdb")},
    )


def run_all(tasks: Mapping[str, Callable[[], T]], deadline_s: float) -> dict[str, T | Exception]:
    """Run the tasks in daemon threads; what has not finished by the deadline is a TimeoutError.

    Daemon threads, so that a call stuck past its own timeout never keeps the command from
    answering or exiting.
    """
    results: dict[str, T | Exception] = {}
    lock = threading.Lock()
    finished = threading.Event()

    def run(name: str, task: Callable[[], T]) -> None:
        try:
            outcome: T | Exception = task()
        except Exception as err:
            outcome = err
        with lock:
            results[name] = outcome
            if len(results) == len(tasks):
                finished.set()

    for name, task in tasks.items():
        threading.Thread(target=run, args=(name, task), name=f"status-{name}", daemon=True).start()
    finished.wait(deadline_s)
    with lock:
        late = TimeoutError(f"no answer within {deadline_s:g} s")
        return {name: results.get(name, late) for name in tasks}


def _why(err: BaseException) -> str:
    """One short line: the screen has a line per fact (an HTTP error's repr has headers)."""
    status, reason = getattr(err, "status", None), getattr(err, "reason", None)
    lines = str(err).strip().splitlines()
    text = f"HTTP {status} {reason}" if status and reason else (lines[0] if lines else "")
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__


def _address(settings: Settings, service: str) -> str:
    return {
        "mqtt": f"{settings.mqtt.host}:{settings.mqtt.port}",
        "kafka": settings.kafka.bootstrap,
        "influxdb": settings.influx.url,
    }[service]


def _down(settings: Settings, service: str, err: object) -> ServiceFact:
    why = _why(err) if isinstance(err, BaseException) else "no answer"
    return ServiceFact(
        name=service,
        address=_address(settings, service),
        up=False,
        detail=why,
        latency_ms=0.0,
    )


def _timed(service: str, settings: Settings, check: Callable[[], str]) -> ServiceFact:
    start = time.perf_counter()
    try:
        detail, up = check(), True
    except Exception as err:
        detail, up = _why(err), False
    return ServiceFact(
        name=service,
        address=_address(settings, service),
        up=up,
        detail=detail,
        latency_ms=round(1000 * (time.perf_counter() - start), 1),
    )


# --- MQTT and InfluxDB ------------------------------------------------------------------------


def _mqtt(settings: Settings, timeout_s: float) -> ServiceFact:
    def connect() -> str:
        with socket.create_connection((settings.mqtt.host, settings.mqtt.port), timeout_s):
            return "accepts connections"

    return _timed("mqtt", settings, connect)


def _influx_client(settings: Settings, timeout_s: float) -> InfluxDBClient:
    return make_client(settings.influx, timeout_ms=int(timeout_s * 1000))


def _influx_ping(settings: Settings, timeout_s: float) -> ServiceFact:
    def ping() -> str:
        with _influx_client(settings, timeout_s) as client:
            PingService(client.api_client).get_ping()
        return "answers /ping"

    return _timed("influxdb", settings, ping)


def _query(settings: Settings, timeout_s: float, flux: str) -> list[dict[str, Any]]:
    with _influx_client(settings, timeout_s) as client:
        tables = client.query_api().query(flux)
    return [record.values for table in tables for record in table.records]


def tenant_filter(tenants: Sequence[str]) -> str:
    """The Flux condition that keeps these tenants' points (all when none), escaped (pure)."""
    if isinstance(tenants, str):  # a str is a Sequence[str] too: one tenant per character
        raise TypeError("tenant_filter takes a sequence of tenants")
    if not tenants:
        return ""
    return " and (" + " or ".join(f"r.{TENANT} == {literal(t)}" for t in tenants) + ")"


def known_query(bucket: str, lookback: timedelta, tenant_filter: str) -> str:
    """Flux: the tenants with readings within ``lookback``, from the series index (pure).

    Cheap however much is stored; InfluxDB 1.8 answers for whole shards (a day each), so a
    tenant may be listed up to a shard longer than asked.
    """
    return (
        'import "influxdata/influxdb/v1"\n'
        f'v1.tagValues(bucket: {literal(bucket)}, tag: "{TENANT}", '
        f'predicate: (r) => r._measurement == "{READING_MEASUREMENT}"{tenant_filter}, '
        f"start: -{int(lookback.total_seconds())}s)\n"
    )


def counts_query(bucket: str, since: datetime, tenant_filter: str) -> str:
    """Flux: readings per tenant stored since ``since`` (pure)."""
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> range(start: {literal(since)})\n"
        f'  |> filter(fn: (r) => r._measurement == "{READING_MEASUREMENT}" and '
        f'r._field == "{VALUE}"{tenant_filter})\n'
        f'  |> group(columns: ["{TENANT}"])\n'
        "  |> count()\n"
    )


def newest_query(bucket: str, since: datetime, tenant_filter: str) -> str:
    """Flux: each tenant's newest reading since ``since``: time, sensor, quantity (pure)."""
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> range(start: {literal(since)})\n"
        f'  |> filter(fn: (r) => r._measurement == "{READING_MEASUREMENT}" and '
        f'r._field == "{VALUE}"{tenant_filter})\n'
        "  |> last()\n"
        f'  |> group(columns: ["{TENANT}"])\n'
        '  |> sort(columns: ["_time"], desc: true)\n'
        "  |> limit(n: 1)\n"
        f'  |> keep(columns: ["_time", "{TENANT}", "{SENSOR}", "{QUANTITY}"])\n'
    )


def alerts_query(bucket: str, since: datetime, tenant_filter: str) -> str:
    """Flux: the state of every alert episode that began since ``since`` (pure)."""
    columns = ", ".join(f'"{c}"' for c in ("_time", "_value", *ALERT_COLUMNS))
    return (
        f"from(bucket: {literal(bucket)})\n"
        f"  |> range(start: {literal(since)})\n"
        f'  |> filter(fn: (r) => r._measurement == "{ALERT_MEASUREMENT}" and '
        f'r._field == "{STATE}"{tenant_filter})\n'
        "  |> group()\n"
        f"  |> keep(columns: [{columns}])\n"
    )


def _mine(options: ProbeOptions) -> str:
    return tenant_filter((options.tenant,) if options.tenant else ())


def _counts(settings: Settings, options: ProbeOptions, since: datetime) -> dict[str, int]:
    flux = counts_query(settings.influx.raw_bucket, since, _mine(options))
    return {row[TENANT]: int(row["_value"]) for row in _query(settings, options.timeout_s, flux)}


def _newest(
    settings: Settings, options: ProbeOptions, since: datetime, tenants: Sequence[str]
) -> dict[str, dict[str, Any]]:
    flux = newest_query(settings.influx.raw_bucket, since, tenant_filter(tenants))
    return {row[TENANT]: row for row in _query(settings, options.timeout_s, flux)}


def _known(settings: Settings, options: ProbeOptions) -> set[str]:
    flux = known_query(settings.influx.raw_bucket, options.lookback, _mine(options))
    return {row["_value"] for row in _query(settings, options.timeout_s, flux)}


def _alerts(settings: Settings, options: ProbeOptions, since: datetime) -> tuple[AlertFact, ...]:
    flux = alerts_query(settings.influx.aggregate_bucket, since, _mine(options))
    rows = _query(settings, options.timeout_s, flux)
    return tuple(
        AlertFact(
            tenant=row["tenant"],
            sensor_id=row["sensor_id"],
            rule=row["rule"],
            quantity=row["quantity"],
            started_at=row["_time"],
            open=row["_value"] == ALERT_OPEN,
        )
        for row in rows
    )


@dataclass(frozen=True, kw_only=True)
class Stored:
    """The raw bucket's answers: counts per tenant, and the newest readings since ``since``."""

    minute: dict[str, int]
    hour: dict[str, int]
    newest: dict[str, dict[str, Any]]
    since: datetime


def _activity(stored: Stored, tenants: set[str]) -> tuple[TenantActivity, ...]:
    """One row per tenant that stored anything lately, is known or is registered."""
    every = tenants | set(stored.minute) | set(stored.hour) | set(stored.newest)
    return tuple(_tenant(t, stored, stored.newest.get(t), stored.since) for t in sorted(every))


def _tenant(
    tenant: str, stored: Stored, newest: dict[str, Any] | None, since: datetime
) -> TenantActivity:
    return TenantActivity(
        tenant=tenant,
        last_minute=stored.minute.get(tenant, 0),
        last_hour=stored.hour.get(tenant, 0),
        newest=newest["_time"] if newest else None,
        newest_sensor=newest[SENSOR] if newest else None,
        newest_quantity=newest[QUANTITY] if newest else None,
        searched_since=since,
    )


def _older(
    settings: Settings, options: ProbeOptions, now: datetime, rows: tuple[TenantActivity, ...]
) -> tuple[TenantActivity, ...]:
    """The newest reading of quiet tenants over the look-back; when that takes too long, they
    stay 'none since' the recent window (best effort, never an error)."""
    quiet = [row.tenant for row in rows if row.newest is None][:MAX_QUIET_TENANTS]
    if not quiet or options.lookback <= options.recent:
        return rows
    since = now - options.lookback
    found = run_all(
        {"older": lambda: _newest(settings, options, since, quiet)}, options.timeout_s + 0.5
    )["older"]
    if isinstance(found, Exception):
        return rows
    stored = Stored(minute={}, hour={}, newest=found, since=since)
    return tuple(
        row.model_copy(
            update=_tenant(row.tenant, stored, found.get(row.tenant), since).model_dump(
                exclude={"tenant", "last_minute", "last_hour"}
            )
        )
        if row.tenant in quiet
        else row
        for row in rows
    )


# --- Kafka --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KafkaFacts:
    """What one admin client found: the service, the lag, the dead letters."""

    service: ServiceFact
    lag: LagFact | None = None
    deadletters: int | None = None
    errors: Mapping[str, str]


def kafka_facts(settings: Settings, timeout_s: float, now: datetime) -> KafkaFacts:
    """Kafka answers, the worker group's lag, the dead letters of the hour: one admin client."""
    problems: list[KafkaError] = []
    admin = AdminClient(
        client_config(settings.kafka)
        | {
            "socket.timeout.ms": int(timeout_s * 1000),
            "error_cb": problems.append,
            "logger": _quiet_logger(),  # the screen says what failed, once
        }
    )
    metadata: list[Any] = []

    def connect() -> str:
        try:
            metadata.append(admin.list_topics(timeout=timeout_s))
        except Exception:
            admin.poll(0)  # serves error_cb: why librdkafka could not connect
            causes = [e for e in problems if e.code() != KafkaError._ALL_BROKERS_DOWN]
            if causes:
                raise ConnectionError(causes[-1].str()) from None
            raise
        return f"{len(metadata[0].brokers)} broker(s), {len(metadata[0].topics)} topics"

    service = _timed("kafka", settings, connect)
    if not service.up:
        return KafkaFacts(service=service, errors={})
    errors: dict[str, str] = {}
    lag = deadletters = None
    try:
        lag = consumer_lag(admin, metadata[0], settings, timeout_s)
    except Exception as err:
        errors["lag"] = _why(err)
    try:
        since_ms = int((now - timedelta(hours=1)).timestamp() * 1000)
        deadletters = records_since(admin, metadata[0], settings.kafka, since_ms, timeout_s)
    except Exception as err:
        errors["deadletters"] = _why(err)
    return KafkaFacts(service=service, lag=lag, deadletters=deadletters, errors=errors)


def _quiet_logger() -> logging.Logger:
    quiet = logging.getLogger("urbanpulse.status.librdkafka")
    quiet.propagate = False
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
    return quiet


def _partitions(metadata: Any, topic: str) -> list[Any]:
    """The topic's partitions as TopicPartitions; empty when the topic does not exist."""
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return []
    return [TopicPartition(topic, p) for p in sorted(found.partitions)]


def _offsets(admin: Any, partitions: list[Any], spec: Any, timeout_s: float) -> dict[int, int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout_s)
    return {tp.partition: int(f.result(timeout=timeout_s).offset) for tp, f in futures.items()}


def consumer_lag(admin: Any, metadata: Any, settings: Settings, timeout_s: float) -> LagFact:
    """The worker group's lag on the readings topic: end offsets - committed offsets."""
    group, topic = settings.worker.app_id, settings.kafka.readings_topic
    partitions = _partitions(metadata, topic)
    if not partitions:
        return LagFact(
            group=group, topic=topic, topic_exists=False, lag=0, members=0, group_state="-"
        )
    [described] = admin.describe_consumer_groups([group], request_timeout=timeout_s).values()
    description = described.result(timeout=timeout_s)
    asked = [ConsumerGroupTopicPartitions(group, partitions)]
    [listed] = admin.list_consumer_group_offsets(asked, request_timeout=timeout_s).values()
    committed = {
        tp.partition: tp.offset for tp in listed.result(timeout=timeout_s).topic_partitions
    }
    ends = _offsets(admin, partitions, OffsetSpec.latest(), timeout_s)
    starts = _offsets(admin, partitions, OffsetSpec.earliest(), timeout_s)
    # No committed offset (negative): the worker starts at the first offset ("earliest").
    per = {
        p: max(0, end - (committed[p] if committed.get(p, -1) >= 0 else starts[p]))
        for p, end in ends.items()
    }
    return LagFact(
        group=group,
        topic=topic,
        topic_exists=True,
        lag=sum(per.values()),
        partitions=per,
        members=len(description.members),
        group_state=description.state.name,
    )


def records_since(
    admin: Any, metadata: Any, kafka: KafkaSettings, since_ms: int, timeout_s: float
) -> int:
    """Dead letters written since ``since_ms`` (epoch ms), from offsets by time."""
    partitions = _partitions(metadata, kafka.deadletter_topic)
    if not partitions:
        return 0
    firsts = _offsets(admin, partitions, OffsetSpec.for_timestamp(since_ms), timeout_s)
    ends = _offsets(admin, partitions, OffsetSpec.latest(), timeout_s)
    # -1: no record at or after that time in the partition
    return sum(ends[p] - first for p, first in firsts.items() if first >= 0)


# --- files --------------------------------------------------------------------------------------


def _supervisor(settings: Settings, now: datetime) -> SupervisorFact:
    path = status_path(settings.supervisor.run_dir)
    try:
        status = read_status(path)
    except (OSError, ValueError) as err:
        return SupervisorFact(path=str(path), state="unreadable", detail=str(err))
    if status is None:
        return SupervisorFact(path=str(path), state="absent")
    units = tuple(
        UnitFact(
            name=name,
            kind=unit.kind,
            state=unit.state,
            since=unit.since,
            restarts=unit.restarts,
            crash_looping=unit.crash_looping,
            last_exit=unit.last_exit.reason if unit.last_exit else None,
            next_start_at=unit.next_start_at,
        )
        for name, unit in status.units.items()
    )
    return SupervisorFact(
        path=str(path),
        state="gone" if status.is_stale(now) else status.state,
        updated_at=status.updated_at,
        units=units,
    )


def _registered(settings: Settings, tenant: str | None, errors: dict[str, str]) -> dict[str, int]:
    """Active sensors of the registry file per tenant; {} without a registry."""
    if not settings.streams.registry_path:
        return {}
    path = Path(settings.streams.registry_path)
    try:
        sensors = parse_registry(path.read_text(encoding="utf-8"), kind_of(path))
    except Exception as err:  # a registry the worker cannot read either: say so
        errors["registry"] = f"{path}: {_why(err)}"
        return {}
    counts: dict[str, int] = {}
    for (owner, _), info in sensors.items():
        if info.status == "active" and tenant in (None, owner):
            counts[owner] = counts.get(owner, 0) + 1
    return counts
