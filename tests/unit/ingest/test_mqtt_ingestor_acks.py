"""The ingestor's PUBACKs: released in arrival order, sent once per step, never on a newer
connection for a message taken on an earlier one (no broker: paho's ack_all is recorded)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from ingest.kafka_sink import KafkaSink
from ingest.mqtt_ingestor import Incoming, MqttIngestor
from urbanpulse.settings import Settings


def ingestor_recording_acks() -> tuple[MqttIngestor, list[list[int]]]:
    """An ingestor that never connects; what it hands paho's ``ack_all``, per call."""
    ingestor = MqttIngestor(Settings(), cast(KafkaSink, None))  # the sink is not used here
    sent: list[list[int]] = []
    ingestor._client.ack_all = lambda mids: sent.append(list(mids))  # type: ignore[method-assign]
    return ingestor, sent


def take(ingestor: MqttIngestor, token: int, mid: int, connection: int, qos: int = 1) -> None:
    """A message as paho's thread hands it over, registered as waiting for one record."""
    ingestor._in_flight[token] = Incoming(
        token,
        mid,
        qos,
        "urbanpulse/town/air-1/json",
        b"{}",
        datetime.now(UTC),
        False,
        0.0,
        connection,
    )
    ingestor._tracker.add(token, 1)


def test_the_acks_a_step_releases_leave_together_in_arrival_order() -> None:
    ingestor, sent = ingestor_recording_acks()
    ingestor._connection = 1
    for token, mid in ((0, 10), (1, 11), (2, 12)):
        take(ingestor, token, mid, connection=1)
    ingestor._confirm(2)  # out of order: nothing may be acked before 0 and 1 are
    ingestor._confirm(0)
    ingestor._confirm(1)
    assert sent == []  # not one write per confirmation
    ingestor._send_acks()
    ingestor._send_acks()  # nothing released since: nothing sent
    assert sent == [[10, 11, 12]]
    assert ingestor.stats.acked == 3


def test_a_message_of_an_earlier_connection_is_not_acked_on_the_next() -> None:
    ingestor, sent = ingestor_recording_acks()
    ingestor._connection = 1
    take(ingestor, 0, 20, connection=1)
    take(ingestor, 1, 21, connection=1)
    ingestor._confirm(0)
    ingestor._connection = 2  # paho reconnected between the release and the write
    take(ingestor, 2, 21, connection=2)  # the broker re-sent message 21 on the new connection
    ingestor._confirm(1)
    ingestor._confirm(2)
    ingestor._send_acks()
    # 20 and the first 21 came on connection 1: a PUBACK of their ids now could ack whatever
    # the broker numbered so on connection 2; only the redelivered 21 is acked.
    assert sent == [[21]]


def test_qos_0_messages_are_released_without_a_puback() -> None:
    ingestor, sent = ingestor_recording_acks()
    take(ingestor, 0, 0, connection=0, qos=0)
    ingestor._confirm(0)
    ingestor._send_acks()
    assert sent == [] and ingestor.stats.acked == 1
