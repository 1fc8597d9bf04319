"""The back-off schedule and crash-loop detection of urbanpulse/restart_policy.py."""

from __future__ import annotations

import signal

from hypothesis import given
from hypothesis import strategies as st

from urbanpulse.restart_policy import (
    RestartPolicy,
    RunHistory,
    backoff_delay,
    crash_looping,
    exit_reason,
    exited,
    recent_exits,
    restart_delay,
    started,
)

POLICY = RestartPolicy(
    backoff_initial_s=1,
    backoff_max_s=60,
    crash_loop_exits=5,
    crash_loop_window_s=600,
    stable_after_s=60,
)


def run(history: RunHistory, start: float, stop: float) -> RunHistory:
    """One run from ``start`` to ``stop``."""
    return exited(started(history, start), stop, POLICY)


def test_the_wait_doubles_per_exit_in_a_row_up_to_the_maximum() -> None:
    delays = [backoff_delay(n, POLICY) for n in range(1, 10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_no_exit_no_wait() -> None:
    assert backoff_delay(0, POLICY) == 0


@given(st.integers(min_value=1, max_value=10_000))
def test_the_wait_is_bounded_and_never_shrinks_with_more_failures(failures: int) -> None:
    delay = backoff_delay(failures, POLICY)
    assert POLICY.backoff_initial_s <= delay <= POLICY.backoff_max_s
    assert backoff_delay(failures + 1, POLICY) >= delay


def test_quick_exits_in_a_row_lengthen_the_wait() -> None:
    history = RunHistory()
    t = 0.0
    for expected in (1, 2, 4):
        history = run(history, t, t + 5)  # ran 5 s: shorter than stable_after_s
        assert restart_delay(history, POLICY) == expected
        t += 5 + expected


def test_a_stable_run_starts_the_schedule_over() -> None:
    history = run(run(run(RunHistory(), 0, 5), 6, 10), 12, 20)
    assert restart_delay(history, POLICY) == 4
    history = run(history, 24, 24 + POLICY.stable_after_s)  # ran long enough: healthy again
    assert restart_delay(history, POLICY) == 1


def test_five_exits_in_ten_minutes_are_a_crash_loop() -> None:
    history = RunHistory()
    for n in range(4):
        history = run(history, n * 100, n * 100 + 10)
    assert not crash_looping(history, 400, POLICY)
    history = run(history, 400, 410)
    assert recent_exits(history, 410, POLICY) == 5
    assert crash_looping(history, 410, POLICY)


def test_exits_spread_wider_than_the_window_are_no_crash_loop() -> None:
    history = RunHistory()
    for n in range(10):  # one exit every 200 s, each run 10 s: only 3 inside any 600 s
        history = run(history, n * 200, n * 200 + 10)
        assert not crash_looping(history, n * 200 + 10, POLICY)


def test_a_crash_loop_ends_when_the_component_runs_stably_again() -> None:
    history = RunHistory()
    for n in range(5):
        history = run(history, n * 10, n * 10 + 1)
    history = started(history, 60)
    assert crash_looping(history, 61, POLICY)  # just restarted: not proven healthy yet
    assert not crash_looping(history, 60 + POLICY.stable_after_s, POLICY)


def test_a_crash_loop_ends_when_its_exits_age_out_of_the_window() -> None:
    history = RunHistory()
    for n in range(5):
        history = run(history, n * 10, n * 10 + 1)
    assert crash_looping(history, 50, POLICY)
    assert not crash_looping(history, 41 + POLICY.crash_loop_window_s, POLICY)


def test_only_exits_inside_the_window_are_remembered() -> None:
    history = RunHistory()
    for n in range(100):
        history = run(history, n * 100, n * 100 + 1)
    assert len(history.exits) <= POLICY.crash_loop_window_s / 100 + 1


@given(st.lists(st.floats(min_value=0.0, max_value=1000.0), min_size=1, max_size=40))
def test_crash_loop_means_enough_recent_exits(gaps: list[float]) -> None:
    history, t = RunHistory(), 0.0
    times = []
    for gap in gaps:
        history = run(history, t, t + gap)
        t += gap
        times.append(t)
    in_window = sum(1 for x in times if t - x < POLICY.crash_loop_window_s)
    assert recent_exits(history, t, POLICY) == in_window
    assert crash_looping(history, t, POLICY) == (in_window >= POLICY.crash_loop_exits)


def test_exit_reasons_say_code_or_signal() -> None:
    assert exit_reason(0) == "exit code 0"
    assert exit_reason(3) == "exit code 3"
    assert exit_reason(-signal.SIGKILL) == "killed by signal SIGKILL (9)"
    assert exit_reason(-signal.SIGTERM) == "killed by signal SIGTERM (15)"
    assert "unknown" in exit_reason(None)
