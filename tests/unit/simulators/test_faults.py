"""Determinism, and the ground truth says exactly what was sent.

Three simulated hours of the town are enough: at these rates every fault kind the tests look
at occurs dozens of times or more (each test asserts its own minimum), and the town's 37
devices simulate in about a second instead of the four of twelve hours.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from simulators.engine import fleet_stream
from simulators.faults import Expectations, FaultInjector, Outgoing, ingest_message_id
from simulators.formats import Wire
from simulators.scenario import FAULTS, build_fleet
from tests.unit.simulators.helpers import START, decode, run, town

RATES = dict.fromkeys(FAULTS, 0.03)
HOURS = 3
MANY = 20  # the fewest occurrences of a fault a test accepts as evidence


def _fingerprint(seed: int, hours: float) -> list[tuple[object, ...]]:
    scenario = town(**RATES).model_copy(update={"seed": seed})
    return [
        (
            i.due,
            i.message.topic if i.message else None,
            i.message.payload if i.message else None,
            json.dumps([r.to_json() for r in i.records]),
        )
        for i in run(scenario, hours=hours)
    ]


@pytest.fixture(scope="module")
def clean() -> list[Outgoing]:
    """The town without faults, run once for the module's tests."""
    return run(town(), hours=HOURS)


def test_same_seed_same_messages_and_faults() -> None:
    first = _fingerprint(5, hours=2)
    assert first == _fingerprint(5, hours=2)
    assert first != _fingerprint(6, hours=2)
    # the runs compared hold every fault kind, so each one's random draws are compared too
    labelled = {r["fault"] for *_, records in first for r in json.loads(str(records))}
    assert set(FAULTS) <= labelled


def test_every_fault_kind_is_injected_and_labelled_on_its_message() -> None:
    items = run(town(**RATES), hours=HOURS)
    kinds = Counter(r.fault for i in items for r in i.records if r.kind == "fault")
    assert set(kinds) == set(FAULTS), kinds
    assert min(kinds.values()) >= MANY // 2, kinds  # spike, the rarest, about 14 in 3 h
    for item in items:
        if item.message is None:
            continue
        labelled = {r.fault for r in item.records if r.kind == "fault"}
        assert labelled <= set(item.message.faults), (item.message.faults, labelled)
        for record in item.records:
            assert record.message_id == ingest_message_id(item.message.topic, item.message.payload)


def test_value_faults_are_what_the_ingestor_reads() -> None:
    scenario = town(spike=0.05, stuck=0.03, low_battery=0.05, clock_skew=0.03)
    checked: Counter[str] = Counter()
    for item in run(scenario, hours=HOURS):
        if item.message is None or item.message.dead_letter:
            continue
        out = decode(scenario, item.message, item.message.observed_at)
        values = defaultdict(list)
        for reading in out.readings:
            values[reading.quantity].append(reading.value)
        for personal in item.message.personal:  # dropped at ingest: compare with what was sent
            values[personal.quantity].append(personal.value)
        for record in item.records:
            if record.fault in ("spike", "low_battery"):
                assert record.detail["sent"] != record.detail["true"]
                got = values[record.quantity]
                assert any(abs(v - record.detail["sent"]) <= 0.5 for v in got), (record, got)
                if record.fault == "low_battery":
                    assert got == [record.detail["sent"]] and got[0] < 15
                    assert record.expect == "alert:low_battery"
                checked[record.fault] += 1
            elif record.fault == "stuck":
                for quantity, sent in record.detail["sent"].items():
                    assert any(abs(v - sent) <= 0.5 for v in values[quantity]), (record, values)
                checked["stuck"] += 1
            elif record.fault == "clock_skew":
                skew = timedelta(seconds=record.detail["skew_s"])
                times = {r.observed_at for r in out.readings}
                assert times == {record.observed_at.replace(microsecond=0) + skew}, record
                expect = "flag:future" if skew > timedelta(minutes=5) else "undetectable"
                assert record.expect.startswith(expect)
                checked["clock_skew"] += 1
    assert set(checked) == {"spike", "stuck", "low_battery", "clock_skew"}, checked
    assert min(checked.values()) >= MANY, checked


def test_stuck_episodes_repeat_long_enough_for_the_stuck_check() -> None:
    items = run(town(stuck=0.03), hours=HOURS)
    repeats = [r.detail["repeat"] for i in items for r in i.records if r.fault == "stuck"]
    assert max(repeats) >= 10
    flagged = [
        r for i in items for r in i.records if r.fault == "stuck" and r.detail["repeat"] >= 10
    ]
    assert len(flagged) >= MANY and all(r.expect == "flag:stuck" for r in flagged)


def test_malformed_messages_become_the_dead_letters_the_log_says() -> None:
    scenario = town(malformed=0.05)
    reasons: Counter[str] = Counter()
    for item in run(scenario, hours=HOURS):
        bad = [r for r in item.records if r.fault == "malformed"]
        if not bad:
            continue
        assert item.message is not None and item.message.readings == ()
        out = decode(scenario, item.message)
        assert out.dead_letter is not None
        assert bad[0].expect == f"dead_letter:{out.dead_letter.reason}"
        reasons[out.dead_letter.reason] += 1
    assert {"invalid_json", "no_decoded_payload"} <= set(reasons), reasons
    assert reasons.total() >= MANY, reasons


def test_duplicates_are_the_same_bytes_sent_twice() -> None:
    items = run(town(duplicate=0.05), hours=HOURS)
    sent = Counter((i.message.topic, i.message.payload) for i in items if i.message)
    duplicates = [i for i in items for r in i.records if r.fault == "duplicate"]
    assert len(duplicates) >= MANY
    for item in duplicates:
        assert item.message is not None
        assert sent[(item.message.topic, item.message.payload)] == 2


def test_late_and_out_of_order_messages_go_out_after_later_ones() -> None:
    items = run(town(late=0.03, out_of_order=0.03), hours=HOURS)
    late = out_of_order = 0
    for position, item in enumerate(items):
        for record in item.records:
            if record.fault == "late":
                assert item.due - record.observed_at == timedelta(seconds=record.detail["delay_s"])
                assert any(
                    i.message and i.message.observed_at > record.observed_at
                    for i in items[:position]
                )
                late += 1
            if record.fault == "out_of_order":
                before = [i.message for i in items[:position] if i.message]
                assert any(
                    m.device_id == record.device_id and m.observed_at > record.observed_at
                    for m in before
                ), record
                out_of_order += 1
    assert late >= MANY and out_of_order >= MANY


def test_dropouts_leave_out_the_messages_the_log_counts(clean: list[Outgoing]) -> None:
    scenario = town(dropout=0.03)
    expected = Counter(i.message.device_id for i in clean if i.message)
    items = run(scenario, hours=HOURS)
    sent = Counter(i.message.device_id for i in items if i.message)
    missing: Counter[str] = Counter()
    flagged = 0
    for item in items:
        for record in item.records:
            if record.fault == "dropout":
                missing[record.device_id] += record.detail["missing"]
                if record.detail.get("gap_s"):
                    assert record.expect == "flag:gap"
                    flagged += 1
    assert flagged >= MANY
    for device in build_fleet(scenario):
        assert sent[device.device_id] + missing[device.device_id] == expected[device.device_id]


def test_no_faults_no_records_but_privacy(clean: list[Outgoing]) -> None:
    items = clean
    assert {r.kind for i in items for r in i.records} == {"privacy"}
    assert all(i.message and not i.message.faults for i in items)
    times = [i.due for i in items]
    assert times == sorted(times) and isinstance(times[0], datetime)


def test_expectations_account_for_how_late_event_times_arrive() -> None:
    scenario = town(clock_skew=0.05)
    fleet = build_fleet(scenario)
    behind = Expectations(received=lambda t: t + timedelta(hours=2))  # e.g. accelerated
    injector = FaultInjector(scenario.city(), Wire.of(scenario), scenario.faults, behind)
    items = list(fleet_stream(fleet, injector, START, START + timedelta(hours=HOURS)))
    skews = [r for i in items for r in i.records if r.fault == "clock_skew"]
    assert len(skews) >= MANY and all(r.expect != "flag:future" for r in skews)
    live = run(scenario, hours=HOURS)
    assert sum(r.expect == "flag:future" for i in live for r in i.records) >= MANY


AT = datetime(2026, 3, 2, 12, tzinfo=UTC)


def test_a_skewed_clock_is_flagged_by_the_check_it_crosses() -> None:
    live = Expectations(max_future_s=300, max_age_s=86_400)
    assert live.for_skew(301, AT) == "flag:future"
    assert live.for_skew(300, AT).startswith("undetectable")
    assert live.for_skew(-86_401, AT) == "flag:too_old"
    assert live.for_skew(-86_400, AT).startswith("undetectable")
    behind = Expectations(received=lambda t: t + timedelta(hours=2))  # arrives 2 h late
    assert behind.for_skew(2 * 3600 + 301, AT) == "flag:future"
    assert behind.for_skew(2 * 3600 + 300, AT).startswith("undetectable")


def test_a_held_back_message_is_late_then_too_old() -> None:
    rules = Expectations(allowed_lateness_s=600, max_age_s=86_400)
    assert rules.for_delay(600, AT).startswith("undetectable")
    assert rules.for_delay(601, AT) == "flag:late"
    assert rules.for_delay(86_401, AT) == "flag:too_old"
    behind = Expectations(received=lambda t: t + timedelta(seconds=86_000))
    assert behind.for_delay(401, AT) == "flag:too_old"


def test_a_gap_is_flagged_beyond_the_gap_factor_of_the_interval() -> None:
    rules = Expectations(gap_factor=3.0)
    assert rules.for_gap(901, interval_s=300) == "flag:gap"
    assert rules.for_gap(900, interval_s=300) == "undetectable"
    assert rules.for_gap(None, interval_s=300) == "undetectable"  # nothing sent before
