"""Identity at the Kafka boundary, on the real broker: redeliveries marked, publications not.

What the worker makes of these readings (a redelivered repeat stored once) is tested with the
worker; here: what the ingestor writes to Kafka.

* Mosquitto 2.0 re-sends a QoS 1 message that was delivered but not acked when the persistent
  session reconnects, with the DUP flag set (paho: ``MQTTMessage.dup``); a first delivery has it
  clear. The ingestor relies on this to mark the readings ``redelivered``.
* An ingestor killed after Kafka took a message's record but before its PUBACK reached the
  broker: the next ingestor gets the message again with DUP, and writes the same readings
  (same message ids) with ``redelivered=True``. The window is made exact without any hook in
  the ingestor: it talks to the broker through :class:`HoldingProxy`, which stops passing on
  what the ingestor sends (its PUBACKs) while still passing what the broker sends.
* Two publications of the same time-less bytes are two readings with different receipt times,
  neither redelivered.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from contextlib import suppress
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.integration.test_ingest_delivery import env_of, ingest_process
from tests.integration.test_ingest_kafka import publish_all, publisher, running_ingestor
from tests.support import (
    MQTT_HOST,
    MQTT_PORT,
    consume_readings,
    free_port,
    isolated_settings,
    scrape,
    unique,
    wait_for,
)
from urbanpulse.model import Reading

BROKER = (MQTT_HOST, MQTT_PORT)


class HoldingProxy:
    """A TCP proxy to Mosquitto that can hold back everything its clients send.

    While :attr:`hold` is set, bytes from the client (PUBACKs, pings) are kept, not passed
    on; bytes from the broker still reach the client. :meth:`cut` closes every connection and
    drops what was held: for the broker, the client vanished without acking.
    """

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self.hold = threading.Event()
        self.held = 0  # bytes kept back
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(BROKER)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                if from_client and self.hold.is_set():
                    self.held += len(data)
                    continue
                target.sendall(data)

    def cut(self) -> None:
        """Close every connection, dropping what was held."""
        for sock in self._sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()

    def close(self) -> None:
        """Stop accepting and cut every connection."""
        self._server.close()
        self.cut()


def acked(port: int) -> float:
    """The ingestor's count of PUBACKs handed to paho (0 until /metrics answers)."""
    return scrape(port).get("urbanpulse_ingest_messages_acked_total", 0.0)


def by_message(readings: list[Reading]) -> dict[tuple[str, bool], list[Reading]]:
    """Readings by (message id, redelivered)."""
    out: dict[tuple[str, bool], list[Reading]] = {}
    for r in readings:
        out.setdefault((r.message_id, r.redelivered), []).append(r)
    return out


def test_mosquitto_sets_dup_when_it_resends_to_a_persistent_session() -> None:
    """The broker behaviour the ``redelivered`` flag stands on (Mosquitto 2.0, MQTT 5)."""
    client_id, topic = unique("it-dup"), f"it-dup/{unique('t')}"
    got: list[tuple[bytes, bool]] = []
    mids: list[int] = []
    subscribed = threading.Event()

    def session() -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,  # never acked: the message stays in flight with the broker
        )

        def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
            got.append((msg.payload, bool(msg.dup)))
            mids.append(msg.mid)

        client.on_message = on_message
        client.on_subscribe = lambda *_: subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
        client.connect(*BROKER, clean_start=False, properties=props)
        client.loop_start()
        return client

    first = session()
    first.subscribe(topic, qos=1)
    wait_for(subscribed.is_set, 10, "the subscription")
    with publisher() as pub:
        publish_all(pub, [(topic, b"once")])
    wait_for(lambda: got, 10, "the first delivery")
    first.disconnect()  # the session (and the unacked message) stays with the broker
    first.loop_stop()
    second = session()
    try:
        wait_for(lambda: len(got) >= 2, 10, "the re-send to the same session")
        second.ack(mids[-1], 1)  # let the broker forget it
    finally:
        second.disconnect()
        second.loop_stop()
    assert got == [(b"once", False), (b"once", True)]


@pytest.mark.timeout(300)
def test_killed_before_its_puback_a_message_comes_again_marked_redelivered(
    tmp_path: Path,
) -> None:
    tenant = unique("dup")
    settings = isolated_settings(tenant)
    metrics_port, proxy = free_port(), HoldingProxy()
    env = env_of(settings) | {"URBANPULSE_METRICS__INGEST_PORT": str(metrics_port)}
    log = tmp_path / "ingest.log"
    topic = f"urbanpulse/{tenant}/d-1/json"
    timeless = json.dumps({"quantity": "temperature", "value": 1.5, "unit": "Cel"}).encode()
    timed = json.dumps(
        {
            "readings": [
                {"time": "2026-11-27T10:00:00Z", "quantity": "pm10", "value": 3, "unit": "ug/m3"},
                {"time": "2026-11-27T10:00:00Z", "quantity": "pm2_5", "value": 2, "unit": "ug/m3"},
            ]
        }
    ).encode()
    warmup = json.dumps({"quantity": "noise_level", "value": 40, "unit": "dB"}).encode()
    bootstrap, readings_topic = settings.kafka.bootstrap, settings.kafka.readings_topic
    try:
        with (
            publisher() as client,
            ingest_process(env | {"URBANPULSE_MQTT__PORT": str(proxy.port)}, log) as first,
        ):
            # Until the warm-up message is in Kafka and acked, the ingestor may not be
            # subscribed yet (its first messages would not even be queued for it).
            wait_for(lambda: "subscribed to" in log.read_text(), 60, "the first ingestor")
            time.sleep(1.0)
            publish_all(client, [(topic, warmup)])
            wait_for(lambda: acked(metrics_port) >= 1, 60, "the warm-up PUBACK")
            time.sleep(0.5)  # let paho write it to the socket before the proxy holds
            proxy.hold.set()
            publish_all(client, [(topic, timeless), (topic, timed)])
            consume_readings(bootstrap, readings_topic, 4, 60)
            # Both records confirmed by Kafka and both PUBACKs sent (into the proxy).
            wait_for(lambda: acked(metrics_port) >= 3, 60, "the ingestor to send its PUBACKs")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            proxy.cut()
        assert proxy.held > 0, "the PUBACKs were not held back: the test proves nothing"
        with ingest_process(env, log):  # the same client id, straight to the broker
            readings = consume_readings(bootstrap, readings_topic, 7, 120)
    finally:
        proxy.close()
    seen = by_message([r for r in readings if r.quantity != "noise_level"])
    assert {key[1] for key in seen} == {False, True}, seen.keys()
    ids = {message_id for message_id, _ in seen}
    assert len(ids) == 3  # the time-less reading's and the two timed ones'
    for message_id in ids:
        [before], [again] = seen[(message_id, False)], seen[(message_id, True)]
        assert (again.quantity, again.value, again.derived_id) == (
            before.quantity,
            before.value,
            before.derived_id,
        )
        assert again.received_at > before.received_at  # a new receipt...
        if before.quantity == "temperature":  # ...which is the time-less reading's time
            assert (before.observed_at, again.observed_at) == (
                before.received_at,
                again.received_at,
            )
        else:  # a reading with its own time is the same observation
            assert again.observed_at == before.observed_at
    [warm] = [r for r in readings if r.quantity == "noise_level"]
    assert not warm.redelivered  # acked before the hold: never re-sent


def test_two_publications_of_the_same_timeless_bytes_are_two_observations() -> None:
    tenant = unique("twice")
    settings = isolated_settings(tenant)
    payload = json.dumps({"quantity": "temperature", "value": 21.5, "unit": "Cel"}).encode()
    topic = f"urbanpulse/{tenant}/readme-1/json"
    with running_ingestor(settings) as ingestor, publisher() as client:
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")
        publish_all(client, [(topic, payload)])
        publish_all(client, [(topic, payload)])
        readings = consume_readings(settings.kafka.bootstrap, settings.kafka.readings_topic, 2, 30)
        wait_for(lambda: ingestor.stats.acked == 2, 10, "both PUBACKs")
    first, second = readings
    assert not first.redelivered and not second.redelivered
    assert first.message_id == second.message_id and first.derived_id  # same bytes, same id
    assert first.observed_at == first.received_at < second.received_at == second.observed_at
