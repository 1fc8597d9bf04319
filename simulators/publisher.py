"""Publishes simulated messages to MQTT with QoS 1, paced by the clock or as fast as possible."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TextIO

import paho.mqtt.client as mqtt

from simulators.faults import FaultRecord, Outgoing, ingest_message_id
from simulators.formats import Message as SimMessage
from urbanpulse.mqtt import make_client
from urbanpulse.settings import MqttSettings

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 10.0


class Message(Protocol):
    """Anything with a topic, bytes and the readings it carries."""

    @property
    def topic(self) -> str:
        """The MQTT topic."""

    @property
    def payload(self) -> bytes:
        """The bytes to publish."""

    @property
    def readings(self) -> tuple[object, ...]:
        """The readings the message carries."""


@dataclass
class Summary:
    """What a simulator run sent."""

    messages: int = 0
    readings: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """A one-line summary for the log."""
        rate = self.messages / self.seconds if self.seconds else 0.0
        return (
            f"sent {self.messages} messages ({self.readings} readings) "
            f"in {self.seconds:.1f} s, {rate:.0f} messages/s"
        )


def connect(settings: MqttSettings, client_id: str) -> mqtt.Client:
    """A connected MQTT client with its network loop running."""
    client = make_client(settings, client_id)
    client.max_queued_messages_set(10_000)  # bounded: publish() waits below when it is full
    client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    client.loop_start()
    return client


def publish(
    client: mqtt.Client,
    stream: Iterable[tuple[datetime, Message]],
    realtime: bool,
    stop_flag: list[bool] | None = None,
) -> Summary:
    """Publish every message with QoS 1 and wait until the broker acknowledged them all."""
    summary, started, next_progress = (
        Summary(),
        time.monotonic(),
        time.monotonic() + PROGRESS_EVERY_S,
    )
    pending: list[mqtt.MQTTMessageInfo] = []
    for due, msg in stream:
        if stop_flag and stop_flag[0]:
            break
        if realtime:
            time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
        pending.append(_publish_one(client, msg))
        summary.messages += 1
        summary.readings += len(msg.readings)
        if len(pending) >= 1000:
            _wait_all(pending)
        if time.monotonic() >= next_progress:
            summary.seconds = time.monotonic() - started
            log.info("%s so far", summary.line())
            next_progress += PROGRESS_EVERY_S
    _wait_all(pending)
    summary.seconds = time.monotonic() - started
    return summary


RECONNECT_WAIT_S = 60.0


def _publish_one(client: mqtt.Client, msg: Message) -> mqtt.MQTTMessageInfo:
    deadline = time.monotonic() + RECONNECT_WAIT_S
    while True:
        info = client.publish(msg.topic, msg.payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            return info
        if info.rc == mqtt.MQTT_ERR_NO_CONN and time.monotonic() > deadline:
            raise RuntimeError(f"no connection to the MQTT broker for {RECONNECT_WAIT_S:.0f} s")
        # Queue full: let the broker catch up. Not connected: paho's loop is reconnecting.
        time.sleep(0.01 if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE else 0.5)


def _wait_all(pending: list[mqtt.MQTTMessageInfo]) -> None:
    for info in pending:
        info.wait_for_publish(timeout=60)
        if not info.is_published():
            raise RuntimeError("the MQTT broker did not acknowledge a message within 60 s")
    pending.clear()


# ---------------------------------------------------------------------------------------------
# Scenario runs: pacing by mode, ground truth, send log, summary by format and fault


@dataclass
class RunSummary:
    """What a scenario run sent: messages by format, faults injected, rate achieved."""

    messages: int = 0
    readings: int = 0
    not_sent: int = 0
    by_format: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    personal: int = 0
    seconds: float = 0.0
    first_event: datetime | None = None
    last_event: datetime | None = None

    def count_message(self, message: SimMessage) -> None:
        """Count a message published."""
        self.messages += 1
        self.readings += len(message.readings)
        self.personal += len(message.personal)
        self.by_format[message.format] += 1
        self.first_event = self.first_event or message.observed_at
        self.last_event = message.observed_at

    def count_records(self, records: Iterable[FaultRecord]) -> None:
        """Count the faults of ground-truth records, and the messages a dropout did not send."""
        for record in records:
            if record.kind != "fault":
                continue
            self.faults[record.fault] += 1
            if record.fault == "dropout":
                self.not_sent += int(record.detail.get("missing", 0))

    @property
    def rate(self) -> float:
        """Messages per second achieved (acknowledged by the broker)."""
        return self.messages / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """A one-line summary for the log."""
        formats = ", ".join(f"{k} {v}" for k, v in sorted(self.by_format.items())) or "none"
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        span = ""
        if self.first_event and self.last_event:
            span = f"; event times {_z(self.first_event)} … {_z(self.last_event)}"
        return (
            f"sent {self.messages} messages ({self.readings} readings) in {self.seconds:.1f} s, "
            f"{self.rate:.0f} messages/s; by format: {formats}; faults injected: {faults}; "
            f"personal readings (dropped at ingest): {self.personal}{span}"
        )

    def to_json(self) -> dict[str, object]:
        """The summary as a JSON object."""
        return {
            "messages": self.messages,
            "readings": self.readings,
            "not_sent": self.not_sent,
            "by_format": dict(self.by_format),
            "faults": dict(self.faults),
            "personal_readings": self.personal,
            "seconds": round(self.seconds, 3),
            "messages_per_s": round(self.rate, 1),
        }


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Pacer:
    """Maps a message's simulated send time to the wall clock: waits until it is due."""

    def __init__(self, start: datetime, speed: float | None) -> None:
        self.start = start
        self.speed = speed
        self.wall_start = time.monotonic()

    def wait(self, due: datetime, stop_flag: list[bool] | None) -> None:
        """Sleep until ``due`` (in simulated time) has come on the wall clock."""
        if self.speed is None:
            return
        target = self.wall_start + (due - self.start).total_seconds() / self.speed
        while (left := target - time.monotonic()) > 0:
            if stop_flag and stop_flag[0]:
                return
            time.sleep(min(left, 0.5))


def run_stream(
    client: mqtt.Client,
    stream: Iterable[Outgoing],
    pacer: Pacer,
    *,
    ground_truth: TextIO | None = None,
    send_log: TextIO | None = None,
    stop_flag: list[bool] | None = None,
    max_messages: int | None = None,
) -> RunSummary:
    """Publish a scenario stream with QoS 1, writing the ground truth and the send log."""
    summary, started = RunSummary(), time.monotonic()
    logs = RunLogs(ground_truth=ground_truth, send_log=send_log)
    next_progress = started + PROGRESS_EVERY_S
    pending: list[mqtt.MQTTMessageInfo] = []
    for item in stream:
        if _stopping(stop_flag) or _reached(summary.messages, max_messages):
            break
        pacer.wait(item.due, stop_flag)
        if _stopping(stop_flag):
            break
        if item.message is not None:
            sent_at = time.time()
            pending.append(_publish_one(client, item.message))
            summary.count_message(item.message)
            logs.sent(item.message, sent_at)
        summary.count_records(item.records)
        logs.truth(item.records)
        if len(pending) >= 1000:
            _wait_all(pending)
        if time.monotonic() >= next_progress:
            summary.seconds = time.monotonic() - started
            log.info("%s so far", summary.line())
            logs.flush()
            next_progress += PROGRESS_EVERY_S
    _wait_all(pending)
    summary.seconds = time.monotonic() - started
    return summary


def _stopping(stop_flag: list[bool] | None) -> bool:
    return bool(stop_flag and stop_flag[0])


def _reached(messages: int, max_messages: int | None) -> bool:
    return max_messages is not None and messages >= max_messages


@dataclass(frozen=True, kw_only=True)
class RunLogs:
    """Where a run writes its ground truth and its send log (either may be absent)."""

    ground_truth: TextIO | None = None
    send_log: TextIO | None = None

    def sent(self, message: SimMessage, sent_at: float) -> None:
        """One send-log line for a message published at ``sent_at`` (Unix time)."""
        if self.send_log is not None:
            self.send_log.write(json.dumps(send_log_entry(message, sent_at)) + "\n")

    def truth(self, records: Iterable[FaultRecord]) -> None:
        """One ground-truth line per record."""
        if self.ground_truth is not None:
            self.ground_truth.writelines(json.dumps(r.to_json()) + "\n" for r in records)

    def flush(self) -> None:
        """Flush the ground truth, so a reader of a long run sees it grow."""
        if self.ground_truth is not None:
            self.ground_truth.flush()


def send_log_entry(message: SimMessage, sent_at: float) -> dict[str, object]:
    """The send log's line for a message: what a benchmark matches stored readings against."""
    return {
        "topic": message.topic,
        "message_id": ingest_message_id(message.topic, message.payload),
        "observed_at": _z(message.observed_at),
        "sent_at": sent_at,
        "readings": len(message.readings),
        "faults": list(message.faults),
    }
