"""paho's client reading in chunks and acking in batches: the same packets, fewer system calls.

The client's socket is one end of a local socketpair: the test writes MQTT packets into the
other end as a broker would, and reads what the client writes back.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import paho.mqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ingest.paho_batching import CHECKED, BatchingClient, checked


def publish(mid: int, payload: bytes, topic: bytes = b"urbanpulse/town/air-1/json") -> bytes:
    """An MQTT 5 PUBLISH at QoS 1, as the broker sends it (no properties)."""
    body = len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + b"\x00" + payload
    assert len(body) < 128  # one byte of remaining length
    return bytes([0x32, len(body)]) + body


Pair = tuple[BatchingClient, socket.socket, list[tuple[int, bytes]]]


@pytest.fixture
def pair() -> Iterator[Pair]:
    """A batching client on one end of a socketpair, the broker's end, and what it received."""
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    broker.settimeout(5)
    client = BatchingClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    received: list[tuple[int, bytes]] = []
    client.on_message = lambda _c, _u, msg: received.append((msg.mid, bytes(msg.payload)))
    client._sock = ours
    client._thread = object()  # as with loop_start(): acks are queued, written by loop_write
    yield client, broker, received
    client._sock, client._thread = None, None
    ours.close()
    broker.close()


def test_the_installed_paho_is_one_the_batching_was_checked_against() -> None:
    assert checked(), (
        f"paho-mqtt {paho.mqtt.__version__}: check ingest/paho_batching.py against its "
        "_sock_recv, loop_read and _packet_queue, then add the version to CHECKED"
    )
    assert not checked("3.0.0") and checked(CHECKED[0] + "9")


def test_every_packet_of_one_read_is_delivered_before_select_is_needed_again(pair: Pair) -> None:
    client, broker, received = pair
    packets = [publish(mid, f'{{"n": {mid}}}'.encode()) for mid in range(1, 6)]
    fourth_split = len(packets[4]) // 2
    broker.sendall(b"".join(packets[:4]) + packets[4][:fourth_split])
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    # paho alone reads one packet per loop_read (then select); all four whole ones are here
    assert [mid for mid, _ in received] == [1, 2, 3, 4]
    assert not client._buffered()  # nothing left behind where select cannot see it

    broker.sendall(packets[4][fourth_split:])  # the rest of the fifth packet
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert received[-1] == (5, b'{"n": 5}') and len(received) == 5


def test_a_closed_connection_is_reported_not_hidden_by_the_buffer(pair: Pair) -> None:
    client, broker, received = pair
    broker.sendall(publish(7, b"{}"))
    broker.shutdown(socket.SHUT_WR)
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert received == [(7, b"{}")]
    # select() sees the end of the stream as readable; the next read must report it
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_CONN_LOST


def test_bytes_read_on_an_earlier_connection_are_not_served_on_the_next(pair: Pair) -> None:
    client, broker, _ = pair
    broker.sendall(publish(1, b"{}") + publish(2, b"{}"))
    assert client._sock_recv(1) == b"\x32"  # the rest of both packets is buffered now
    assert client._buffered()
    newer, newer_broker = socket.socketpair()
    newer.setblocking(False)
    client._sock = newer  # what paho does when it reconnects
    try:
        assert not client._buffered()
        newer_broker.sendall(b"\x40")
        assert client._sock_recv(1) == b"\x40"  # from the new socket, not the old buffer
    finally:
        client._sock = None
        newer.close()
        newer_broker.close()


def test_acks_leave_in_one_write_in_the_order_given(pair: Pair) -> None:
    client, broker, _ = pair
    client.ack_all([1, 2, 65535])
    client.ack_all([])  # nothing to send: no empty packet either
    assert len(client._out_packet) == 1
    assert client.loop_write() == MQTTErrorCode.MQTT_ERR_SUCCESS
    expected = b"\x40\x02\x00\x01" + b"\x40\x02\x00\x02" + b"\x40\x02\xff\xff"
    assert broker.recv(100) == expected
    assert len(client._out_packet) == 0


def test_an_unchecked_paho_acks_the_same_bytes_one_message_at_a_time(pair: Pair) -> None:
    client, broker, _ = pair
    client._batching = False
    client.ack_all([3, 4])
    assert len(client._out_packet) == 2  # paho's own ack(), one packet each
    client.loop_write()
    assert broker.recv(100) == b"\x40\x02\x00\x03\x40\x02\x00\x04"
