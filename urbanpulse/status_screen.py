"""``urbanpulse status`` for people (one screen of text) and for machines (JSON) (pure)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from urbanpulse.status_verdict import FACT_SOURCES, Facts, Verdict

MAX_ROWS = 20  # tenants and stale sensors shown on the screen; --json has them all


def as_json(facts: Facts, result: Verdict) -> str:
    """``{"ok", "problems", "notes", "facts"}``, one JSON document."""
    document = {
        "ok": result.ok,
        "problems": [p.model_dump(mode="json") for p in result.problems],
        "notes": list(result.notes),
        "facts": facts.model_dump(mode="json"),
    }
    return json.dumps(document, indent=2)


def render(facts: Facts, result: Verdict) -> str:
    """The whole screen: the verdict first, then every fact, problems and notes last."""
    head = "OK" if result.ok else f"{len(result.problems)} PROBLEM(S)"
    scope = f", tenant {facts.tenant}" if facts.tenant else ""
    lines = [f"UrbanPulse status at {_time(facts.at)}{scope}: {head}", ""]
    for section in (_services, _components, _stream, _readings, _events):
        lines += [*section(facts), ""]
    if result.problems:
        lines += ["Problems", *(f"  ✗ {p.message}" for p in result.problems), ""]
    if result.notes:
        lines += ["Notes", *(f"  · {note}" for note in result.notes), ""]
    return "\n".join(lines).rstrip() + "\n"


def _services(facts: Facts) -> list[str]:
    rows = [
        (s.name, "up" if s.up else "DOWN", s.address, f"{s.detail} ({s.latency_ms:.0f} ms)")
        for s in facts.services
    ]
    return ["Services", *_table(rows)]


def _components(facts: Facts) -> list[str]:
    sup = facts.supervisor
    if sup.state == "absent":
        return ["Components: no `urbanpulse up` status file here"]
    if sup.state == "unreadable":
        return [f"Components: {sup.detail}"]
    title = f"Components (`urbanpulse up`: {sup.state}, status of {_time(sup.updated_at)})"
    rows = [
        (
            unit.name,
            unit.state + (" CRASH-LOOPING" if unit.crash_looping else ""),
            f"since {_time(unit.since)}",
            f"{unit.restarts} restart{'' if unit.restarts == 1 else 's'}"
            + (f", last exit: {unit.last_exit}" if unit.last_exit else ""),
        )
        for unit in sup.units
    ]
    return [title, *_table(rows)]


def _stream(facts: Facts) -> list[str]:
    lag = facts.lag
    if lag is None:
        return [f"Stream worker: {_unread(facts, 'lag')}"]
    if not lag.topic_exists:
        return [f"Stream worker: no topic {lag.topic} yet"]
    members = f"{lag.members} member" + ("" if lag.members == 1 else "s")
    return [
        f"Stream worker (consumer group {lag.group}, {members}, {lag.group_state.lower()})",
        f"  lag on {lag.topic}: {lag.lag:,} readings",
    ]


def _readings(facts: Facts) -> list[str]:
    if facts.activity is None:
        return [f"Readings stored: {_unread(facts, 'activity')}"]
    if not facts.activity:
        return ["Readings stored: none within the look-back"]
    rows = [("tenant", "last minute", "last hour", "newest reading")]
    never = datetime.min.replace(tzinfo=UTC)
    newest_first = sorted(facts.activity, key=lambda a: a.newest or never, reverse=True)
    for a in newest_first[:MAX_ROWS]:
        newest = f"{_time(a.newest)} {a.newest_sensor} {a.newest_quantity}" if a.newest else ""
        newest = newest or (f"none since {_time(a.searched_since)}" if a.searched_since else "-")
        rows.append((a.tenant, f"{a.last_minute:,}", f"{a.last_hour:,}", newest))
    more = len(facts.activity) - MAX_ROWS
    tail = [f"  … and {more} more tenants (--json lists them)"] if more > 0 else []
    return ["Readings stored (by observation time)", *_table(rows), *tail]


def _events(facts: Facts) -> list[str]:
    letters = facts.deadletters_last_hour
    lines = [
        "Dead letters, last hour: "
        + (f"{letters:,}" if letters is not None else _unread(facts, "deadletters"))
    ]
    if facts.alerts is None:
        return [*lines, f"Alerts: {_unread(facts, 'alerts')}"]
    hour_ago = facts.at.timestamp() - 3600
    started = sum(1 for a in facts.alerts if a.started_at.timestamp() >= hour_ago)
    still_open = sum(1 for a in facts.alerts if a.started_at.timestamp() >= hour_ago and a.open)
    open_now = sum(1 for a in facts.alerts if a.open)
    lines.append(
        f"Alerts: {started} began in the last hour ({still_open} still open); "
        f"{open_now} open in all"
    )
    stale = facts.stale_sensors()
    lines.append(f"Stale sensors (open stale alerts): {len(stale)}")
    rows = [(f"{a.tenant}/{a.sensor_id}", f"silent since {_time(a.started_at)}") for a in stale]
    lines += _table(rows[:MAX_ROWS])
    if len(rows) > MAX_ROWS:
        lines.append(f"  … and {len(rows) - MAX_ROWS} more (--json lists them)")
    return lines


def _unread(facts: Facts, fact: str) -> str:
    """Why a fact is missing: its service is down (said above), or its own error."""
    source = FACT_SOURCES.get(fact, "")
    if any(s.name == source and not s.up for s in facts.services):
        return f"not read ({source} does not answer)"
    return facts.errors.get(fact, "not read")


def _table(rows: Iterable[tuple[str, ...]]) -> list[str]:
    rows = list(rows)
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _time(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "never"
