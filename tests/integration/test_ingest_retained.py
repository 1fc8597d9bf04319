"""Retained messages are not ingested again on a (re)subscribe (issue 15), on a broker of the
test's own with the shipped config: the ingestor subscribes as ``subscribe_requests`` says.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.mqtt_ingestor import subscribe_requests
from tests.integration.mosquitto_instance import LOCAL_CONF, Broker, running
from tests.integration.mqtt_probe import connect
from tests.support import isolated_settings, unique


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running(LOCAL_CONF, tmp_path) as started:
        yield started


def test_a_retained_message_is_not_sent_at_subscribe_time_live_ones_are(broker: Broker) -> None:
    tenant = unique("retained").replace("-", "_")
    topic = f"urbanpulse/{tenant}/s1/json"
    device = connect(broker.port)
    info = device.client.publish(topic, b"retained before", qos=1, retain=True)
    device.wait(lambda: info.mid in device.pubacks, "the PUBACK of the retained message")

    settings = isolated_settings(tenant)  # subscribes to urbanpulse/{tenant}/+/+
    ingestor = connect(broker.port)
    before = len(ingestor.subacks)
    ingestor.client.subscribe(subscribe_requests(settings))
    ingestor.wait(lambda: len(ingestor.subacks) > before, "the SUBACK")
    assert ingestor.subacks[-1] == [1]
    # A plain subscription gets the retained message: the broker does hand it out.
    plain = connect(broker.port)
    plain.subscribe(topic)
    plain.wait(lambda: plain.messages, "the retained message on a plain subscription")
    try:
        assert device.publish(topic, b"live") == 0
        ingestor.wait(lambda: ingestor.messages, "the live message")
        assert ingestor.messages == [(topic, b"live")]
    finally:
        for probe in (device, ingestor, plain):
            probe.close()
