"""``urbanpulse status``: the facts about a running platform, and the verdict on them (pure).

:mod:`urbanpulse.status_probe` gathers :class:`Facts` (each with a short timeout, so that a
service that answers nothing costs seconds, not minutes); :func:`verdict` decides from them
alone whether something is wrong, so every rule is unit-tested without a server. What counts
as wrong (docs/production.md, "Is it working?"):

* a service (MQTT broker, Kafka, InfluxDB) that does not answer, or a fact that could not be
  read from a service that does;
* under ``urbanpulse up``: a supervisor that is gone, stopping or stopped, a component or
  watched service that is not running (``starting`` is only noted) or crash-looping;
* the stream worker's consumer group further behind than ``max_lag`` readings, or behind with
  no member to catch up;
* no reading stored in the last ``max_quiet`` while sensors are known (stored within the
  look-back, or registered), for all tenants together, and for each tenant with registered
  sensors (a tenant without any that went quiet is a note: a pilot that ended, a test);
* more dead letters in the last hour than ``max_deadletters``, when that is set.

Stale sensors and alerts are reported, never a failure: a silent sensor is a matter for the
field team, not for the platform's monitoring. No sensor known at all (a fresh installation)
is a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from urbanpulse.influx_layout import STALE_RULE


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True)


class ServiceFact(_Fact):
    """Whether one service answered, how fast, or why not."""

    name: Literal["mqtt", "kafka", "influxdb"]
    address: str
    up: bool
    detail: str
    latency_ms: float


class UnitFact(_Fact):
    """One unit of the supervisor's status file."""

    name: str
    kind: Literal["component", "service"]
    state: Literal["starting", "running", "backing-off", "stopped"]
    since: datetime
    restarts: int
    crash_looping: bool
    last_exit: str | None = None
    next_start_at: datetime | None = None


class SupervisorFact(_Fact):
    """What the status file of ``urbanpulse up`` says (``absent``: no file; ``gone``: stale)."""

    path: str
    state: Literal["running", "stopping", "stopped", "gone", "absent", "unreadable"]
    detail: str = ""
    updated_at: datetime | None = None
    units: tuple[UnitFact, ...] = ()


class LagFact(_Fact):
    """How far the stream worker's consumer group is behind on the readings topic."""

    group: str
    topic: str
    topic_exists: bool
    lag: int = Field(description="readings not yet processed and committed, all partitions")
    partitions: dict[int, int] = Field(default_factory=dict, description="lag per partition")
    members: int = Field(description="consumers in the group now")
    group_state: str = Field(description="Kafka's state of the group, e.g. STABLE, EMPTY")


class TenantActivity(_Fact):
    """Readings of one tenant stored lately, and its newest one (by observation time)."""

    tenant: str
    last_minute: int = 0
    last_hour: int = 0
    newest: datetime | None = None
    newest_sensor: str | None = None
    newest_quantity: str | None = None
    searched_since: datetime | None = Field(
        None, description="how far back the newest reading was looked for"
    )


class AlertFact(_Fact):
    """One alert episode of the look-back (its time: when it began)."""

    tenant: str
    sensor_id: str
    rule: str
    quantity: str
    started_at: datetime
    open: bool


class Facts(_Fact):
    """Everything ``urbanpulse status`` looked at; None where it could not be read."""

    at: datetime
    tenant: str | None = Field(None, description="only this tenant's readings and alerts")
    services: tuple[ServiceFact, ...]
    supervisor: SupervisorFact
    lag: LagFact | None = None
    activity: tuple[TenantActivity, ...] | None = None
    deadletters_last_hour: int | None = None
    alerts: tuple[AlertFact, ...] | None = None
    registered: dict[str, int] = Field(
        default_factory=dict,
        description="active sensors of the registry file, per tenant (only ``tenant``'s)",
    )
    errors: dict[str, str] = Field(
        default_factory=dict, description="fact → why it could not be read"
    )

    def stale_sensors(self) -> list[AlertFact]:
        """Sensors with an open stale alert, the longest silent first."""
        found = [a for a in self.alerts or () if a.open and a.rule == STALE_RULE]
        return sorted(found, key=lambda a: (a.started_at, a.tenant, a.sensor_id))


# Which service each fact is read from: when the service is down, that says it already.
FACT_SOURCES = {
    "lag": "kafka",
    "deadletters": "kafka",
    "activity": "influxdb",
    "alerts": "influxdb",
    "registry": "",
}


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Where ``verdict`` draws the line (``urbanpulse status`` options)."""

    max_lag: int = 10_000
    max_quiet: timedelta = timedelta(minutes=10)
    max_deadletters: int | None = None


class Problem(_Fact):
    """One thing that is wrong, and in which part."""

    check: str
    message: str


class Verdict(_Fact):
    """``ok`` when there is no problem; notes are worth knowing but not wrong."""

    ok: bool
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]


def verdict(facts: Facts, thresholds: Thresholds) -> Verdict:
    """Decide from the facts alone whether the platform works."""
    problems: list[Problem] = []
    notes: list[str] = []
    for check in (_services, _supervisor, _lag, _freshness, _deadletters, _stale):
        found, noted = check(facts, thresholds)
        problems += found
        notes += noted
    return Verdict(ok=not problems, problems=tuple(problems), notes=tuple(notes))


Findings = tuple[list[Problem], list[str]]


def _services(facts: Facts, _: Thresholds) -> Findings:
    problems = [
        Problem(check=s.name, message=f"{s.name} at {s.address} does not answer: {s.detail}")
        for s in facts.services
        if not s.up
    ]
    down = {s.name for s in facts.services if not s.up}
    for fact, why in facts.errors.items():
        if FACT_SOURCES.get(fact) not in down:
            problems.append(Problem(check=fact, message=f"could not read the {fact}: {why}"))
    return problems, []


def _supervisor(facts: Facts, _: Thresholds) -> Findings:
    sup = facts.supervisor
    if sup.state == "absent":
        return [], [
            f"no supervisor status file at {sup.path}: the components are not run by "
            "`urbanpulse up` here (or its URBANPULSE_SUPERVISOR__RUN_DIR differs), so only "
            "their effects are checked"
        ]
    if sup.state == "unreadable":
        return [Problem(check="supervisor", message=sup.detail)], []
    if sup.state != "running":
        why = {
            "gone": "is gone (killed, or its machine stopped)",
            "stopping": "is stopping the platform",
            "stopped": "has stopped the platform",
        }[sup.state]
        since = f"; its status file was last written at {_hms(sup.updated_at)}"
        return [Problem(check="supervisor", message=f"`urbanpulse up` {why}{since}")], []
    problems: list[Problem] = []
    notes: list[str] = []
    for unit in sup.units:
        if unit.crash_looping:
            problems.append(
                Problem(
                    check=unit.name,
                    message=f"{unit.name} is crash-looping ({unit.restarts} restarts; last "
                    f"exit: {unit.last_exit or 'unknown'})",
                )
            )
        elif unit.state == "starting":
            notes.append(f"{unit.name} is starting (since {_hms(unit.since)})")
        elif unit.state != "running":
            then = f", restarting at {_hms(unit.next_start_at)}" if unit.next_start_at else ""
            why = f" after {unit.last_exit}" if unit.last_exit else ""
            problems.append(
                Problem(check=unit.name, message=f"{unit.name} is {unit.state}{why}{then}")
            )
    return problems, notes


def _lag(facts: Facts, thresholds: Thresholds) -> Findings:
    lag = facts.lag
    if lag is None:
        return [], []
    if not lag.topic_exists:
        return [], [f"the readings topic {lag.topic} does not exist yet (nothing ingested)"]
    where = f"the stream worker's group {lag.group} on {lag.topic}"
    if lag.lag > thresholds.max_lag:
        message = f"{where} is {lag.lag:,} readings behind (more than {thresholds.max_lag:,})"
        return [Problem(check="lag", message=message)], []
    if lag.lag > 0 and lag.members == 0:
        message = f"{where} has no member: {lag.lag:,} readings wait for a stream worker"
        return [Problem(check="lag", message=message)], []
    return [], []


def _freshness(facts: Facts, thresholds: Thresholds) -> Findings:
    """Nothing stored lately while sensors are known: for all tenants at once, and for each
    tenant with registered sensors. A tenant without registered sensors that went quiet (a
    pilot that ended, a test) is only noted: nobody declared that it should send."""
    if facts.activity is None:
        return [], []
    known = bool(facts.activity or facts.registered)
    if not known:
        return [], ["no sensor known yet: no reading stored within the look-back, no registry"]
    minutes = f"{thresholds.max_quiet.total_seconds() / 60:g} minutes"
    quiet = [a for a in facts.activity if _quiet(a, facts.at, thresholds)]
    problems: list[Problem] = []
    never = datetime.min.replace(tzinfo=UTC)
    latest = max(facts.activity, key=lambda a: a.newest or never, default=None)
    if latest is None or _quiet(latest, facts.at, thresholds):
        who = f"for tenant {facts.tenant}" if facts.tenant else "at all"
        last = _newest(latest) if latest else "none in the look-back"
        problems.append(
            Problem(
                check="readings",
                message=f"no reading stored {who} in the last {minutes} (newest: {last})",
            )
        )
    if facts.tenant:
        return problems, []  # the one tenant asked about: the check above was about it alone
    seen = {a.tenant: a for a in facts.activity}
    for tenant, count in sorted(facts.registered.items()):
        activity = seen.get(tenant)
        if activity is None or activity in quiet:
            last = _newest(activity) if activity else "none in the look-back"
            problems.append(
                Problem(
                    check="readings",
                    message=f"tenant {tenant} ({count} registered sensors): no reading stored "
                    f"in the last {minutes} (newest: {last})",
                )
            )
    unregistered = [a.tenant for a in quiet if a.tenant not in facts.registered]
    if unregistered:
        shown = ", ".join(unregistered[:5]) + (", …" if len(unregistered) > 5 else "")
        note = f"{len(unregistered)} tenant(s) without registered sensors stored nothing in the "
        return problems, [note + f"last {minutes}: {shown}"]
    return problems, []


def _newest(activity: TenantActivity) -> str:
    if activity.newest:
        return _hms(activity.newest)
    if activity.searched_since:
        return f"none since {_hms(activity.searched_since)}"
    return "none in the look-back"


def _quiet(activity: TenantActivity, now: datetime, thresholds: Thresholds) -> bool:
    return activity.newest is None or now - activity.newest > thresholds.max_quiet


def _deadletters(facts: Facts, thresholds: Thresholds) -> Findings:
    count, limit = facts.deadletters_last_hour, thresholds.max_deadletters
    if count is None or limit is None or count <= limit:
        return [], []
    message = f"{count:,} dead letters in the last hour (more than {limit:,})"
    return [Problem(check="deadletters", message=message)], []


def _stale(facts: Facts, _: Thresholds) -> Findings:
    stale = facts.stale_sensors()
    if not stale:
        return [], []
    return [], [f"{len(stale)} sensor(s) silent (open '{STALE_RULE}' alerts)"]


def _hms(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "never"


def exit_code(result: Verdict) -> int:
    """0 when all is well, 1 when something is wrong (cron, monitoring checks)."""
    return 0 if result.ok else 1
