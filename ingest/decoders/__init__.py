"""Payload decoders: one module per format, all behind one small function signature.

A decoder takes the raw bytes and a :class:`DecodeContext` and returns readings, or raises
:class:`DecodeError` with a reason code. It never raises anything else: ``decode`` turns any
other failure into a dead letter, so a bad message can never crash the ingestor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ingest.aliases import DEFAULT_TABLE, QuantityTable
from urbanpulse.model import Reading


@dataclass(frozen=True, slots=True)
class DecodeContext:
    """What the ingestor knows about a message besides its bytes.

    ``received_at`` is the message's receipt time (strictly increasing per ingestor, so two
    publications of the same bytes are two observations); ``redelivered`` is the MQTT DUP
    flag: the broker sent this message before, and its readings repeat the first delivery's.
    """

    tenant: str
    sensor_id: str
    topic: str
    received_at: datetime
    quantities: QuantityTable = field(default=DEFAULT_TABLE, compare=False)
    redelivered: bool = False

    def derived_ids(self, payload: bytes) -> DerivedIds:
        """The ids of a message's readings when it carries none (hashed once, when first used).

        Derived from topic and bytes, so a redelivered MQTT message gets the same ids, and
        the stream worker can recognise the readings it already stored (``redelivered``).
        """
        return DerivedIds(self.topic, payload)


class DerivedIds:
    """``{digest}-{index}``: the message id of the index-th reading of one message.

    The digest (SHA-256 of topic and bytes) is computed once per message, at the first id
    asked for: a message whose readings all carry their own ids is never hashed.
    """

    __slots__ = ("_digest", "_payload", "_topic")

    def __init__(self, topic: str, payload: bytes) -> None:
        self._topic, self._payload = topic, payload
        self._digest: str | None = None

    def __call__(self, index: int) -> str:
        """The id of the index-th reading."""
        if self._digest is None:
            seed = self._topic.encode() + b"\x00" + self._payload
            self._digest = hashlib.sha256(seed).hexdigest()[:20]
        return f"{self._digest}-{index}"


class DecodeError(Exception):
    """The payload cannot become readings; ``reason`` is a short code counted in metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Decoder = Callable[[bytes, DecodeContext], list[Reading]]
