"""An MQTT 5 (or 3.1.1) test client that records what the broker answered: a probe.

Every CONNACK, SUBACK, PUBACK and DISCONNECT reason code and every message received is kept, in
order, so a test can assert exactly what the broker did with each packet.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support import unique, wait_for

WAIT_S = 10.0


@dataclass
class Probe:
    """One connected client and everything the broker told it."""

    client: mqtt.Client
    connacks: list[int] = field(default_factory=list)
    subacks: list[list[int]] = field(default_factory=list)
    pubacks: dict[int, int] = field(default_factory=dict)  # message id → reason code
    disconnects: list[int] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, topic: str) -> list[int]:
        """Subscribe with QoS 1; the SUBACK's reason codes (1: granted QoS 1, 135: refused)."""
        before = len(self.subacks)
        self.client.subscribe(topic, qos=1)
        wait_for(lambda: len(self.subacks) > before, WAIT_S, f"the SUBACK of {topic}")
        return self.subacks[before]

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish with QoS 1 and return the PUBACK's reason code (0: accepted)."""
        info = self.client.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.pubacks, WAIT_S, f"the PUBACK of {topic}")
        return self.pubacks[info.mid]

    def topics(self) -> list[str]:
        """The topics of the messages received so far."""
        with self.lock:
            return [topic for topic, _ in self.messages]

    def close(self) -> None:
        """Disconnect and stop the network loop (no reconnect afterwards)."""
        self.client.disconnect()
        self.client.loop_stop()


def _code(reason: Any) -> int:
    return int(reason.value) if hasattr(reason, "value") else int(reason)


def connect(
    port: int,
    username: str | None = None,
    password: str | None = None,
    *,
    client_id: str | None = None,
    protocol: int = mqtt.MQTTv5,
    wait: bool = True,
) -> Probe:
    """A probe connected to 127.0.0.1:port, its network loop running; waits for the CONNACK."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or unique("probe"), protocol=protocol
    )
    probe = Probe(client)
    if username is not None:
        client.username_pw_set(username, password)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with probe.lock:
            probe.messages.append((msg.topic, msg.payload))

    client.on_connect = lambda _c, _u, _f, reason, _p: probe.connacks.append(_code(reason))
    client.on_subscribe = lambda _c, _u, _m, reasons, _p: probe.subacks.append(
        [_code(r) for r in reasons]
    )
    client.on_publish = lambda _c, _u, mid, reason, _p: probe.pubacks.__setitem__(
        mid, _code(reason)
    )
    client.on_disconnect = lambda _c, _u, _f, reason, _p: probe.disconnects.append(_code(reason))
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    if wait:
        wait_for(lambda: probe.connacks, WAIT_S, "the CONNACK")
    return probe
