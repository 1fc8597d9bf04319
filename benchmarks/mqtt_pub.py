"""A Python stand-in for the peer kit's Go publisher, for machines without Go.

Reads ``topic<TAB>payload`` lines from stdin, publishes each at QoS 1 with at most
``--inflight`` unacknowledged, and prints ``published N messages in S s (R msg/s), errors E``
once stdin closes and every publish was acknowledged, exactly like
``/work/shared/bench/pub`` (which is 5 to 10 times cheaper per message: prefer it).

    printf 'urbanpulse/t/s1/json\\t{"quantity":"temperature","value":1,"unit":"Cel"}\\n' |
        .venv/bin/python -m benchmarks.mqtt_pub
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt

from urbanpulse.mqtt import make_client
from urbanpulse.settings import Settings


class _Acks:
    """Counts publishes the broker has not acknowledged yet, and waits for room."""

    def __init__(self, limit: int) -> None:
        self.room = threading.Semaphore(limit)
        self.errors = 0

    def on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reason: mqtt.ReasonCode,
        _props: object,
    ) -> None:
        if reason.is_failure:
            self.errors += 1
        self.room.release()


def main(argv: list[str] | None = None) -> int:
    """Publish stdin's lines; print the summary line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mqtt_pub", description=__doc__)
    parser.add_argument("--inflight", type=int, default=500, help="most unacknowledged publishes")
    args = parser.parse_args(argv)
    settings = Settings().mqtt
    acks = _Acks(args.inflight)
    client = make_client(settings, f"benchpub-py-{os.getpid()}")
    client.max_inflight_messages_set(args.inflight)
    client.on_publish = acks.on_publish
    client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
    client.loop_start()
    sent, start = 0, time.monotonic()
    for line in sys.stdin.buffer:
        topic, tab, payload = line.rstrip(b"\n").partition(b"\t")
        if not tab:
            continue
        acks.room.acquire()
        client.publish(topic.decode(), payload, qos=1)
        sent += 1
    for _ in range(args.inflight):  # every permit back: every publish acknowledged
        acks.room.acquire()
    elapsed = time.monotonic() - start
    rate = sent / elapsed if elapsed > 0 else 0.0
    print(f"published {sent} messages in {elapsed:.2f} s ({rate:.0f} msg/s), errors {acks.errors}")
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
