"""The micro-benchmark's worker traffic has the shape the ingest writes to Kafka."""

from benchmarks.micro import Traffic, batches, sensor_id
from urbanpulse.wire import decode_record


def test_batches_are_records_of_per_record_readings_in_topic_order() -> None:
    traffic = Traffic(sensors=3, history=2, interval_s=10, per_sensor=2, batch=6, per_record=3)
    first, second = batches(traffic, 2)
    assert len(first) == len(second) == 2  # 6 readings per batch, 3 per record
    readings = [r for value in first + second for r in decode_record(value).readings]
    # runs of two readings per sensor, then the next two of each, after 2 of history
    assert [(r.sensor_id, r.message_id) for r in readings] == [
        (sensor_id(n), f"{sensor_id(n)}-{step}")
        for first_step in (2, 4)
        for n in range(3)
        for step in (first_step, first_step + 1)
    ]
