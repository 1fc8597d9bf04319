"""The ingestor's Prometheus endpoint counts what really happened."""

from __future__ import annotations

from tests.integration.test_ingest_kafka import publish_all, publisher, running_ingestor
from tests.support import consume_readings, free_port, isolated_settings, scrape, unique, wait_for


def test_metrics_count_readings_dead_letters_and_ack_latency() -> None:
    tenant = unique("metrics")
    settings = isolated_settings(tenant)
    port = free_port()
    good = (
        b'{"readings": [{"quantity": "pm10", "value": 1, "unit": "ug/m3"},'
        b' {"quantity": "pm2_5", "value": 2, "unit": "ug/m3"}]}'
    )
    with running_ingestor(settings) as ingestor, publisher() as client:
        ingestor.metrics.serve("127.0.0.1", port)
        wait_for(ingestor.connected.is_set, 30, "the ingestor to subscribe")
        publish_all(
            client,
            [
                (f"urbanpulse/{tenant}/a/json", good),
                (f"urbanpulse/{tenant}/a/json", b"nope"),
                (f"urbanpulse/{tenant}/a/json", good),
            ],
        )
        consume_readings(settings.kafka.bootstrap, settings.kafka.readings_topic, 4, 30)
        wait_for(lambda: ingestor.stats.acked == 3, 30, "three PUBACKs")
        samples = scrape(port)
    assert samples["urbanpulse_ingest_messages_received_total"] == 3
    assert samples["urbanpulse_ingest_readings_total"] == 4
    assert samples["urbanpulse_ingest_messages_acked_total"] == 3
    assert samples["urbanpulse_ingest_dead_letters_total{reason=invalid_json}"] == 1
    assert samples["urbanpulse_ingest_in_flight"] == 0
    assert samples["urbanpulse_ingest_kafka_ack_seconds_count"] == 3
