"""``urbanpulse status``: the verdict from facts, the screen, and the gathering's deadline."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from urbanpulse.status_probe import (
    alerts_query,
    counts_query,
    known_query,
    newest_query,
    run_all,
    tenant_filter,
)
from urbanpulse.status_screen import as_json, render
from urbanpulse.status_verdict import (
    AlertFact,
    Facts,
    LagFact,
    ServiceFact,
    SupervisorFact,
    TenantActivity,
    Thresholds,
    UnitFact,
    exit_code,
    verdict,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
THRESHOLDS = Thresholds(max_lag=1000, max_quiet=timedelta(minutes=10))


def service(name: str, up: bool = True) -> ServiceFact:
    detail = "fine" if up else "ConnectionRefusedError: [Errno 111] Connection refused"
    return ServiceFact(name=name, address=f"{name}:1", up=up, detail=detail, latency_ms=1.0)  # type: ignore[arg-type]


def unit(name: str, **changes: Any) -> UnitFact:
    fields: dict[str, Any] = {
        "name": name,
        "kind": "component",
        "state": "running",
        "since": NOW - timedelta(hours=1),
        "restarts": 0,
        "crash_looping": False,
    }
    return UnitFact(**(fields | changes))


def supervised(*units: UnitFact, state: str = "running") -> SupervisorFact:
    return SupervisorFact(
        path=".local/run/supervisor.json",
        state=state,  # type: ignore[arg-type]
        updated_at=NOW - timedelta(seconds=2),
        units=units or (unit("ingest"), unit("worker"), unit("api")),
    )


def healthy(**changes: Any) -> Facts:
    """A town that works: every service up, the worker caught up, readings a minute old."""
    fields: dict[str, Any] = {
        "at": NOW,
        "services": (service("mqtt"), service("kafka"), service("influxdb")),
        "supervisor": supervised(),
        "lag": LagFact(
            group="urbanpulse-worker",
            topic="readings",
            topic_exists=True,
            lag=12,
            partitions={0: 12},
            members=1,
            group_state="STABLE",
        ),
        "activity": (
            TenantActivity(
                tenant="demo",
                last_minute=40,
                last_hour=2400,
                newest=NOW - timedelta(seconds=30),
                newest_sensor="air-001",
                newest_quantity="pm2_5",
            ),
        ),
        "deadletters_last_hour": 3,
        "alerts": (),
    }
    return Facts(**(fields | changes))


def messages(facts: Facts, thresholds: Thresholds = THRESHOLDS) -> list[str]:
    return [p.message for p in verdict(facts, thresholds).problems]


def test_a_working_town_is_ok_and_exits_0() -> None:
    result = verdict(healthy(), THRESHOLDS)
    assert result.ok and result.problems == () and result.notes == ()
    assert exit_code(result) == 0


def test_a_service_that_does_not_answer_is_a_problem_and_exits_1() -> None:
    facts = healthy(services=(service("mqtt"), service("kafka", up=False), service("influxdb")))
    result = verdict(facts, THRESHOLDS)
    assert [p.check for p in result.problems] == ["kafka"]
    assert "kafka at kafka:1 does not answer: ConnectionRefusedError" in result.problems[0].message
    assert exit_code(result) == 1


def test_facts_of_a_down_service_are_not_reported_twice() -> None:
    facts = healthy(
        services=(service("mqtt"), service("kafka", up=False), service("influxdb")),
        lag=None,
        deadletters_last_hour=None,
        errors={"lag": "KafkaException: transport", "activity": "ApiException: HTTP 500 boom"},
    )
    assert messages(facts) == [
        "kafka at kafka:1 does not answer: ConnectionRefusedError: [Errno 111] Connection refused",
        "could not read the activity: ApiException: HTTP 500 boom",  # InfluxDB itself is up
    ]


def test_a_crash_looping_component_is_a_problem() -> None:
    looping = unit(
        "worker", state="backing-off", restarts=7, crash_looping=True, last_exit="exit code 1"
    )
    facts = healthy(supervisor=supervised(unit("ingest"), looping, unit("api")))
    assert messages(facts) == ["worker is crash-looping (7 restarts; last exit: exit code 1)"]


def test_a_component_down_between_restarts_is_a_problem_a_starting_service_a_note() -> None:
    down = unit(
        "ingest",
        state="backing-off",
        restarts=1,
        last_exit="killed by signal SIGKILL (9)",
        next_start_at=NOW + timedelta(seconds=2),
    )
    starting = unit("kafka", kind="service", state="starting")
    result = verdict(healthy(supervisor=supervised(down, unit("worker"), starting)), THRESHOLDS)
    assert [p.message for p in result.problems] == [
        "ingest is backing-off after killed by signal SIGKILL (9), restarting at "
        "2026-12-05 12:00:02 UTC"
    ]
    assert result.notes == ("kafka is starting (since 2026-12-05 11:00:00 UTC)",)


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ("gone", "`urbanpulse up` is gone (killed, or its machine stopped)"),
        ("stopped", "`urbanpulse up` has stopped the platform"),
        ("stopping", "`urbanpulse up` is stopping the platform"),
    ],
)
def test_a_supervisor_that_does_not_run_is_a_problem(state: str, says: str) -> None:
    [message] = messages(healthy(supervisor=supervised(state=state)))
    assert message == says + "; its status file was last written at 2026-12-05 11:59:58 UTC"


def test_no_supervisor_is_a_note_an_unreadable_status_file_a_problem() -> None:
    absent = SupervisorFact(path="/run/urbanpulse/supervisor.json", state="absent")
    result = verdict(healthy(supervisor=absent), THRESHOLDS)
    assert result.ok and "no supervisor status file at /run/urbanpulse" in result.notes[0]
    broken = SupervisorFact(path="x", state="unreadable", detail="x has format 2")
    assert messages(healthy(supervisor=broken)) == ["x has format 2"]


def test_lag_over_the_threshold_is_a_problem() -> None:
    lag = healthy().lag
    assert lag is not None
    assert messages(healthy(lag=lag.model_copy(update={"lag": 1000}))) == []
    assert messages(healthy(lag=lag.model_copy(update={"lag": 1001}))) == [
        "the stream worker's group urbanpulse-worker on readings is 1,001 readings behind "
        "(more than 1,000)"
    ]


def test_lag_with_no_worker_in_the_group_is_a_problem_no_lag_is_not() -> None:
    lag = healthy().lag
    assert lag is not None
    idle = lag.model_copy(update={"lag": 0, "members": 0, "group_state": "EMPTY"})
    assert messages(healthy(lag=idle)) == []
    waiting = lag.model_copy(update={"lag": 5, "members": 0, "group_state": "EMPTY"})
    assert messages(healthy(lag=waiting)) == [
        "the stream worker's group urbanpulse-worker on readings has no member: 5 readings wait "
        "for a stream worker"
    ]


def test_no_readings_topic_yet_is_a_note() -> None:
    missing = LagFact(
        group="g", topic="readings", topic_exists=False, lag=0, members=0, group_state="-"
    )
    result = verdict(healthy(lag=missing), THRESHOLDS)
    assert result.ok and result.notes == (
        "the readings topic readings does not exist yet (nothing ingested)",
    )


def activity(tenant: str, minutes_ago: float | None) -> TenantActivity:
    newest = None if minutes_ago is None else NOW - timedelta(minutes=minutes_ago)
    return TenantActivity(tenant=tenant, last_hour=0 if newest is None else 1, newest=newest)


def test_nothing_stored_lately_while_sensors_are_known_is_a_problem() -> None:
    assert messages(healthy(activity=(activity("demo", 10),))) == []
    assert messages(healthy(activity=(activity("demo", 11), activity("old", 300)))) == [
        "no reading stored at all in the last 10 minutes (newest: 2026-12-05 11:49:00 UTC)"
    ]
    quiet = Thresholds(max_quiet=timedelta(minutes=20))
    assert messages(healthy(activity=(activity("demo", 11),)), quiet) == []


def test_a_quiet_registered_tenant_is_a_problem_an_unregistered_one_a_note() -> None:
    facts = healthy(
        activity=(activity("town", 1), activity("ended-pilot", 90), activity("village", 45)),
        registered={"town": 40, "village": 12, "newtown": 3},
    )
    result = verdict(facts, THRESHOLDS)
    assert [p.message for p in result.problems] == [
        "tenant newtown (3 registered sensors): no reading stored in the last 10 minutes "
        "(newest: none in the look-back)",
        "tenant village (12 registered sensors): no reading stored in the last 10 minutes "
        "(newest: 2026-12-05 11:15:00 UTC)",
    ]
    assert result.notes == (
        "1 tenant(s) without registered sensors stored nothing in the last 10 minutes: ended-pilot",
    )


def test_one_tenant_asked_about_is_judged_alone() -> None:
    facts = healthy(
        tenant="village", activity=(activity("village", 45),), registered={"village": 12}
    )
    assert messages(facts) == [
        "no reading stored for tenant village in the last 10 minutes "
        "(newest: 2026-12-05 11:15:00 UTC)"
    ]


def test_a_fresh_installation_with_no_sensor_is_ok() -> None:
    result = verdict(healthy(activity=(), lag=None), THRESHOLDS)
    assert result.ok
    assert result.notes == (
        "no sensor known yet: no reading stored within the look-back, no registry",
    )
    registered = verdict(healthy(activity=(), registered={"demo": 2}), THRESHOLDS)
    assert [p.message for p in registered.problems] == [
        "no reading stored at all in the last 10 minutes (newest: none in the look-back)",
        "tenant demo (2 registered sensors): no reading stored in the last 10 minutes "
        "(newest: none in the look-back)",
    ]


def test_dead_letters_fail_only_over_a_threshold_given() -> None:
    facts = healthy(deadletters_last_hour=500)
    assert messages(facts) == []
    strict = Thresholds(max_deadletters=499)
    assert messages(facts, strict) == ["500 dead letters in the last hour (more than 499)"]


def alert(sensor: str, rule: str, open_: bool, minutes_ago: float) -> AlertFact:
    return AlertFact(
        tenant="demo",
        sensor_id=sensor,
        rule=rule,
        quantity="all" if rule == "stale" else "pm2_5",
        started_at=NOW - timedelta(minutes=minutes_ago),
        open=open_,
    )


def test_stale_sensors_are_listed_but_never_fail() -> None:
    alerts = (
        alert("noise-4", "stale", True, 600),
        alert("air-2", "stale", True, 30),
        alert("air-3", "stale", False, 20),  # back again
        alert("air-1", "pm2_5_who_24h", True, 5),
    )
    facts = healthy(alerts=alerts)
    result = verdict(facts, THRESHOLDS)
    assert result.ok and result.notes == ("2 sensor(s) silent (open 'stale' alerts)",)
    assert [a.sensor_id for a in facts.stale_sensors()] == ["noise-4", "air-2"]
    screen = render(facts, result)
    assert "Alerts: 3 began in the last hour (2 still open); 3 open in all" in screen
    assert "demo/noise-4  silent since 2026-12-05 02:00:00 UTC" in screen


def test_the_screen_puts_the_verdict_first_and_every_fact_on_it() -> None:
    looping = unit(
        "worker", state="backing-off", restarts=7, crash_looping=True, last_exit="exit code 1"
    )
    facts = healthy(supervisor=supervised(unit("ingest"), looping))
    screen = render(facts, verdict(facts, THRESHOLDS))
    lines = screen.splitlines()
    assert lines[0] == "UrbanPulse status at 2026-12-05 12:00:00 UTC: 1 PROBLEM(S)"
    for expected in (
        "  kafka     up  kafka:1     fine (1 ms)",
        "  worker  backing-off CRASH-LOOPING  since 2026-12-05 11:00:00 UTC  7 restarts, last "
        "exit: exit code 1",
        "  lag on readings: 12 readings",
        "  demo    40           2,400      2026-12-05 11:59:30 UTC air-001 pm2_5",
        "Dead letters, last hour: 3",
        "  ✗ worker is crash-looping (7 restarts; last exit: exit code 1)",
    ):
        assert expected in lines


def test_the_json_document_carries_the_verdict_and_the_facts() -> None:
    facts = healthy(deadletters_last_hour=None, errors={"deadletters": "KafkaException: x"})
    result = verdict(facts, THRESHOLDS)
    document = json.loads(as_json(facts, result))
    assert document["ok"] is False
    assert document["problems"] == [
        {"check": "deadletters", "message": "could not read the deadletters: KafkaException: x"}
    ]
    assert document["facts"]["lag"]["lag"] == 12
    assert document["facts"]["activity"][0]["newest"] == "2026-12-05T11:59:30Z"
    assert Facts.model_validate(document["facts"]) == facts


def test_gathering_answers_by_its_deadline_whatever_a_task_does() -> None:
    release = threading.Event()

    def stuck() -> str:
        release.wait(30)
        return "too late"

    def broken() -> str:
        raise ConnectionError("refused")

    started = time.monotonic()
    found = run_all({"fast": lambda: "ok", "stuck": stuck, "broken": broken}, deadline_s=0.5)
    assert time.monotonic() - started < 2
    release.set()
    assert found["fast"] == "ok"
    assert isinstance(found["stuck"], TimeoutError)
    assert str(found["stuck"]) == "no answer within 0.5 s"
    assert isinstance(found["broken"], ConnectionError)


def test_queries_name_only_the_layout_and_escape_the_tenant() -> None:
    since = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    hostile = tenant_filter(['x" or true or "'])
    assert hostile == ' and (r.tenant == "x\\" or true or \\"")'
    assert tenant_filter(["a", "b"]) == ' and (r.tenant == "a" or r.tenant == "b")'
    assert tenant_filter([]) == ""
    with pytest.raises(TypeError):
        tenant_filter("demo")
    for build in (counts_query, newest_query, alerts_query):
        text = build("urbanpulse/raw", since, hostile)
        assert 'from(bucket: "urbanpulse/raw")' in text
        assert "range(start: 2026-12-05T11:00:00.000000Z)" in text
        assert hostile + ")" in text
    assert 'r._measurement == "reading" and r._field == "value"' in counts_query("b", since, "")
    assert 'r._measurement == "alert" and r._field == "state"' in alerts_query("b", since, "")


def test_a_quiet_tenant_whose_newest_reading_was_not_found_says_how_far_it_looked() -> None:
    looked = TenantActivity(tenant="demo", searched_since=NOW - timedelta(hours=1))
    assert messages(healthy(activity=(looked,), registered={"demo": 3})) == [
        "no reading stored at all in the last 10 minutes (newest: none since 2026-12-05 "
        "11:00:00 UTC)",
        "tenant demo (3 registered sensors): no reading stored in the last 10 minutes "
        "(newest: none since 2026-12-05 11:00:00 UTC)",
    ]
    screen = render(healthy(activity=(looked,)), verdict(healthy(activity=(looked,)), THRESHOLDS))
    assert "  demo    0            0          none since 2026-12-05 11:00:00 UTC" in screen


def test_known_tenants_come_from_the_series_index_with_a_duration() -> None:
    text = known_query("urbanpulse/raw", timedelta(hours=24), tenant_filter(["demo"]))
    assert text == (
        'import "influxdata/influxdb/v1"\n'
        'v1.tagValues(bucket: "urbanpulse/raw", tag: "tenant", predicate: (r) => '
        'r._measurement == "reading" and (r.tenant == "demo"), start: -86400s)\n'
    )
