"""The ingestor's running counters, for its log lines and its metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Stats:
    """What the ingestor has done since it started, logged every few seconds."""

    received: int = 0
    readings: int = 0
    records: int = 0  # Kafka records written: each holds readings of many messages
    acked: int = 0
    dropped_personal: int = 0  # readings of personal quantities removed at ingest (privacy)
    dead_letters: Counter[str] = field(default_factory=Counter)

    def line(self, in_flight: int) -> str:
        """A one-line summary for the log."""
        dead = ", ".join(f"{k}={v}" for k, v in sorted(self.dead_letters.items())) or "none"
        return (
            f"received {self.received} messages, {self.readings} readings to Kafka "
            f"in {self.records} records, "
            f"acked {self.acked}, in flight {in_flight}, dead letters: {dead}"
        )
