"""Our Mosquitto config refuses an oversized message at the door (issue 15: one 800 kB message
stopped the whole platform), tested on a broker of the test's own with the shipped config.

Mosquitto 2.0.11 closes the connection of a client that sends a packet over ``max_packet_size``
(an MQTT 5 client gets a DISCONNECT with reason 0x95 "Packet too large" first) and never acks
the message, so a QoS 1 sender learns that it was refused; the broker logs the disconnect.
The broker decides on the packet's header while the sender is still writing the 800 kB body, so
the sender may hit the closed socket before it reads that DISCONNECT: paho then reports 0x80
"Unspecified error" (connection lost). Both are a refusal; CI saw each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.integration.mosquitto_instance import LOCAL_CONF, Broker, running
from tests.integration.mqtt_probe import connect
from tests.support import unique
from urbanpulse.settings import MqttSettings

OVERSIZED = b"A" * 800_000
PACKET_TOO_LARGE = 0x95
CONNECTION_LOST = 0x80


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running(LOCAL_CONF, tmp_path) as started:
        yield started


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["mqtt5", "mqtt311"])
def test_an_800_kB_message_is_refused_and_never_delivered(broker: Broker, protocol: int) -> None:
    topic = f"urbanpulse/{unique('limits')}/big/json"
    subscriber = connect(broker.port)
    assert subscriber.subscribe(topic.rsplit("/", 2)[0] + "/#") == [1]
    sender = connect(broker.port, protocol=protocol)
    try:
        info = sender.client.publish(topic, OVERSIZED, qos=1)
        sender.wait(lambda: sender.disconnects, "the broker to close the sender's connection")
        sender.client.loop_stop()  # paho would reconnect and send the message again
        assert info.mid not in sender.pubacks, "the broker acknowledged the oversized message"
        if protocol == mqtt.MQTTv5:
            assert sender.disconnects[0] in (PACKET_TOO_LARGE, CONNECTION_LOST)
        # A message sent after it arrives; the oversized one never does.
        control = connect(broker.port)
        assert control.publish(topic, b"after") == 0
        control.close()
        subscriber.wait(lambda: subscriber.messages, "the control message")
        assert subscriber.messages == [(topic, b"after")]
        assert "disconnected due to oversize packet" in broker.log_text()
    finally:
        sender.close()
        subscriber.close()


def test_a_message_below_the_ingestors_limit_passes(broker: Broker) -> None:
    topic = f"urbanpulse/{unique('limits')}/fits/json"
    payload = b"B" * (MqttSettings().max_payload_bytes - 1024)  # room for the packet's header
    subscriber = connect(broker.port)
    subscriber.subscribe(topic)
    sender = connect(broker.port)
    try:
        assert sender.publish(topic, payload) == 0
        subscriber.wait(lambda: subscriber.messages, "the message below the limit")
        assert subscriber.messages == [(topic, payload)]
    finally:
        sender.close()
        subscriber.close()
