"""An MQTT 5 (or 3.1.1) test client that records what the broker answered: a probe.

Every CONNACK, SUBACK, PUBACK and DISCONNECT reason code and every message received is kept, in
order, so a test can assert exactly what the broker did with each packet. Waits wake up on the
broker's answer (a condition variable), not on a polling interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support import unique

WAIT_S = 10.0
T = TypeVar("T")


@dataclass
class Probe:
    """One connected client and everything the broker told it."""

    client: mqtt.Client
    connacks: list[int] = field(default_factory=list)
    subacks: list[list[int]] = field(default_factory=list)
    pubacks: dict[int, int] = field(default_factory=dict)  # message id → reason code
    disconnects: list[int] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, update: Callable[[], object]) -> None:
        """Apply one update from paho's network thread and wake the waiting test."""
        with self.changed:
            update()
            self.changed.notify_all()

    def wait(self, check: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
        """Wait until ``check`` returns something truthy; fail saying ``what`` did not happen."""
        with self.changed:
            result = self.changed.wait_for(check, timeout_s)
        if not result:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        return result

    def subscribe(self, topic: str) -> list[int]:
        """Subscribe with QoS 1; the SUBACK's reason codes (1: granted QoS 1, 135: refused)."""
        with self.changed:
            before = len(self.subacks)
        self.client.subscribe(topic, qos=1)
        self.wait(lambda: len(self.subacks) > before, f"the SUBACK of {topic}")
        return self.subacks[before]

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish with QoS 1 and return the PUBACK's reason code (0: accepted)."""
        info = self.client.publish(topic, payload, qos=1)
        self.wait(lambda: info.mid in self.pubacks, f"the PUBACK of {topic}")
        return self.pubacks[info.mid]

    def topics(self) -> list[str]:
        """The topics of the messages received so far."""
        with self.changed:
            return [topic for topic, _ in self.messages]

    def close(self) -> None:
        """Disconnect, stop the network loop (no reconnect afterwards) and close every socket."""
        self.client.disconnect()
        self.client.loop_stop()
        # paho 2.2 closes its wake-up socket pair only in Client.__del__, which the garbage
        # collector may run after the sockets' own finalizers (a ResourceWarning, which our
        # tests treat as an error): close them now.
        self.client._reset_sockets()


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

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        probe.record(lambda: probe.connacks.append(_code(reason)))

    def on_subscribe(_c: mqtt.Client, _u: object, _m: int, reasons: Any, _p: object) -> None:
        probe.record(lambda: probe.subacks.append([_code(r) for r in reasons]))

    def on_publish(_c: mqtt.Client, _u: object, mid: int, reason: Any, _p: object) -> None:
        probe.record(lambda: probe.pubacks.__setitem__(mid, _code(reason)))

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        probe.record(lambda: probe.disconnects.append(_code(reason)))

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        probe.record(lambda: probe.messages.append((msg.topic, msg.payload)))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    if wait:
        probe.wait(lambda: probe.connacks, "the CONNACK")
    return probe
