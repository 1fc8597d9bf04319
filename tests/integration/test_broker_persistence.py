"""The local broker keeps a persistent session's queued QoS 1 messages across its own restart."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support import MQTT_HOST, MQTT_PORT, port_open, services, unique, wait_for


def session_client(client_id: str, received: list[bytes], ready: threading.Event) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: received.append(msg.payload)
    client.on_subscribe = lambda *_: ready.set()
    client.on_connect = lambda c, _u, flags, _r, _p: ready.set() if flags.session_present else None
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(MQTT_HOST, MQTT_PORT, clean_start=False, properties=props)
    return client


def test_queued_messages_survive_a_broker_restart() -> None:
    topic, client_id = f"urbanpulse/{unique('persist')}/p-1/json", unique("it-persist")
    received: list[bytes] = []
    ready = threading.Event()
    subscriber = session_client(client_id, received, ready)
    subscriber.loop_start()
    subscriber.subscribe(topic, qos=1)
    wait_for(ready.is_set, 10, "the subscription")
    subscriber.disconnect()
    subscriber.loop_stop()

    sender = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("it-send"))
    sender.connect(MQTT_HOST, MQTT_PORT)
    sender.loop_start()
    sender.publish(topic, b"kept", qos=1).wait_for_publish(10)
    sender.disconnect()
    sender.loop_stop()

    services("stop", "mosquitto")
    assert not port_open(MQTT_PORT, MQTT_HOST), (
        "Mosquitto still answers: it was not started by this checkout's services.sh "
        "(run this test with deploy/local/test.sh, which starts the test services)"
    )
    services("start", "mosquitto")

    ready.clear()
    again = session_client(client_id, received, ready)
    again.loop_start()
    try:
        wait_for(lambda: received, 15, "the message queued before the restart")
    finally:
        again.disconnect()
        again.loop_stop()
    assert received == [b"kept"]
