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


@dataclass(frozen=True)
class DecodeContext:
    """What the ingestor knows about a message besides its bytes."""

    tenant: str
    sensor_id: str
    topic: str
    received_at: datetime
    quantities: QuantityTable = field(default=DEFAULT_TABLE, compare=False)

    def message_id(self, payload: bytes, index: int) -> str:
        """A deterministic id for the index-th reading of a message that carries none.

        Derived from topic and bytes, so a redelivered MQTT message gets the same id and the
        stream worker can recognise the duplicate.
        """
        digest = hashlib.sha256(self.topic.encode() + b"\x00" + payload).hexdigest()[:20]
        return f"{digest}-{index}"


class DecodeError(Exception):
    """The payload cannot become readings; ``reason`` is a short code counted in metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


Decoder = Callable[[bytes, DecodeContext], list[Reading]]
