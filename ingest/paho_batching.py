"""paho-mqtt's client, reading the socket in chunks and sending a batch of PUBACKs in one write.

paho 2.x reads a packet with three ``recv`` calls (its first byte, its length, the rest) and
goes back to ``select`` after every packet; and each ``ack()`` from another thread writes a
byte to wake paho's thread, which then sends that one 4-byte PUBACK. At one reading per
message that is a dozen system calls and a fifth of the ingest's Python time per message
(py-spy, docs/performance.md).

:class:`BatchingClient` reads up to :data:`READ_CHUNK` bytes a ``recv`` and hands paho the
packets from that buffer until it is empty, then lets paho ``select`` again; and
:meth:`BatchingClient.ack_all` queues the PUBACKs of many messages as one write. Both lean on
paho's private ``_sock_recv`` and ``_packet_queue``, checked against the versions in
:data:`CHECKED`; with another version the client behaves exactly as paho's own (``ack_all``
acks one message at a time).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

log = logging.getLogger(__name__)

CHECKED = ("2.1.", "2.2.")  # paho versions whose private methods this relies on (tests/unit/ingest)
READ_CHUNK = 64 * 1024  # bytes asked of the socket at once: hundreds of small PUBLISH packets
PUBACK = 0x40
_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id (MQTT 3.1.1 and 5)


def checked(version: str = paho.mqtt.__version__) -> bool:
    """Whether this paho version's internals are those the batching was written against."""
    return version.startswith(CHECKED)


class BatchingClient(mqtt.Client):  # type: ignore[misc]  # paho's Client is untyped here
    """``paho.mqtt.client.Client`` with buffered reads and batched PUBACKs (QoS 1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batching = checked()
        if not self._batching:
            log.info(
                "paho-mqtt %s: reading and acking one packet at a time, as paho does (slower); "
                "ingest/paho_batching.py was checked against %s",
                paho.mqtt.__version__,
                ", ".join(f"{v}x" for v in CHECKED),
            )
        self._read_sock: object = None  # the socket the buffer was read from
        self._read = b""
        self._read_pos = 0

    def _buffered(self) -> bool:
        return self._read_pos < len(self._read) and self._read_sock is self._sock

    def _sock_recv(self, bufsize: int) -> bytes:
        if not self._batching:
            return super()._sock_recv(bufsize)  # type: ignore[no-any-return]
        if not self._buffered():
            # Empty, or read from an earlier connection (whose bytes mean nothing on this one).
            data = super()._sock_recv(max(bufsize, READ_CHUNK))  # raises when nothing is there
            if len(data) <= bufsize:  # all of it wanted, or b"": the connection is closed
                self._read, self._read_pos = b"", 0
                return data  # type: ignore[no-any-return]
            self._read_sock, self._read, self._read_pos = self._sock, data, 0
        start = self._read_pos
        self._read_pos = min(start + bufsize, len(self._read))
        return self._read[start : self._read_pos]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho's ``loop_read``, repeated while packets already read wait in the buffer.

        ``select`` cannot see bytes that left the socket for the buffer: returning with some
        still in it would leave them there until more arrive.
        """
        rc: MQTTErrorCode = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._buffered():
            rc = super().loop_read(max_packets)
        return rc

    def ack_all(self, mids: Iterable[int]) -> None:
        """PUBACK these QoS 1 messages, in this order, in one write (``manual_ack`` clients)."""
        if not self._batching:
            for mid in mids:
                self.ack(mid, 1)
            return
        packet = b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])
        if packet:
            self._packet_queue(PUBACK, packet, 0, 1)
