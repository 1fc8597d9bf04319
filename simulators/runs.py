"""One simulator run: the stream a mode sends and its pacing (pure), then publishing it (adapter).

:func:`stream_for_mode` decides what a mode sends, how fast and until when; it also tells the
fault injector when each message reaches the platform, so the ground truth's expectations
(late, too old, in the future) match what the stream worker will see. :func:`publish_run`
connects, publishes with the ground truth and send log open, and stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from simulators.engine import Mode, Plan, fleet_stream, load_stream, plan
from simulators.faults import Expectations, FaultInjector, Outgoing
from simulators.formats import Wire
from simulators.interventions import plan_all
from simulators.options import SimulateOptions, Spans
from simulators.publisher import Pacer, RunSummary, connect, run_stream
from simulators.scenario import Device, Scenario
from urbanpulse.settings import MqttSettings, StreamsSettings

LOAD_SEND_LOG = Path(".local/simulate/send-log.jsonl")


@dataclass(frozen=True, kw_only=True)
class RunStream:
    """What a run sends, paced how, stopped after how many messages, and where sends are logged."""

    stream: Iterator[Outgoing]
    pacer: Pacer
    limit: int | None
    send_log: Path | None


def expectations_of(streams: StreamsSettings) -> Expectations:
    """The stream worker's quality thresholds, which the ground truth is written against."""
    return Expectations(
        stuck_count=streams.stuck_count,
        gap_factor=streams.gap_factor,
        max_future_s=streams.max_future_s,
        max_age_s=streams.max_age_s,
        allowed_lateness_s=streams.allowed_lateness_s,
    )


def arrival_clock(mode: Mode, now: datetime, window: Plan) -> Callable[[datetime], datetime] | None:
    """When a message observed at ``t`` reaches the platform in this mode (None: at ``t``)."""
    if mode == "realtime":  # the history goes out at once, the rest when it happens
        return lambda t: max(t, now)
    if window.speed is None:  # backfill: everything arrives about now
        return lambda t: now
    if mode == "accelerated":
        anchor, pace = window.start, window.speed
        return lambda t: now + (t - anchor) / pace
    return None


def stream_for_mode(
    town: Scenario,
    fleet: list[Device],
    options: SimulateOptions,
    *,
    spans: Spans,
    now: datetime,
    expectations: Expectations,
) -> RunStream:
    """The messages the options' mode sends from ``now`` on, and how they are paced."""
    wire = Wire.of(town, timestamps=options.mode != "realtime")
    if options.mode == "load":
        rate = options.rate
        stream = load_stream(fleet, town.city(), wire, options.readings_per_message, now, rate)
        return RunStream(
            stream=stream,
            pacer=Pacer(now, 1.0),
            limit=options.max_messages or max(1, round(rate * (spans.duration_s or 60.0))),
            send_log=options.send_log or LOAD_SEND_LOG,
        )
    window = plan(options.mode, now, spans.duration_s, options.speed)
    start = window.start - timedelta(seconds=spans.history_s)
    received = arrival_clock(options.mode, now, window)
    injector = FaultInjector(
        town.city(),
        wire,
        town.faults,
        replace(expectations, received=received),
        interventions=plan_all(town, fleet),
        run_start=start,
    )
    return RunStream(
        stream=fleet_stream(fleet, injector, start, window.end),
        pacer=Pacer(now if options.mode == "realtime" else window.start, window.speed),
        limit=options.max_messages,
        send_log=options.send_log,
    )


def fleet_counts(fleet: Sequence[Device]) -> str:
    """Devices per payload format, for the log: ``json 12, lpp 3``."""
    formats = sorted({d.format for d in fleet})
    return ", ".join(f"{k} {sum(1 for d in fleet if d.format == k)}" for k in formats)


def summary_document(
    summary: RunSummary, *, mode: str, tenant: str, tenant_map: dict[str, str]
) -> dict[str, object]:
    """The ``--summary-out`` JSON: what was sent, in which mode, for which tenant."""
    return summary.to_json() | {"mode": mode, "tenant": tenant, "tenant_map": tenant_map}


def publish_run(
    mqtt: MqttSettings, run: RunStream, *, client_id: str, ground_truth: Path | None
) -> RunSummary:
    """Publish the run's stream, writing the ground truth and send log; Ctrl-C stops it."""
    stop_flag = [False]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_flag.__setitem__(0, True))
    client = connect(mqtt, client_id=client_id)
    for path in (p for p in (ground_truth, run.send_log) if p is not None):
        path.parent.mkdir(parents=True, exist_ok=True)
    truth = ground_truth.open("w", encoding="utf-8") if ground_truth else None
    sends = run.send_log.open("w", encoding="utf-8") if run.send_log else None
    try:
        return run_stream(
            client,
            run.stream,
            run.pacer,
            ground_truth=truth,
            send_log=sends,
            stop_flag=stop_flag,
            max_messages=run.limit,
        )
    finally:
        client.disconnect()
        client.loop_stop()
        for handle in (truth, sends):
            if handle is not None:
                handle.close()
