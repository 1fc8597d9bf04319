"""Publishes simulated messages to MQTT with QoS 1, paced by the clock or as fast as possible."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from simulators.town import Message
from urbanpulse.mqtt import make_client
from urbanpulse.settings import MqttSettings

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 10.0


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


def _publish_one(client: mqtt.Client, msg: Message) -> mqtt.MQTTMessageInfo:
    while True:
        info = client.publish(msg.topic, msg.payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
            return info
        time.sleep(0.01)  # paho's outgoing queue is full: let the broker catch up


def _wait_all(pending: list[mqtt.MQTTMessageInfo]) -> None:
    for info in pending:
        info.wait_for_publish(timeout=60)
        if not info.is_published():
            raise RuntimeError("the MQTT broker did not acknowledge a message within 60 s")
    pending.clear()
