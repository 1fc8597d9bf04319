"""In-order acknowledgement of MQTT messages whose Kafka writes complete out of order (pure).

MQTT wants PUBACKs in the order the PUBLISHes arrived; Kafka confirms writes per partition,
so confirmations for different sensors can come back in any order. The tracker releases an
ack only when every earlier message is done too.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class AckTracker:
    """Messages in arrival order, each waiting for a number of Kafka confirmations."""

    _waiting: OrderedDict[int, int] = field(default_factory=OrderedDict)

    def add(self, token: int, confirmations: int) -> None:
        """Register a message that needs ``confirmations`` Kafka acks before its PUBACK."""
        if token in self._waiting:
            raise ValueError(f"message {token} is already in flight")
        self._waiting[token] = max(confirmations, 0)

    def confirm(self, token: int) -> list[int]:
        """Record one confirmation; return the messages that may now be acked, in order."""
        self._waiting[token] -= 1
        return self.releasable()

    def releasable(self) -> list[int]:
        """Pop and return the leading messages that need no more confirmations."""
        ready = []
        while self._waiting:
            token, left = next(iter(self._waiting.items()))
            if left > 0:
                break
            self._waiting.popitem(last=False)
            ready.append(token)
        return ready

    def __len__(self) -> int:
        return len(self._waiting)
