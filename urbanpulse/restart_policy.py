"""When a stopped component is started again, and when it counts as crash-looping (pure).

The supervisor (``urbanpulse up``) asks these functions, with the monotonic clock's ``now``,
what to do about a component that exited. Nothing here reads a clock or touches a process.

* **Back-off**: the n-th exit in a row waits ``initial * factor^(n-1)`` seconds, at most
  ``maximum``, before the restart. A run that lasted ``stable_after_s`` counts as healthy: the
  next exit starts the schedule over.
* **Crash loop**: ``crash_loop_exits`` exits within ``crash_loop_window_s`` (e.g. 5 in 10 min)
  mark the component crash-looping; it is still restarted (at the back-off's maximum), so it
  recovers by itself once its cause is gone (Kafka back, disk freed), and it stops counting as
  crash-looping once it has run ``stable_after_s`` again or its exits age out of the window.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, replace


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    """How long to wait before a restart, and how many exits make a crash loop."""

    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    backoff_factor: float = 2.0
    crash_loop_exits: int = 5
    crash_loop_window_s: float = 600.0
    stable_after_s: float = 60.0


@dataclass(frozen=True, kw_only=True)
class RunHistory:
    """What the supervisor remembers of one component's runs (monotonic seconds)."""

    started_at: float | None = None  # the current run's start; None while it is not running
    failures: int = 0  # exits in a row, each after a run shorter than stable_after_s
    exits: tuple[float, ...] = ()  # times of the exits still inside the crash-loop window


def backoff_delay(failures: int, policy: RestartPolicy) -> float:
    """Seconds to wait before restarting after the ``failures``-th exit in a row (1, 2, …)."""
    if failures <= 0:
        return 0.0
    # Capped before exponentiating would overflow: factor^(n-1) for large n is inf anyway.
    exponent = min(failures - 1, 64)
    return float(
        min(policy.backoff_max_s, policy.backoff_initial_s * policy.backoff_factor**exponent)
    )


def started(history: RunHistory, now: float) -> RunHistory:
    """The history once the component has been started at ``now``."""
    return replace(history, started_at=now)


def exited(history: RunHistory, now: float, policy: RestartPolicy) -> RunHistory:
    """The history once the component has exited at ``now``."""
    ran = now - history.started_at if history.started_at is not None else 0.0
    failures = 1 if ran >= policy.stable_after_s else history.failures + 1
    recent = tuple(t for t in history.exits if now - t < policy.crash_loop_window_s)
    return RunHistory(started_at=None, failures=failures, exits=(*recent, now))


def restart_delay(history: RunHistory, policy: RestartPolicy) -> float:
    """Seconds from the last exit to the next start."""
    return backoff_delay(history.failures, policy)


def recent_exits(history: RunHistory, now: float, policy: RestartPolicy) -> int:
    """Exits within the crash-loop window that ends at ``now``."""
    return sum(1 for t in history.exits if now - t < policy.crash_loop_window_s)


def crash_looping(history: RunHistory, now: float, policy: RestartPolicy) -> bool:
    """Whether the component exited too often lately and has not run stably since."""
    if history.started_at is not None and now - history.started_at >= policy.stable_after_s:
        return False
    return recent_exits(history, now, policy) >= policy.crash_loop_exits


def exit_reason(returncode: int | None) -> str:
    """Why a process stopped, for people: an exit code, or the signal that killed it."""
    if returncode is None:
        return "exit status unknown (not a child of the supervisor)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by signal {name} ({-returncode})"
    return f"exit code {returncode}"
