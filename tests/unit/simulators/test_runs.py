"""The stream each simulator mode sends, its pacing and limit, and the run's summary (pure)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulators.engine import plan
from simulators.faults import Expectations
from simulators.options import SimulateOptions, spans_of
from simulators.outputs import unmapped_applications
from simulators.publisher import RunSummary
from simulators.runs import (
    LOAD_SEND_LOG,
    RunStream,
    arrival_clock,
    fleet_counts,
    stream_for_mode,
    summary_document,
)
from simulators.scenario import build_fleet, load_scenario, scenario_path

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_realtime_messages_arrive_when_observed_history_at_once() -> None:
    clock = arrival_clock("realtime", NOW, plan("realtime", NOW, None, 1.0))
    assert clock is not None
    assert clock(NOW - 10 * MINUTE) == NOW  # history: sent at start
    assert clock(NOW + MINUTE) == NOW + MINUTE


def test_backfill_messages_all_arrive_now() -> None:
    clock = arrival_clock("backfill", NOW, plan("backfill", NOW, 3600, 1.0))
    assert clock is not None
    assert clock(NOW - 50 * MINUTE) == clock(NOW - MINUTE) == NOW


def test_accelerated_messages_arrive_at_the_speeded_up_pace() -> None:
    window = plan("accelerated", NOW, 86400, 1440)
    clock = arrival_clock("accelerated", NOW, window)
    assert clock is not None
    assert clock(window.start) == NOW
    assert clock(window.start + timedelta(hours=24)) == NOW + MINUTE  # a day in a minute


def _stream(options: SimulateOptions) -> RunStream:
    town = load_scenario(scenario_path("town"))
    spans = spans_of(options.mode, options.duration, options.history)
    return stream_for_mode(
        town,
        build_fleet(town),
        options,
        spans=spans,
        now=NOW,
        expectations=Expectations(),
    )


def test_load_runs_rate_times_duration_messages_and_logs_sends_by_default() -> None:
    run = _stream(SimulateOptions(mode="load", rate=50.0, duration="90s"))
    assert run.limit == 4500 and run.send_log == LOAD_SEND_LOG
    assert (run.pacer.start, run.pacer.speed) == (NOW, 1.0)
    first = list(itertools.islice(run.stream, 3))
    assert [item.due for item in first] == [NOW + timedelta(seconds=k / 50) for k in range(3)]


def test_load_limit_and_send_log_follow_the_options() -> None:
    asked = SimulateOptions(mode="load", max_messages=7, send_log=Path("sends.jsonl"))
    run = _stream(asked)
    assert (run.limit, run.send_log) == (7, Path("sends.jsonl"))
    assert _stream(SimulateOptions(mode="load", rate=0.001, duration="1s")).limit == 1


def test_realtime_starts_with_its_history_and_runs_on_the_wall_clock() -> None:
    run = _stream(SimulateOptions(mode="realtime", history="10m", duration="1m", faults=False))
    assert (run.pacer.start, run.pacer.speed, run.limit, run.send_log) == (NOW, 1.0, None, None)
    items = list(run.stream)
    observed = [i.message.observed_at for i in items if i.message is not None]
    assert min(observed) >= NOW - 10 * MINUTE and min(observed) < NOW - 5 * MINUTE
    assert max(observed) < NOW + MINUTE


def test_backfill_sends_the_past_as_fast_as_possible() -> None:
    run = _stream(SimulateOptions(mode="backfill", duration="1h", max_messages=5, faults=False))
    assert (run.pacer.start, run.pacer.speed, run.limit) == (NOW - timedelta(hours=1), None, 5)
    observed = [i.message.observed_at for i in run.stream if i.message is not None]
    assert min(observed) >= NOW - timedelta(hours=1) and max(observed) < NOW


def test_fleet_counts_name_each_format_once() -> None:
    fleet = build_fleet(load_scenario(scenario_path("town")))
    counts = fleet_counts(fleet)
    assert counts.startswith("chirpstack ") and ", json " in counts
    assert sum(int(part.split()[1]) for part in counts.split(", ")) == len(fleet)


def test_summary_document_adds_mode_tenant_and_map() -> None:
    summary = RunSummary(messages=3, readings=9, seconds=1.5)
    body = summary_document(summary, mode="backfill", tenant="t1", tenant_map={"a": "t1"})
    assert body["messages"] == 3 and body["messages_per_s"] == 2.0
    assert (body["mode"], body["tenant"], body["tenant_map"]) == ("backfill", "t1", {"a": "t1"})


def test_unmapped_applications_are_those_sent_elsewhere_or_nowhere() -> None:
    mapping = {"b-app": "t1", "a-app": "t1", "ok": "t1"}
    configured = {"ok": "t1", "b-app": "other"}
    assert unmapped_applications(mapping, configured) == ["a-app", "b-app"]
    assert unmapped_applications({}, configured) == []
